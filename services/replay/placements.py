"""One (buyer, upstream reference) is one order: intake records it once, under the id derived from the pair.

A record written twice carries the same envelope id and counts once (services.replay.eventlog); two OrderPlaced
with different ids for one reference mean the order was placed twice (e.g. by two intake partitions that each
had never seen it), and its approval, quota and chips may be taken twice.
"""

from __future__ import annotations

import sys
from collections import defaultdict
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


class OnePerReference:
    """More than one OrderPlaced per (buyer, upstream ref) or per order id, and order ids not derived from it.
    Keeps one small row per placement."""

    def __init__(self) -> None:
        self.by_reference: dict[tuple[str, str], list[_Placed]] = defaultdict(list)
        self.by_order: dict[int, list[_Placed]] = defaultdict(list)
        self.problems: list[Violation] = []

    def see(self, read: Read) -> None:
        p = read.envelope.payload
        if read.inbox or not isinstance(p, OrderPlaced):
            return
        placed = _Placed(read.envelope.id.int, p.order_id.int, sys.intern(p.buyer_id), p.upstream_ref)
        self.by_reference[(placed.buyer_id, p.upstream_ref)].append(placed)
        self.by_order[placed.order].append(placed)
        expected = order_id_for(p.buyer_id, p.upstream_ref)
        if p.order_id != expected:
            message = (
                f"order {p.order_id} placed for {p.buyer_id}/{p.upstream_ref}, whose order id is {expected}: "
                "a resend under that reference would not be recognised"
            )
            self.problems.append(Violation("order_id_not_derived", message, ids(read.envelope)))

    def violations(self) -> list[Violation]:
        problems = list(self.problems)
        reported: set[tuple[str, ...]] = set()
        for (buyer, ref), placed in self.by_reference.items():
            if len(placed) > 1:
                reported.add(ids(*placed))
                orders = ", ".join(dict.fromkeys(str(e.order_id) for e in placed))
                message = f"{buyer}/{ref} was placed {len(placed)} times (order {orders}): one reference is one order"
                problems.append(Violation("order_placed_twice", message, ids(*placed)))
        for placed in self.by_order.values():
            if len(placed) > 1 and ids(*placed) not in reported:
                refs = ", ".join(dict.fromkeys(f"{e.buyer_id}/{e.upstream_ref}" for e in placed))
                message = (
                    f"order {placed[0].order_id} was placed {len(placed)} times (as {refs}): one order id is one order"
                )
                problems.append(Violation("order_placed_twice", message, ids(*placed)))
        return problems
