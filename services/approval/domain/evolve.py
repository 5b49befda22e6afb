"""evolve(state, message) -> the state after an input or one of approval's own events (updated in place)."""

from __future__ import annotations

from typing import Any

from schemas.approval import (
    ApprovalCancelled,
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderDocumentsAdded, OrderPlaced
from schemas.policy import PolicyEvent
from services.approval.domain.policies import BuyerPolicyEvent, apply_to_buyer, apply_to_shared, is_newer
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
)


def evolve(state: ApprovalState, message: Envelope[Any]) -> ApprovalState:
    if message.id in state.applied:
        return state
    state.applied.add(message.id)
    payload = message.payload
    if isinstance(payload, OrderPlaced):
        book = state.buyers.setdefault(payload.buyer_id, BuyerBook())
        if payload.order_id not in book.orders and payload.order_id not in state.cancelled_unplaced:
            book.orders[payload.order_id] = OrderRecord(payload, kinds_of(payload.documents))
    elif isinstance(payload, OrderDocumentsAdded):
        order = state.order(payload.buyer_id, payload.order_id)
        if order is not None:
            order.document_kinds |= kinds_of(payload.documents)
    elif isinstance(payload, OrderCancelled):
        cancel(state, payload)
    elif isinstance(payload, PolicyEvent) and is_newer(state.revisions, payload):
        state.revisions[payload.policy_id] = payload.revision
        state.shared = apply_to_shared(state.shared, payload)
        if isinstance(payload, BuyerPolicyEvent):
            book = state.buyers.setdefault(payload.buyer_id, BuyerBook())
            book.policy = apply_to_buyer(book.policy, payload)
    elif isinstance(payload, ApprovalReleased):
        released(state, payload)
    elif isinstance(payload, StatusChange):
        decided(state, payload)
    return state


def cancel(state: ApprovalState, cancelled: OrderCancelled) -> None:
    order = state.order(cancelled.buyer_id, cancelled.order_id)
    if order is None:
        state.cancelled_unplaced.add(cancelled.order_id)
    elif order.status in ("placed", "held", "approved", "suspended"):
        # An approval's chips are given back by the ApprovalReleased decided for this cancellation.
        order.status = "cancelled"
        state.held.pop(order.order_id, None)


def decided(state: ApprovalState, event: StatusChange) -> None:
    order = state.order(event.buyer_id, event.order_id)
    if order is None:
        return
    if isinstance(event, OrderApproved):
        order.status = "approved"
        order.grant = Grant(event.licence_id, event.tranche_id, event.approved_quantity, event.decided_at)
        state.buyers[event.buyer_id].usage.commit(event.licence_id, event.tranche_id, event.approved_quantity)
    elif isinstance(event, OrderHeld):
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
    else:
        order.status = "revoked"
    state.held.pop(order.order_id, None)


def released(state: ApprovalState, event: ApprovalReleased) -> None:
    order = state.order(event.buyer_id, event.order_id)
    if order is None or order.released:
        return
    order.released = True
    if event.why == "closed":
        order.status = "closed"
    state.buyers[event.buyer_id].usage.release(event.licence_id, event.tranche_id, event.quantity)
