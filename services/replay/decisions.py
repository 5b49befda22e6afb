"""The allocation core's decisions as recorded, read before its inbox: what the determinism check compares the
refolded decisions with, and the allocations `ApprovedThen` looks for as it folds their causes.

A decision is kept as a 16-byte digest of its envelope and where it was read (13 bytes), so a long log costs
~30 bytes a decision here; the few a report shows are read again from where they are (`Fetch`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from schemas.allocation import ChipsAllocated
from schemas.base import Message
from schemas.envelope import Envelope
from schemas.topics import BY_NAME
from services.domain_kit.seen_ids import SeenIds
from services.replay.eventlog import EventLog, Located
from services.replay.reading import Read
from services.replay.records import Spot
from services.replay.rows import SortedRows, id_int

DECIDED = "h200.allocations"
"""Where the allocation core writes its decisions: a decision found on another topic is not one its readers act
on (services.replay.producers names it), so it is not compared here."""
DECISIONS: tuple[type[Message], ...] = BY_NAME[DECIDED].messages
"""Everything the allocation core writes: ledger lines and releases, recalls and suspensions of lines for
fulfilment, closed orders for approval. Each is compared, so a recall or a close missing or altered is caught."""

Fetch = Callable[[Iterable[Spot]], dict[Spot, Located]]
"""The records at these spots, decoded as a reading decodes them (the source is read again for the few shown)."""


def digest(envelope: Envelope[Any]) -> bytes:
    """Equal for envelopes whose every field (payload included) has the same JSON form, as a report compares them."""
    canonical = json.dumps(envelope.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


CAUSED_ROW = 66
"""Bytes of a caused allocation's row: four ids and the pool's number (a Caused and its dict slot took ~400)."""


class Caused(NamedTuple):
    """A ChipsAllocated, as `ApprovedThen` asks about it when it folds the input that caused it (ids as integers)."""

    event: int
    allocation: int
    pool_id: str
    order: int

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def allocation_id(self) -> UUID:
        return UUID(int=self.allocation)

    @property
    def order_id(self) -> UUID:
        return UUID(int=self.order)


@dataclass
class PoolDecisions:
    digests: bytearray = field(default_factory=bytearray)
    partitions: array[int] = field(default_factory=lambda: array("i"))
    offsets: array[int] = field(default_factory=lambda: array("q"))
    """Every decision kept here was read on DECIDED (`RecordedDecisions.see` admits no other), so a spot needs only
    its partition and offset."""

    def __len__(self) -> int:
        return len(self.offsets)

    def digest(self, index: int) -> bytes:
        return bytes(self.digests[index * 16 : index * 16 + 16])

    def add(self, envelope: Envelope[Any], spot: Spot) -> None:
        assert spot.topic == DECIDED, spot  # see the class's `offsets`
        self.digests += digest(envelope)
        self.partitions.append(spot.partition)
        self.offsets.append(spot.offset)

    def spot(self, index: int) -> Spot:
        return Spot(DECIDED, self.partitions[index], self.offsets[index])


class RecordedDecisions:
    def __init__(self) -> None:
        self.by_pool: dict[str, PoolDecisions] = {}
        self._caused = SortedRows(CAUSED_ROW)
        """cause id, event id, allocation id, order id, pool by number: under the id of the input that caused them."""
        self._pools: list[str] = []
        self.causes = SeenIds()
        """The inputs the recorded decisions name as their causes."""

    @classmethod
    def of(cls, log: EventLog) -> RecordedDecisions:
        recorded = cls()
        for item in log.located(*DECISIONS):
            recorded.see(Read(item.envelope, item.spot, False))  # those of h200.allocations, as a reader sees them
        return recorded

    def see(self, read: Read) -> None:
        e = read.envelope
        p: Any = e.payload
        if read.spot.topic != DECIDED or not isinstance(e.payload, DECISIONS):
            return
        pool = self.by_pool.get(p.pool_id)
        if pool is None:
            pool = self.by_pool[p.pool_id] = PoolDecisions()
        pool.add(e, read.spot)
        if e.causation_id is not None:
            self.causes.add(e.causation_id)
        if isinstance(p, ChipsAllocated):
            if p.pool_id not in self._pools:
                self._pools.append(sys.intern(p.pool_id))
            pool_number = self._pools.index(p.pool_id).to_bytes(2, "big")
            ids = p.cause_event_id.bytes + e.id.bytes + p.allocation_id.bytes + p.order_id.bytes
            self._caused.add(ids + pool_number)

    def caused(self, cause: UUID) -> list[Caused]:
        """The allocations recorded as caused by this input, in the order read."""
        return [
            Caused(id_int(row[16:32]), id_int(row[32:48]), self._pools[int.from_bytes(row[64:66])], id_int(row[48:64]))
            for row in self._caused.under(cause.bytes)
        ]

    @property
    def recorded(self) -> int:
        return sum(len(pool) for pool in self.by_pool.values())


def fetch_from(log: EventLog) -> Fetch:
    """Fetch from a log held whole (tests, the simulation)."""

    def fetch(spots: Iterable[Spot]) -> dict[Spot, Located]:
        wanted = set(spots)
        found = {item.spot: item for item in log.located() if item.spot in wanted}
        for records in log.inbox.values():
            found.update((item.spot, item) for item in records if item.spot in wanted)
        return found

    return fetch
