"""One (buyer, upstream reference) is one order: intake records it once, under the id derived from the pair.

A record written twice carries the same envelope id and counts once (services.replay.eventlog); two OrderPlaced
with different ids for one reference mean the order was placed twice (e.g. by two intake partitions that each
had never seen it), and its approval, quota and chips may be taken twice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from schemas.envelope import Envelope, order_id_for
from schemas.intake import OrderPlaced
from services.replay.eventlog import EventLog
from services.replay.violations import Violation, ids

Event = Envelope[Any]


def one_order_per_reference(log: EventLog) -> list[Violation]:
    """More than one OrderPlaced per (buyer, upstream ref) or per order id, and order ids not derived from it."""
    by_reference: dict[tuple[str, str], list[Event]] = defaultdict(list)
    by_order: dict[Any, list[Event]] = defaultdict(list)
    problems: list[Violation] = []
    for e in log.of(OrderPlaced):
        p: Any = e.payload
        by_reference[(p.buyer_id, p.upstream_ref)].append(e)
        by_order[p.order_id].append(e)
        expected = order_id_for(p.buyer_id, p.upstream_ref)
        if p.order_id != expected:
            message = (
                f"order {p.order_id} placed for {p.buyer_id}/{p.upstream_ref}, whose order id is {expected}: "
                "a resend under that reference would not be recognised"
            )
            problems.append(Violation("order_id_not_derived", message, ids(e)))
    reported: set[tuple[str, ...]] = set()
    for (buyer, ref), placed in by_reference.items():
        if len(placed) > 1:
            reported.add(ids(*placed))
            orders = ", ".join(dict.fromkeys(str(e.payload.order_id) for e in placed))
            message = f"{buyer}/{ref} was placed {len(placed)} times (order {orders}): one reference is one order"
            problems.append(Violation("order_placed_twice", message, ids(*placed)))
    for order_id, placed in by_order.items():
        if len(placed) > 1 and ids(*placed) not in reported:
            named = (f"{e.payload.buyer_id}/{e.payload.upstream_ref}" for e in placed)
            refs = ", ".join(dict.fromkeys(named))
            message = f"order {order_id} was placed {len(placed)} times (as {refs}): one order id is one order"
            problems.append(Violation("order_placed_twice", message, ids(*placed)))
    return problems
