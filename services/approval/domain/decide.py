"""decide(state, input) -> the approval events the input causes. Never changes the state."""

from __future__ import annotations

from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderDocumentsAdded, OrderPlaced
from schemas.policy import ImportUseRulesSet, PolicyEvent
from services.approval.domain.approvals import consequences
from services.approval.domain.policies import BuyerPolicyEvent, apply_to_buyer, apply_to_shared, is_newer
from services.approval.domain.state import ApprovalState, OrderRecord
from services.approval.domain.trial import Trial, kinds_of
from services.approval.domain.verdict import Cause


def decide(state: ApprovalState, message: Envelope[Any]) -> list[Message]:
    if message.id in state.applied:
        return []
    cause = Cause(message.id, message.occurred_at)
    payload = message.payload
    if isinstance(payload, OrderPlaced):
        return order_placed(state, payload, cause)
    if isinstance(payload, OrderDocumentsAdded):
        return documents_added(state, payload, cause)
    if isinstance(payload, OrderCancelled):
        return order_cancelled(state, payload, cause)
    if isinstance(payload, PolicyEvent) and is_newer(state.revisions, payload):
        return policy_changed(state, payload, cause)
    return []


def order_placed(state: ApprovalState, placed: OrderPlaced, cause: Cause) -> list[Message]:
    """Both gates at the time the order arrives; an order already decided (or cancelled) is not decided again."""
    if state.order(placed.buyer_id, placed.order_id) is not None or placed.order_id in state.cancelled_unplaced:
        return []
    decided = Trial(state, cause, state.shared).reconsider(OrderRecord(placed, kinds_of(placed.documents)))
    return [decided] if decided is not None else []


def documents_added(state: ApprovalState, added: OrderDocumentsAdded, cause: Cause) -> list[Message]:
    """New documents may lift a hold: the held order is decided again with them."""
    order = state.order(added.buyer_id, added.order_id)
    if order is None or order.status != "held":
        return []
    kinds = order.document_kinds | kinds_of(added.documents)
    decided = Trial(state, cause, state.shared).reconsider(order, kinds)
    return [decided] if decided is not None else []


def order_cancelled(state: ApprovalState, cancelled: OrderCancelled, cause: Cause) -> list[Message]:
    """A cancelled approval gives its chips back; a cancelled held order just leaves the held set (in evolve)."""
    order = state.order(cancelled.buyer_id, cancelled.order_id)
    if order is None or not order.is_open_approval:
        return []
    return [Trial(state, cause, state.shared).release(order, "cancelled", ())]


def policy_changed(state: ApprovalState, event: PolicyEvent, cause: Cause) -> list[Message]:
    """A newer policy revision: its effect on open approvals, then every held order it concerns, decided again."""
    trial = Trial(state, cause, apply_to_shared(state.shared, event))
    if isinstance(event, ImportUseRulesSet):
        return trial.reconsider_held(None)
    if not isinstance(event, BuyerPolicyEvent):
        return []
    trial.policies[event.buyer_id] = apply_to_buyer(state.book_of(event.buyer_id).policy, event)
    return consequences(trial, event) + trial.reconsider_held(event.buyer_id)
