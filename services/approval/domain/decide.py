"""decide(state, input) -> the approval events the input causes, all made at the partition clock. Never changes
the state: when the input is a policy in force or moves the clock past something due, the step is decided on a
copy of the state, against every policy in force at the new clock."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import Any

from schemas.allocation import OrderClosed
from schemas.approval import ApprovalCancelled
from schemas.base import Message, Reason
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderDocumentsAdded, OrderPlaced
from schemas.policy import PolicyEvent
from schemas.topics import BY_NAME
from services.approval.domain.approvals import consequences, expire
from services.approval.domain.due import Boundary, boundaries, bring_due_into_force, falls_due, time_of
from services.approval.domain.evolve import fold_decision
from services.approval.domain.policies import BuyerPolicyEvent, bring_into_force, is_newer, supersedes
from services.approval.domain.state import ApprovalState, OrderRecord
from services.approval.domain.trial import ReleaseWhy, Trial, kinds_of
from services.approval.domain.verdict import Cause, decision_fields

SOURCES = BY_NAME["h200.approval.inbox"].partitions
LANES = BY_NAME["h200.approvals"].partitions
# Lane L feeds allocation's partition L alone when both topics have the same partitions under the same key: then
# each marker need reach only that partition (schemas.clock.ApprovalsPassed), a third of the copies.
LANE_ONLY = (
    BY_NAME["h200.allocation.inbox"].partitions == LANES
    and BY_NAME["h200.approvals"].key == BY_NAME["h200.allocation.inbox"].key
)


def decide(state: ApprovalState, message: Envelope[Any]) -> list[Message]:
    if message.id in state.applied:
        return []
    now = time_of(state, message)
    cause = Cause(message.id, now)
    arriving = in_force_on_arrival(state, message.payload, now)
    events: list[Message] = []
    if arriving is not None or falls_due(state, now):
        state = deepcopy(state)
        events = catch_up(state, now, cause, arriving)
    if arriving is None:
        events += decide_input(state, message.payload, cause)
    arrival = message.arrival
    if isinstance(message.payload, ClockTicked) and arrival is not None:
        # Every decision from now on is made at `now` or later: each lane may admit what came before.
        events += [
            ApprovalsPassed(
                source_partition=arrival.partition, sources=SOURCES, lane=lane, lanes=LANES, at=now, lane_only=LANE_ONLY
            )
            for lane in range(LANES)
        ]
    return events


def in_force_on_arrival(state: ApprovalState, payload: object, now: datetime) -> PolicyEvent | None:
    """The input itself when it is a new policy revision already in force at `now` (else it waits as pending)."""
    if isinstance(payload, PolicyEvent) and is_newer(state.revisions, payload) and payload.effective_at <= now:
        return payload
    return None


def decide_input(state: ApprovalState, payload: object, cause: Cause) -> list[Message]:
    if isinstance(payload, OrderPlaced):
        return order_placed(state, payload, cause)
    if isinstance(payload, OrderDocumentsAdded):
        return documents_added(state, payload, cause)
    if isinstance(payload, OrderCancelled):
        return order_cancelled(state, payload, cause)
    if isinstance(payload, OrderClosed):
        return order_closed(state, payload, cause)
    return []  # a clock tick, a policy (decided in catch_up, or pending, or stale), anything else


def catch_up(state: ApprovalState, now: datetime, cause: Cause, arriving: PolicyEvent | None) -> list[Message]:
    """Decide, on `state` (a copy), everything the step owes at `now`, folding each decision as it is made. Every
    decision is dated `now`, so each is made against the policies in force at `now`, never an earlier mix of them:
    first every policy with effective_at <= now comes into force (the pending ones that fell due, in time order,
    then `arriving`, the input itself); then the consequences of the revisions still in force once all are in
    (suspensions, reinstatements, revocations, cuts), and the expiry of every licence whose valid_until the clock
    passed; then held orders are examined once. The input, if an order, is decided after (by decide_input)."""
    since = state.now
    came = bring_due_into_force(state, now)
    if arriving is not None:
        state.revisions[arriving.policy_id] = arriving.revision
        if supersedes(state, arriving):
            bring_into_force(state, arriving)
            came.append(arriving)
    state.now = now
    # A revision overtaken in the same step (suspended, then reinstated) was never in force at `now`: no effect.
    current = [event for event in came if state.in_force.get(event.policy_id) == event.revision]
    events: list[Message] = []
    for event in current:
        events += folded(state, consequences(Trial(state, cause, state.shared), event))
    # Licence and tranche times as the policies now in force give them (a renewal keeps its approvals open).
    passed = boundaries(state, since, now)
    for boundary in passed:
        if boundary.kind == "expiry":
            events += folded(state, expire(Trial(state, cause, state.shared), boundary.buyer_id, boundary.source_id))
    events += folded(state, reexamine_held(state, cause, current, passed))
    return events


def reexamine_held(
    state: ApprovalState, cause: Cause, current: list[PolicyEvent], passed: list[Boundary]
) -> list[Message]:
    """Once, oldest hold first: the held orders of every buyer a policy of the step or an opening concerns (of all
    buyers for a rule that applies to every buyer)."""
    buyers = {event.buyer_id for event in current if isinstance(event, BuyerPolicyEvent)}
    buyers |= {boundary.buyer_id for boundary in passed if boundary.kind == "opening"}
    everyone = any(not isinstance(event, BuyerPolicyEvent) for event in current)
    trial = Trial(state, cause, state.shared)
    held = [order for order in state.held_orders(None) if everyone or order.buyer_id in buyers]
    decided = (trial.reconsider(order) for order in held)
    return [event for event in decided if event is not None]


def folded(state: ApprovalState, decided: list[Message]) -> list[Message]:
    """Fold decisions into decide's copy as they are made, as evolve will: later ones see what they changed."""
    for event in decided:
        fold_decision(state, event)
    return decided


def order_placed(state: ApprovalState, placed: OrderPlaced, cause: Cause) -> list[Message]:
    """Both gates at the time the order arrives; an order already decided (or cancelled) is not decided again."""
    if state.known(placed.order_id, placed.buyer_id):
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
    if order is None:
        return []
    # The book closes an order it was told had ended (we folded that decision already), one fully delivered, or
    # one left unfilled too long. A delivered or unfilled close may cross our cancellation, revocation or expiry on
    # its way: the book, already done with the order, never closes it again, so that close ends the ended order too.
    ends_open = closed.why in ("delivered", "unfilled") and order.is_open_approval
    if not (order.awaiting_close or ends_open):
        return []
    why: ReleaseWhy = "unfilled" if closed.why == "unfilled" else "closed"
    if order.awaiting_close:
        why = "revoked" if order.status == "revoked" else "expired" if order.status == "expired" else "cancelled"
    trial = Trial(state, cause, state.shared)
    released = trial.release(order, why, closed.kept_quantity)
    return [released, *trial.reconsider_held(closed.buyer_id)]
