"""What the demo tells after a phase, read from the event log: where chips that came back to the pool went.

A revocation or a cancellation never takes chips back by itself: allocation asks fulfilment to recall each line
not known to have shipped, and only lines fulfilment answers `cancelled` return to the pool, to be allocated
again in the same decision. A lost or refused shipment returns its chips on fulfilment's report alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from schemas.allocation import AllocationRecallRequested, AllocationReleased, ChipsAllocated, OrderClosed
from schemas.approval import ApprovalReleased, ApprovalRevoked
from schemas.fulfilment import DeliveryFailed, RecallAnswered
from services.replay.eventlog import EventLog


def _chips(n: int) -> str:
    return f"{n:,} chips"


def _given_to(log: EventLog, causes: set[Any]) -> str:
    """Chips allocated on these inputs, per buyer."""
    given: Counter[str] = Counter()
    for e in log.of(ChipsAllocated):
        p: Any = e.payload
        if p.cause_event_id in causes:
            given[p.buyer_id] += p.quantity
    return ", ".join(f"{buyer} {n:,}" for buyer, n in sorted(given.items())) or "no one (no order was owed chips)"


def revocation(log: EventLog, buyer: str) -> list[str]:
    """The recall round trip of a buyer's revoked approvals: asked, answered, released, given again, closed."""
    orders = {e.payload.order_id for e in log.of(ApprovalRevoked) if e.payload.buyer_id == buyer}  # type: ignore[attr-defined]
    recalls: list[Any] = [e.payload for e in log.of(AllocationRecallRequested) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    answers = [e for e in log.of(RecallAnswered) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    outcomes = Counter(e.payload.outcome for e in answers)  # type: ignore[attr-defined]
    released: list[Any] = [e.payload for e in log.of(AllocationReleased) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    closed: list[Any] = [e.payload for e in log.of(OrderClosed) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    freed: list[Any] = [e.payload for e in log.of(ApprovalReleased) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    return [
        f"{len(orders)} approval(s) of {buyer} revoked; allocation asked fulfilment to recall {len(recalls)} unshipped "
        f"line(s) ({_chips(sum(r.quantity for r in recalls))})",
        f"fulfilment answered: {', '.join(f'{n} {o}' for o, n in sorted(outcomes.items())) or 'nothing yet'}; "
        f"{_chips(sum(r.quantity for r in released))} back to the pool, allocated again to "
        + _given_to(log, {e.id for e in answers}),
        f"order book closed {len(closed)} order(s) keeping {_chips(sum(c.kept_quantity for c in closed))}; approval "
        f"gave back {_chips(sum(f.quantity for f in freed))} of licence and quota",
    ]


def losses(log: EventLog) -> list[str]:
    """Each failed delivery: its chips back to the pool and who received them."""
    return [
        f"shipment of {_chips(p.quantity)} of {p.batch_id} to {p.buyer_id} {p.outcome}: back to the pool, allocated "
        f"again to {_given_to(log, {e.id})}"
        for e, p in _payloads(log.of(DeliveryFailed))
    ]


def _payloads(events: Iterable[Any]) -> list[tuple[Any, Any]]:
    return [(e, e.payload) for e in events]
