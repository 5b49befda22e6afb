"""The protocol between the order book and fulfilment for lines whose order stops taking chips.

Chips that are allocated may already be on a truck, and only fulfilment knows: so the book never takes chips back
on its own. When an order leaves the book (cancelled, revoked, expired with its licence, or closed unfilled by the
pool's close_unfilled_after_s) each of its lines not known to have shipped gets an
AllocationRecallRequested; fulfilment answers in the shipment's own order (RecallAnswered): `cancelled` and the
chips return to the pool (AllocationReleased, then reallocated in the same decision), or `already_shipped` and
they stay with the order. When no recall is open the order is closed (OrderClosed) with the chips it kept, and
approval gives back only the rest of its licence and quota. A suspended order keeps its lines, but fulfilment is
told (AllocationSuspended) not to pack or ship them until it is reinstated (AllocationReinstated). A lost or
refused delivery (DeliveryFailed) frees its line at once: fulfilment itself reported it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.allocation import AllocationRecallRequested, AllocationReinstated, AllocationSuspended, OrderClosed
from schemas.approval import ApprovalReinstated, ApprovalSuspended
from schemas.base import Message
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, RecallAnswered
from services.allocation.domain.allocate import Cause, Why, allocate, line_fields, release
from services.allocation.domain.rules import Claim
from services.allocation.domain.state import IN_BOOK, LEAVING, Allocation, Order, Pool, Status

RECALL_WHY: dict[Status, Why] = {
    "cancelled": "order_cancelled",
    "revoked": "approval_revoked",
    "expired": "approval_expired",  # the licence ended: its lines are recalled as for a revocation
    "unfilled": "order_unfilled",  # left unfilled past the pool's deadline: recalled as for a cancellation
}
"""Why a line of a leaving order is recalled (and released), by the status the order leaves with; the order is
closed with that status as its `why`."""


def on_suspended(pool: Pool, suspended: ApprovalSuspended, cause: Cause) -> list[Message]:
    order = pool.orders.get(suspended.order_id)
    if cause.id in pool.toggles_seen or order is None or order.status != "approved":
        return []
    return [
        AllocationSuspended(**line_fields(pool, line, cause), suspended_at=cause.at) for line in _waiting(pool, order)
    ]


def on_reinstated(pool: Pool, reinstated: ApprovalReinstated, cause: Cause) -> list[Message]:
    order = pool.orders.get(reinstated.order_id)
    if cause.id in pool.toggles_seen or order is None or order.status != "suspended":
        return []
    lines: list[Message] = [
        AllocationReinstated(**line_fields(pool, line, cause), reinstated_at=cause.at) for line in _waiting(pool, order)
    ]
    if not order.admitted:  # it takes chips once admitted, in its place in the queue
        return lines
    claim = Claim(order.order_id, order.buyer_id, order.approved_at, order.approved_quantity - order.allocated)
    return [*lines, *allocate(pool, cause, extra_claims=[claim])]


def on_order_leaving(pool: Pool, order_id: UUID, leaving: Status, cause: Cause) -> list[Message]:
    """Recall every line not known to have shipped; with none to recall, the order closes now. An order never
    admitted has no line: it simply leaves."""
    order = pool.orders.get(order_id)
    if order is None or order.status not in IN_BOOK:
        return []
    why = RECALL_WHY[leaving]
    recalls = [
        AllocationRecallRequested(**line_fields(pool, line, cause), why=why, requested_at=cause.at)
        for line in _waiting(pool, order)
        if not line.recall_pending
    ]
    if recalls or order.recalls:
        return list(recalls)
    return [_closed(pool, order, leaving, order.allocated, cause)]


def on_recall_answered(pool: Pool, answered: RecallAnswered, cause: Cause) -> list[Message]:
    line = pool.allocations.get(answered.allocation_id)
    if line is None or not line.recall_pending:
        return []
    order = pool.orders[line.order_id]
    events: list[Message] = []
    kept = order.allocated
    if answered.outcome == "cancelled" and not line.released:
        freed = release(pool, line, RECALL_WHY.get(order.status, "order_cancelled"), cause)
        kept -= line.quantity
        events = allocate(pool, cause, releases=[freed])
    if order.status in LEAVING and order.recalls == {line.allocation_id}:
        events.append(_closed(pool, order, order.status, kept, cause))
    return events


def on_delivery_failed(pool: Pool, failed: DeliveryFailed, cause: Cause) -> list[Message]:
    line = pool.allocations.get(failed.allocation_id)
    if line is None or line.released or line.delivered:
        return []  # unknown, or final already: delivered is final (fulfilment's own rule), so it gives nothing back
    return allocate(pool, cause, releases=[release(pool, line, "delivery_failed", cause)])


def on_delivered(pool: Pool, recorded: FulfilmentStepRecorded, cause: Cause) -> list[Message]:
    """The last chip an order was approved for is delivered: the order closes, keeping them all."""
    line = pool.allocations.get(recorded.allocation_id)
    order = pool.orders.get(line.order_id) if line is not None else None
    if line is None or order is None or line.released or line.delivered or order.status not in IN_BOOK:
        return []
    others = (pool.allocations[allocation_id] for allocation_id in order.allocation_ids)
    undelivered = [other for other in others if not other.released and not other.delivered and other is not line]
    if order.allocated < order.approved_quantity or undelivered:
        return []
    return [_closed(pool, order, "delivered", order.allocated, cause)]


def _waiting(pool: Pool, order: Order) -> list[Allocation]:
    """The order's live lines that fulfilment has not reported as shipped."""
    lines = (pool.allocations[allocation_id] for allocation_id in order.allocation_ids)
    return [line for line in lines if not line.released and not line.shipped]


def _closed(pool: Pool, order: Order, why: Any, kept: int, cause: Cause) -> OrderClosed:
    """`why` is "delivered" or the status the order left the book with (OrderClosed's own words)."""
    return OrderClosed(
        order_id=order.order_id,
        pool_id=pool.pool_id,
        buyer_id=order.buyer_id,
        approved_quantity=order.approved_quantity,
        kept_quantity=kept,
        why=why,
        cause_event_id=cause.id,
        closed_at=cause.at,
    )
