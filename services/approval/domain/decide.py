"""decide(state, input) -> the approval events the input causes. Never changes the state."""

from __future__ import annotations

from typing import Any, Literal

from schemas.allocation import OrderClosed
from schemas.approval import ApprovalCancelled
from schemas.base import Message, Reason
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderDocumentsAdded, OrderPlaced
from schemas.policy import ImportUseRulesSet, PolicyEvent
from services.approval.domain.approvals import consequences
from services.approval.domain.policies import BuyerPolicyEvent, apply_to_buyer, apply_to_shared, is_newer
from services.approval.domain.state import ApprovalState, OrderRecord
from services.approval.domain.trial import Trial, kinds_of
from services.approval.domain.verdict import Cause, decision_fields


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
    if isinstance(payload, OrderClosed):
        return order_closed(state, payload, cause)
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
    """A cancelled approval leaves the order book (which recalls what has not shipped); a cancelled held order just
    leaves the held set (in evolve). Licence and quota are given back when the order book closes the order."""
    order = state.order(cancelled.buyer_id, cancelled.order_id)
    if order is None or not order.is_open_approval:
        return []
    trial = Trial(state, cause, state.shared)
    why = Reason(code="order_cancelled", message=f"cancelled by the buyer: {cancelled.reason}", gate="intake")
    return [ApprovalCancelled(**decision_fields(order.placed, trial.grant_refs(order), cause), reason=why)]


def order_closed(state: ApprovalState, closed: OrderClosed, cause: Cause) -> list[Message]:
    """The order book is done with an order: give back what it did not keep, then look again at held orders of the
    buyer that were waiting for it."""
    order = state.order(closed.buyer_id, closed.order_id)
    # The book closes an order it was told had ended (we folded that decision already), or one fully delivered.
    # A delivered close may cross our cancellation or revocation on its way: the book, already done with the order,
    # never closes it again, so that close ends the ended order too.
    ended = order is not None and (order.awaiting_close or (closed.why == "delivered" and order.is_open_approval))
    if order is None or not ended:
        return []
    trial = Trial(state, cause, state.shared)
    why: Literal["cancelled", "revoked", "closed"] = "closed"
    if order.awaiting_close:
        why = "revoked" if order.status == "revoked" else "cancelled"
    released = trial.release(order, why, closed.kept_quantity)
    return [released, *trial.reconsider_held(closed.buyer_id)]


def policy_changed(state: ApprovalState, event: PolicyEvent, cause: Cause) -> list[Message]:
    """A newer policy revision: its effect on open approvals, then every held order it concerns, decided again."""
    trial = Trial(state, cause, apply_to_shared(state.shared, event))
    if isinstance(event, ImportUseRulesSet):
        return trial.reconsider_held(None)
    if not isinstance(event, BuyerPolicyEvent):
        return []
    trial.policies[event.buyer_id] = apply_to_buyer(state.book_of(event.buyer_id).policy, event)
    return consequences(trial, event) + trial.reconsider_held(event.buyer_id)
