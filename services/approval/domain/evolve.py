"""evolve(state, message) -> the state after an input or one of approval's own events (updated in place).

Like decide, it first moves the partition clock: pending policies that the new time reaches come into force (the
decisions they cause follow as approval's own events)."""

from __future__ import annotations

from typing import Any

from schemas.approval import (
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.clock import ApprovalsPassed
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderDocumentsAdded, OrderPlaced
from schemas.policy import PolicyEvent
from services.approval.domain.due import bring_due_into_force, falls_due, next_due, record_pending, time_of
from services.approval.domain.policies import bring_into_force, is_newer, supersedes
from services.approval.domain.state import ApprovalState, BuyerBook, Grant, OrderRecord
from services.approval.domain.trial import kinds_of

StatusChange = (
    OrderApproved
    | OrderDenied
    | OrderHeld
    | ApprovalSuspended
    | ApprovalReinstated
    | ApprovalRevoked
    | ApprovalCancelled
    | ApprovalExpired
)

OwnEvent = (*StatusChange.__args__, ApprovalReleased, ApprovalsPassed)


def evolve(state: ApprovalState, message: Envelope[Any]) -> ApprovalState:
    if message.id in state.applied:
        return state
    state.applied.add(message.id)
    if state.done_with and not isinstance(message.payload, OwnEvent):
        state.forget_done()
    now = time_of(state, message)
    moved = falls_due(state, now)
    if moved:
        bring_due_into_force(state, now)
    state.now = now
    payload = message.payload
    if isinstance(payload, OrderPlaced):
        book = state.buyers.setdefault(payload.buyer_id, BuyerBook())
        if payload.order_id in state.cancelled_unplaced:
            # Placed after its cancellation: done with from the start, and remembered as such from now on.
            state.cancelled_unplaced.discard(payload.order_id)
            state.forgotten.add(payload.order_id)
        elif not state.known(payload.order_id, payload.buyer_id):
            book.orders[payload.order_id] = OrderRecord(payload, kinds_of(payload.documents))
    elif isinstance(payload, OrderDocumentsAdded):
        order = state.order(payload.buyer_id, payload.order_id)
        if order is not None:
            order.document_kinds |= kinds_of(payload.documents)
    elif isinstance(payload, OrderCancelled):
        cancel(state, payload)
    elif isinstance(payload, PolicyEvent) and is_newer(state.revisions, payload):
        # Seen now, so a repeat is ignored; in force now or, if effective later, when the clock gets there.
        state.revisions[payload.policy_id] = payload.revision
        if payload.effective_at > now:
            record_pending(state, payload)
        elif supersedes(state, payload):
            bring_into_force(state, payload)
        moved = True
    else:
        fold_decision(state, payload)
    if moved:
        state.next_due = next_due(state)
    return state


def fold_decision(state: ApprovalState, payload: object) -> None:
    """One of approval's own events (decide folds them into its copy the same way)."""
    if isinstance(payload, ApprovalReleased):
        released(state, payload)
    elif isinstance(payload, StatusChange):
        decided(state, payload)


def cancel(state: ApprovalState, cancelled: OrderCancelled) -> None:
    order = state.order(cancelled.buyer_id, cancelled.order_id)
    if order is None:
        if cancelled.order_id not in state.forgotten:
            state.cancelled_unplaced.add(cancelled.order_id)
    elif order.status in ("placed", "held", "approved", "suspended"):
        # An approval's chips are given back by the ApprovalReleased decided for this cancellation.
        order.status = "cancelled"
        state.held.pop(order.order_id, None)
        state.forget_if_done(order)


def decided(state: ApprovalState, event: StatusChange) -> None:
    order = state.order(event.buyer_id, event.order_id)
    if order is None:
        return
    if isinstance(event, OrderApproved):
        order.status = "approved"
        order.grant = Grant(event.licence_id, event.tranche_id, event.approved_quantity, event.decided_at)
        state.buyers[event.buyer_id].usage.commit(event.licence_id, event.tranche_id, event.approved_quantity)
    elif isinstance(event, OrderHeld):
        if order.status == "cancelled":
            # Held again as time passed, in the step of the cancellation that evolve folded just before.
            return
        order.status = "held"
        order.held_since = order.held_since or event.decided_at
        order.held_reasons = event.reasons
        state.held[order.order_id] = order.buyer_id
        return
    elif isinstance(event, OrderDenied):
        order.status = "denied"
    elif isinstance(event, ApprovalSuspended):
        order.status = "suspended"
    elif isinstance(event, ApprovalReinstated):
        order.status = "approved"
    elif isinstance(event, ApprovalCancelled):
        order.status = "cancelled"
    elif isinstance(event, ApprovalExpired):
        order.status = "expired"
    else:
        order.status = "revoked"
    state.held.pop(order.order_id, None)
    state.forget_if_done(order)


def released(state: ApprovalState, event: ApprovalReleased) -> None:
    order = state.order(event.buyer_id, event.order_id)
    if order is None or order.released:
        return
    order.released = True
    if event.why in ("closed", "unfilled"):
        order.status = "closed"
    state.buyers[event.buyer_id].usage.release(event.licence_id, event.tranche_id, event.quantity)
    state.forget_if_done(order)
