"""Ledger lines kept as one bytes object each, for a replay that folds millions of events (issue #9).

A Line as objects costs about 800 bytes (thirteen fields, three ids and three times as text); packed it is about
150: its three ids as 16 bytes, its times as microseconds since the Unix epoch (UTC), its quantity, and its names
(pool, buyer, batch, rule, policy version, status) as indices into one table of the names seen. A Line is made
again, field for field the same, each time one is read: the ledger's hash and JSON do not change.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, overload
from uuid import UUID

from services.replay.ledger_line import Line, iso
from services.replay.rows import EPOCH, MICROSECOND, micros
from services.replay.rows import Names as Names

_NO_TIME = -(2**63)
_ROW = struct.Struct(">16s16s16sqqqIIIIIII")
"""allocation, order, cause; allocated_at, shipped_at, delivered_at; quantity; pool, buyer, batch, rule,
policy version, status."""


def _uuid_text(raw: bytes) -> str:
    """str(UUID(bytes=raw)), at a quarter of its cost (a ledger's lines are read a few times each)."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(value: int) -> str | None:
    return None if value == _NO_TIME else iso(EPOCH + value * MICROSECOND)


def pack(names: Names, allocation: UUID, order: UUID, cause: UUID, fields: dict[str, Any]) -> bytes:
    """A line's fields (`allocated_at`, `shipped_at`, `delivered_at` as datetimes or None; names as text)."""
    shipped, delivered = fields["shipped_at"], fields["delivered_at"]
    return _ROW.pack(
        allocation.bytes,
        order.bytes,
        cause.bytes,
        micros(fields["allocated_at"]),
        _NO_TIME if shipped is None else micros(shipped),
        _NO_TIME if delivered is None else micros(delivered),
        fields["quantity"],
        *(names.index(fields[name]) for name in ("pool_id", "buyer", "batch_id", "rule", "policy_version", "status")),
    )


NO_STEP = "allocated"
"""In a row being folded, the status slot holds its shipment's last step; this (never a step) until there is one."""


class Steps(NamedTuple):
    """What the ledger shows of a shipment while it is folded: its last step, and when it shipped and was
    delivered (the last recorded), as microseconds or None."""

    last: str | None = None
    shipped: int | None = None
    delivered: int | None = None

    def then(self, step: str, at: datetime) -> Steps:
        """These steps, then one more."""
        if step == "shipped":
            return Steps(step, micros(at), self.delivered)
        if step == "delivered":
            return Steps(step, self.shipped, micros(at))
        return Steps(step, self.shipped, self.delivered)

    def followed_by(self, later: Steps) -> Steps:
        """These steps, then those of `later` (what it recorded replaces what these did)."""
        return Steps(
            later.last if later.last is not None else self.last,
            later.shipped if later.shipped is not None else self.shipped,
            later.delivered if later.delivered is not None else self.delivered,
        )


def steps_of(names: Names, row: bytes) -> Steps:
    values = _ROW.unpack(row)
    last = names.names[values[12]]
    return Steps(
        None if last == NO_STEP else last,
        None if values[4] == _NO_TIME else values[4],
        None if values[5] == _NO_TIME else values[5],
    )


def with_steps(names: Names, row: bytes, steps: Steps) -> bytes:
    """The row (being folded) with its shipment's steps."""
    values = list(_ROW.unpack(row))
    values[4] = _NO_TIME if steps.shipped is None else steps.shipped
    values[5] = _NO_TIME if steps.delivered is None else steps.delivered
    values[12] = names.index(NO_STEP if steps.last is None else steps.last)
    return _ROW.pack(*values)


def reindexed(row: bytes, table: Sequence[str], names: Names) -> bytes:
    """The row, whose names index `table` (another fold's names, in order), with them indexing `names` instead."""
    values = list(_ROW.unpack(row))
    for slot in range(7, 13):  # pool, buyer, batch, rule, policy version, status
        values[slot] = names.index(table[values[slot]])
    return _ROW.pack(*values)


def with_status(names: Names, row: bytes, status: str) -> bytes:
    """The folded row as a line of the ledger: its status in place of its last step."""
    values = list(_ROW.unpack(row))
    values[12] = names.index(status)
    return _ROW.pack(*values)


_KEY = struct.Struct(">QII16s16s")


def sort_keys(names: Names) -> Callable[[bytes], bytes]:
    """Line.sort_key's order (allocation time, pool, batch, order id, allocation id) as one 48-byte key a row: the
    names by their rank in text order, a UUID's 16 bytes (its text sorts as they do), the time's microseconds (one
    UTC instant's ISO text sorts as they do). A sort holds every key at once: as a tuple of an int, two names and two
    ids they took ~210 bytes a line (150 MB beside 714,000 lines), this ~80. For rows of `names` as it is now."""
    table = names.names
    rank = [0] * len(table)
    for position, index in enumerate(sorted(range(len(table)), key=table.__getitem__)):
        rank[index] = position

    def key(row: bytes) -> bytes:
        allocation, order, _, allocated, _, _, _, pool, _, batch, _, _, _ = _ROW.unpack(row)
        return _KEY.pack(allocated - _NO_TIME, rank[pool], rank[batch], order, allocation)

    return key


def unpack(names: Names, row: bytes) -> Line:
    allocation, order, cause, allocated, shipped, delivered, quantity, pool, buyer, batch, rule, policy, status = (
        _ROW.unpack(row)
    )
    table = names.names
    return Line(
        allocation_id=_uuid_text(allocation),
        pool_id=table[pool],
        buyer=table[buyer],
        order_id=_uuid_text(order),
        batch_id=table[batch],
        quantity=quantity,
        allocated_at=iso(EPOCH + allocated * MICROSECOND),
        status=table[status],
        shipped_at=_text(shipped),
        delivered_at=_text(delivered),
        rule=table[rule],
        policy_version=table[policy],
        cause_event_id=_uuid_text(cause),
    )


class PackedLines(Sequence[Line]):
    """The ledger's lines in ledger order, packed; each read makes the Line again."""

    __slots__ = ("_names", "_rows")

    def __init__(self, names: Names, rows: list[bytes]) -> None:
        self._names, self._rows = names, rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Line: ...
    @overload
    def __getitem__(self, index: slice) -> list[Line]: ...
    def __getitem__(self, index: int | slice) -> Line | list[Line]:
        if isinstance(index, slice):
            return [unpack(self._names, row) for row in self._rows[index]]
        return unpack(self._names, self._rows[index])

    def __iter__(self) -> Iterator[Line]:
        names = self._names
        return (unpack(names, row) for row in self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedLines({len(self)} lines)"
