"""The ledger folded from the log: who got which batch, how many, when, what became of it, and why.

The fold keeps facts per allocation and per batch and builds the lines at the end, so the result does not
depend on how the partitions of different topics interleave: only on which events are in the log (and, for
the steps of one shipment, their order in its partition). `as_of` keeps exactly what had been decided by then,
each fact cut on its own time (see `decided_at`), not on its envelope's: a decision's envelope carries the time
of its cause, and a line caused by an earlier-dated input that arrived late (an approval reaching a batch ready
later, a policy effective before the order it applies to) is dated later than that cause. The ledger hash
covers the moment, every line and the totals in one canonical JSON form, so the same log gives the same hash
on every replay, and the live read model (services.replay.live) gives the same hash when it tells the same story.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import Decision, OrderApproved
from schemas.base import Message
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.intake import OrderPlaced
from schemas.supply import BatchManufactured
from services.replay.ledger_line import LINE_FIELDS as LINE_FIELDS
from services.replay.ledger_line import Line as Line
from services.replay.ledger_line import iso as iso
from services.replay.packed_lines import (
    Names,
    PackedLines,
    Steps,
    pack,
    reindexed,
    sort_keys,
    steps_of,
    with_status,
    with_steps,
)

STEP_STATUS = {"released": "hold_released"}
"""A shipment step named like a line status: `released` from a customs hold is not the chips going back."""


def line_status(released: bool, last_step: str | None) -> str:
    """released (chips back in the pool), else the shipment's last step, else allocated."""
    if released:
        return "released"
    if last_step is None:
        return "allocated"
    return STEP_STATUS.get(last_step, last_step)


@dataclass(frozen=True, slots=True)
class Stock:
    """A manufactured batch: what it holds."""

    batch_id: str
    pool_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Demand:
    """What a buyer asked for and was approved, summed over its orders."""

    requested: int = 0
    approved: int = 0


@dataclass(frozen=True)
class Ledger:
    as_of: str | None
    lines: Sequence[Line]
    """Sorted by allocation time, pool, batch, order, allocation id."""
    stock: tuple[Stock, ...]
    """Sorted by batch id."""
    demand: dict[str, Demand] = field(default_factory=dict)
    """Per buyer that placed an order."""

    def totals(self) -> dict[str, Any]:
        return totals(self.lines, self.stock, self.demand)

    def canonical(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "lines": [line.as_dict() for line in self.lines], "totals": self.totals()}

    @cached_property
    def ledger_hash(self) -> str:
        """SHA-256 of `canonical()` as sorted, compact JSON; hashed piece by piece, so a long ledger is never held
        as one text (the same bytes: the top-level keys sort as as_of, lines, totals)."""
        digest = hashlib.sha256(b'{"as_of":' + _canonical_json(self.as_of) + b',"lines":[')
        for index, line in enumerate(self.lines):
            digest.update((b"," if index else b"") + _canonical_json(line.as_dict()))
        digest.update(b'],"totals":' + _canonical_json(self.totals()) + b"}")
        return digest.hexdigest()


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_ledger(as_of: str | None, lines: Iterable[Line], stock: Iterable[Stock], demand: dict[str, Demand]) -> Ledger:
    return Ledger(
        as_of,
        tuple(sorted(lines, key=lambda line: line.sort_key)),
        tuple(sorted(stock, key=lambda batch: batch.batch_id)),
        dict(sorted(demand.items())),
    )


def totals(lines: Iterable[Line], stock: Iterable[Stock], demand: dict[str, Demand]) -> dict[str, Any]:
    """Per buyer, per batch (with its unallocated chips) and per pool; live quantities exclude released lines."""
    buyers: dict[str, dict[str, int]] = {
        buyer: {"requested": d.requested, "approved": d.approved, **_zero()} for buyer, d in demand.items()
    }
    batches: dict[str, dict[str, Any]] = {
        b.batch_id: {"pool_id": b.pool_id, "quantity": b.quantity, **_zero()} for b in stock
    }
    for line in lines:
        buyer = buyers.setdefault(line.buyer, {"requested": 0, "approved": 0, **_zero()})
        batch = batches.setdefault(line.batch_id, {"pool_id": line.pool_id, "quantity": 0, **_zero()})
        for counts in (buyer, batch):
            _count(counts, line)
    pools: dict[str, dict[str, int]] = {}
    for batch in batches.values():
        batch["unallocated"] = batch["quantity"] - batch["allocated"]
        pool = pools.setdefault(batch["pool_id"], {"quantity": 0, "allocated": 0, "unallocated": 0})
        for name in pool:
            pool[name] += batch[name]
    return {
        "buyers": dict(sorted(buyers.items())),
        "batches": dict(sorted(batches.items())),
        "pools": dict(sorted(pools.items())),
    }


def _zero() -> dict[str, int]:
    return {"allocated": 0, "shipped": 0, "delivered": 0, "released": 0}


def _count(counts: dict[str, Any], line: Line) -> None:
    if not line.live:
        counts["released"] += line.quantity
        return
    counts["allocated"] += line.quantity
    counts["shipped"] += line.quantity if line.shipped_at or line.delivered_at else 0
    counts["delivered"] += line.quantity if line.delivered_at else 0


def decided_at(envelope: Envelope[Message]) -> datetime:
    """When the fact was decided or happened, by its own time: a line when allocation decided it (the later of its
    envelope's time and its allocated_at: chips are handed out as of approval's frontier, which may lag the moment
    allocation made the decision, docs/time.md), a release when released, a shipment step at its `at`, any decision
    of approval when decided, an order when placed, a batch when ready; any other event when it occurred."""
    match envelope.payload:
        case ChipsAllocated(allocated_at=moment):
            return max(moment, envelope.occurred_at)
        case AllocationReleased(released_at=moment):
            return moment
        case FulfilmentStepRecorded(at=moment):
            return moment
        case Decision(decided_at=moment):
            return moment
        case OrderPlaced(placed_at=moment):
            return moment
        case BatchManufactured(ready_at=moment):
            return moment
    return envelope.occurred_at


class LedgerFold:
    """The ledger folded one event at a time, keeping only what its lines and totals show: a line per allocation
    (packed, services.replay.packed_lines: about 160 bytes) holding its shipment's last step and times, released
    ids, batches and two sums per buyer. Its memory grows with the ledger, not with the log: `h200 replay` folds
    while it reads."""

    def __init__(self, as_of: datetime | None = None, names: Names | None = None) -> None:
        self.as_of = as_of
        self.names = Names() if names is None else names
        """Shared by folds that are merged (their packed lines index one table)."""
        self.allocated: dict[bytes, bytes] = {}
        """By allocation id (its 16 bytes): the line as allocated, packed, with its shipment's steps so far."""
        self.released: set[bytes] = set()
        self.early: dict[bytes, Steps] = {}
        """Steps of shipments whose line is not (yet) in the fold: taken into the line when it comes."""
        self.batches: dict[str, Stock] = {}
        self.requested: dict[str, int] = {}
        self.approved: dict[str, int] = {}

    def add(self, envelope: Envelope[Message]) -> None:
        """Take one event into the ledger (once per id: the reader deduplicates), if decided by `as_of`."""
        if self.as_of is not None and decided_at(envelope) > self.as_of:
            return
        match envelope.payload:
            case ChipsAllocated() as p:
                key = p.allocation_id.bytes
                if key not in self.allocated:
                    row = _allocated_line(self.names, p)
                    early = self.early.pop(key, None)
                    self.allocated[key] = row if early is None else with_steps(self.names, row, early)
            case AllocationReleased() as p:
                self.released.add(p.allocation_id.bytes)
            case FulfilmentStepRecorded() as p:
                key = p.allocation_id.bytes
                line = self.allocated.get(key)
                if line is None:
                    self.early[key] = self.early.get(key, Steps()).then(sys.intern(p.step), p.at)
                else:
                    self.allocated[key] = with_steps(self.names, line, steps_of(self.names, line).then(p.step, p.at))
            case BatchManufactured() as p:
                if p.batch_id not in self.batches:
                    self.batches[p.batch_id] = Stock(p.batch_id, sys.intern(p.pool_id), p.quantity)
            case OrderPlaced() as p:
                buyer = sys.intern(p.buyer_id)
                self.requested[buyer] = self.requested.get(buyer, 0) + p.quantity
            case OrderApproved() as p:
                buyer = sys.intern(p.buyer_id)
                self.approved[buyer] = self.approved.get(buyer, 0) + p.approved_quantity

    def adopt_names(self, names: Names) -> None:
        """Index this fold's packed lines in `names` instead of its own table, so that it can merge into a fold that
        uses `names` (a fold made in another process has a table of its own)."""
        if names is self.names:
            return
        table = self.names.names
        self.allocated = {key: reindexed(row, table, names) for key, row in self.allocated.items()}
        self.names = names

    def merge(self, later: LedgerFold) -> None:
        """Take in a fold of events that come after this fold's, as if they had been added here one by one; `later`
        shares this fold's names and is emptied."""
        if later.names is not self.names:
            raise ValueError("only folds sharing one Names table merge: their packed lines index it")
        names = self.names
        for key, row in later.allocated.items():
            mine = self.allocated.get(key)
            if mine is not None:  # the line is this fold's; its steps go on with the later ones
                self.allocated[key] = with_steps(names, mine, steps_of(names, mine).followed_by(steps_of(names, row)))
            else:  # the later line, its shipment begun with the steps this fold saw before it
                before = self.early.pop(key, Steps())
                self.allocated[key] = with_steps(names, row, before.followed_by(steps_of(names, row)))
        self.released |= later.released
        for key, after in later.early.items():
            mine = self.allocated.get(key)
            if mine is not None:
                self.allocated[key] = with_steps(names, mine, steps_of(names, mine).followed_by(after))
            else:
                self.early[key] = self.early.get(key, Steps()).followed_by(after)
        for batch_id, stock in later.batches.items():
            self.batches.setdefault(batch_id, stock)
        for buyer, asked in later.requested.items():
            self.requested[buyer] = self.requested.get(buyer, 0) + asked
        for buyer, approved in later.approved.items():
            self.approved[buyer] = self.approved.get(buyer, 0) + approved
        later.allocated, later.released, later.early, later.batches = {}, set(), {}, {}
        later.requested, later.approved = {}, {}

    def ledger(self) -> Ledger:
        """The ledger of what was added; ends the fold (its lines move into the ledger, not copied beside it)."""
        rows = []
        while self.allocated:
            key, row = self.allocated.popitem()
            status = line_status(key in self.released, steps_of(self.names, row).last)
            rows.append(with_status(self.names, row, status))
        rows.sort(key=sort_keys(self.names))
        demand = {buyer: Demand(asked, self.approved.get(buyer, 0)) for buyer, asked in self.requested.items()}
        return Ledger(
            None if self.as_of is None else iso(self.as_of),
            PackedLines(self.names, rows),
            tuple(sorted(self.batches.values(), key=lambda batch: batch.batch_id)),
            dict(sorted(demand.items())),
        )


def fold_ledger(events: Iterable[Envelope[Message]], as_of: datetime | None = None) -> Ledger:
    """The ledger of every fact decided at or before `as_of` by its own time (`decided_at`), or of all of them for
    None: whatever order the records arrived in, a line is in it iff allocated by then, released iff released by
    then, and shows the steps of its shipment taken by then."""
    fold = LedgerFold(as_of)
    for envelope in events:
        fold.add(envelope)
    return fold.ledger()


def _allocated_line(names: Names, allocated: ChipsAllocated) -> bytes:
    """The line as allocated; its status and shipment times are filled in at the end of the fold."""
    policy = str(allocated.policy_ref) if allocated.policy_ref else "default"
    fields = {
        "pool_id": allocated.pool_id,
        "buyer": allocated.buyer_id,
        "batch_id": allocated.batch_id,
        "quantity": allocated.quantity,
        "allocated_at": allocated.allocated_at,
        "status": "allocated",
        "shipped_at": None,
        "delivered_at": None,
        "rule": allocated.rule,
        "policy_version": policy,
    }
    return pack(names, allocated.allocation_id, allocated.order_id, allocated.cause_event_id, fields)
