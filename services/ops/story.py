"""What the demo tells after a phase, read from the event log: where chips that came back to the pool went.

A revocation or a cancellation never takes chips back by itself: allocation asks fulfilment to recall each line
not known to have shipped, and only lines fulfilment answers `cancelled` return to the pool, to be allocated
again in the same decision. A lost or refused shipment returns its chips on fulfilment's report alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from schemas.allocation import AllocationRecallRequested, AllocationReleased, ChipsAllocated, OrderClosed
from schemas.approval import ApprovalExpired, ApprovalReleased, ApprovalRevoked, OrderApproved, OrderHeld
from schemas.fulfilment import DeliveryFailed, RecallAnswered
from services.replay.eventlog import EventLog


def _chips(n: int) -> str:
    return f"{n:,} chips"


def _given_again(log: EventLog, released: Iterable[Any]) -> str:
    """Chips handed out again from the batches these releases gave back to, from each release on, per buyer. They go
    out once approval's markers pass the release (docs/time.md), so not necessarily on the input that freed them."""
    since: dict[str, datetime] = {}
    for release in released:
        since[release.batch_id] = min(since.get(release.batch_id, release.released_at), release.released_at)
    given: Counter[str] = Counter()
    for e in log.of(ChipsAllocated):
        p: Any = e.payload
        if p.batch_id in since and p.allocated_at >= since[p.batch_id]:
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
        + _given_again(log, released),
        f"order book closed {len(closed)} order(s) keeping {_chips(sum(c.kept_quantity for c in closed))}; approval "
        f"gave back {_chips(sum(f.quantity for f in freed))} of licence and quota",
    ]


def losses(log: EventLog) -> list[str]:
    """Each failed delivery: its chips back to the pool and who received them."""
    return [
        f"shipment of {_chips(p.quantity)} of {p.batch_id} to {p.buyer_id} {p.outcome}: back to the pool, allocated "
        f"again to {_given_again(log, _released_line(log, p.allocation_id))}"
        for e, p in _payloads(log.of(DeliveryFailed))
    ]


def _released_line(log: EventLog, allocation_id: Any) -> list[Any]:
    return [e.payload for e in log.of(AllocationReleased) if e.payload.allocation_id == allocation_id]  # type: ignore[attr-defined]


def _of(log: EventLog, kind: type[Any], keep: Callable[[Any], bool]) -> list[Any]:
    """The payloads of `kind` that `keep` accepts."""
    return [e.payload for e in log.of(kind) if keep(e.payload)]


def in_force_later(log: EventLog, buyer: str, effective_at: datetime) -> list[str]:
    """What a policy published ahead of its effective_at changed, and when: the buyer's holds, then approvals."""
    held = _of(log, OrderHeld, lambda p: p.buyer_id == buyer)
    approved = _of(log, OrderApproved, lambda p: p.buyer_id == buyer)
    orders = {a.order_id for a in approved}
    given = sum(p.quantity for p in _of(log, ChipsAllocated, lambda p: p.order_id in orders))
    first = min((h.decided_at for h in held), default=None)
    since = f"its order held since {first:%Y-%m-%d %H:%M:%S}" if first else "its order was never held"
    when = ", ".join(f"{a.approved_quantity:,} at {a.decided_at:%H:%M:%S}" for a in approved) or "nothing yet"
    return [
        f"{buyer}: authorised with effect from {effective_at:%H:%M:%S} (published earlier); {since}",
        f"approved {when}; allocated so far: {_chips(given)}",
    ]


def expiry(log: EventLog, licence_id: str, valid_until: datetime) -> list[str]:
    """What a licence's end did: approvals expired on the tick past it, unshipped lines recalled, chips given on."""
    expired = _of(log, ApprovalExpired, lambda p: p.licence_id == licence_id)
    orders = {p.order_id for p in expired}
    recalls = _of(log, AllocationRecallRequested, lambda p: p.order_id in orders)
    answers = [e for e in log.of(RecallAnswered) if e.payload.order_id in orders]  # type: ignore[attr-defined]
    answered = {e.id for e in answers}
    released = _of(log, AllocationReleased, lambda p: p.cause_event_id in answered)  # not earlier losses
    closed = _of(log, OrderClosed, lambda p: p.order_id in orders and p.why == "expired")
    at = min((p.decided_at for p in expired), default=None)
    return [
        f"licence {licence_id} ended at {valid_until:%H:%M:%S}: {len(expired)} approval(s) expired"
        + (f" on the tick at {at:%H:%M:%S}" if at else ""),
        f"{len(recalls)} unshipped line(s) recalled ({_chips(sum(r.quantity for r in recalls))}); "
        f"{_chips(sum(r.quantity for r in released))} back to the pool, allocated again to "
        + _given_again(log, released),
        f"{len(closed)} order(s) closed as expired, keeping {_chips(sum(c.kept_quantity for c in closed))} "
        "that had shipped",
    ]


def _payloads(events: Iterable[Any]) -> list[tuple[Any, Any]]:
    return [(e, e.payload) for e in events]
