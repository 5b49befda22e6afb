"""One (buyer, upstream reference) is one order: intake records it once, under the id derived from the pair.

A record written twice carries the same envelope id and counts once (services.replay.eventlog); two OrderPlaced
with different ids for one reference mean the order was placed twice (e.g. by two intake partitions that each
had never seen it), and its approval, quota and chips may be taken twice.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import NamedTuple
from uuid import UUID

from schemas.envelope import order_id_for
from schemas.intake import OrderPlaced
from services.replay.reading import Read
from services.replay.violations import Violation, ids


class _Placed(NamedTuple):
    event: int
    order: int
    buyer_id: str
    upstream_ref: str

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def order_id(self) -> UUID:
        return UUID(int=self.order)


_ROW = struct.Struct(">16s16s16sIIH")
"""A placement: the order id its reference derives, its order id, its event id; its buyer (an index into the
buyers named), and where its reference's UTF-8 text sits in the shared buffer (offset, length)."""


class OnePerReference:
    """More than one OrderPlaced per (buyer, upstream ref) or per order id, and order ids not derived from it.
    Keeps a packed row of ~75 bytes a placement in arrival order (a dict of lists of rows per reference and per
    order took ~530: 380 MB at 5M events) and finds the repeats once, at the end, by sorting."""

    def __init__(self) -> None:
        self.rows = bytearray()
        self.texts = bytearray()
        self.buyers: list[str] = []
        self._buyer_index: dict[str, int] = {}
        self.problems: list[Violation] = []

    def see(self, read: Read) -> None:
        p = read.envelope.payload
        if read.inbox or not isinstance(p, OrderPlaced):
            return
        expected = order_id_for(p.buyer_id, p.upstream_ref)
        buyer = self._buyer_index.get(p.buyer_id)
        if buyer is None:
            buyer = self._buyer_index[p.buyer_id] = len(self.buyers)
            self.buyers.append(p.buyer_id)
        text = p.upstream_ref.encode()
        self.rows += _ROW.pack(
            expected.bytes, p.order_id.bytes, read.envelope.id.bytes, buyer, len(self.texts), len(text)
        )
        self.texts += text
        if p.order_id != expected:
            message = (
                f"order {p.order_id} placed for {p.buyer_id}/{p.upstream_ref}, whose order id is {expected}: "
                "a resend under that reference would not be recognised"
            )
            self.problems.append(Violation("order_id_not_derived", message, ids(read.envelope)))

    def _placed(self, index: int) -> _Placed:
        _, order, event, buyer, start, length = _ROW.unpack_from(self.rows, index * _ROW.size)
        reference = self.texts[start : start + length].decode()
        return _Placed(int.from_bytes(event), int.from_bytes(order), self.buyers[buyer], reference)

    def _repeats(self, field: int) -> Iterator[list[_Placed]]:
        """The placements sharing the 16 bytes at `field` of their row, for each value more than one shares: in the
        order each such value first arrived, each group in arrival order (the sort is stable)."""
        rows, width = self.rows, _ROW.size
        count = len(rows) // width
        key: Callable[[int], bytes] = lambda n: bytes(rows[n * width + field : n * width + field + 16])  # noqa: E731
        ordered = sorted(range(count), key=key)
        groups: list[list[int]] = []
        for at, index in enumerate(ordered):
            if at and key(ordered[at - 1]) == key(index):
                if groups and groups[-1][-1] == ordered[at - 1]:
                    groups[-1].append(index)
                else:
                    groups.append([ordered[at - 1], index])
        for group in sorted(groups):
            yield [self._placed(index) for index in group]

    def violations(self) -> list[Violation]:
        problems = list(self.problems)
        reported: set[tuple[str, ...]] = set()
        for placed in self._repeats(0):
            reported.add(ids(*placed))
            orders = ", ".join(dict.fromkeys(str(e.order_id) for e in placed))
            where = f"{placed[0].buyer_id}/{placed[0].upstream_ref}"
            message = f"{where} was placed {len(placed)} times (order {orders}): one reference is one order"
            problems.append(Violation("order_placed_twice", message, ids(*placed)))
        for placed in self._repeats(16):
            if ids(*placed) not in reported:
                refs = ", ".join(dict.fromkeys(f"{e.buyer_id}/{e.upstream_ref}" for e in placed))
                message = (
                    f"order {placed[0].order_id} was placed {len(placed)} times (as {refs}): one order id is one order"
                )
                problems.append(Violation("order_placed_twice", message, ids(*placed)))
        return problems
