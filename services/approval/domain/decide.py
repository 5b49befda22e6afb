"""decide(state, input) -> the approval events the input causes, all made at the partition clock. Never changes
the state: when the input moves the clock past something due, that is decided first on a copy of the state."""

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
from services.approval.domain.approvals import expire, policy_in_force
from services.approval.domain.due import Boundary, boundaries, due_policy, falls_due, time_of
from services.approval.domain.evolve import fold_decision
from services.approval.domain.policies import bring_into_force, is_newer, supersedes
from services.approval.domain.state import ApprovalState, OrderRecord
from services.approval.domain.trial import ReleaseWhy, Trial, kinds_of
from services.approval.domain.verdict import Cause, decision_fields

SOURCES = BY_NAME["h200.approval.inbox"].partitions
LANES = BY_NAME["h200.approvals"].partitions


def decide(state: ApprovalState, message: Envelope[Any]) -> list[Message]:
    if message.id in state.applied:
        return []
    now = time_of(state, message)
    cause = Cause(message.id, now)
    events: list[Message] = []
    if falls_due(state, now):
        state = deepcopy(state)
        events = catch_up(state, now, cause)
    events += decide_input(state, message.payload, cause)
    arrival = message.arrival
    if isinstance(message.payload, ClockTicked) and arrival is not None:
        # Every decision from now on is made at `now` or later: each lane may admit what came before.
        events += [
            ApprovalsPassed(source_partition=arrival.partition, sources=SOURCES, lane=lane, lanes=LANES, at=now)
            for lane in range(LANES)
        ]
    return events


def decide_input(state: ApprovalState, payload: object, cause: Cause) -> list[Message]:
    if isinstance(payload, OrderPlaced):
        return order_placed(state, payload, cause)
    if isinstance(payload, OrderDocumentsAdded):
        return documents_added(state, payload, cause)
    if isinstance(payload, OrderCancelled):
        return order_cancelled(state, payload, cause)
    if isinstance(payload, OrderClosed):
        return order_closed(state, payload, cause)
    if isinstance(payload, PolicyEvent) and is_newer(state.revisions, payload) and payload.effective_at <= cause.at:
        return policy_in_force(state, payload, cause)
    return []  # a clock tick, a policy not yet in force (pending), a stale revision, anything else


def catch_up(state: ApprovalState, now: datetime, cause: Cause) -> list[Message]:
    """Decide, on `state` (a copy), what falls due up to `now` in time order, folding each decision as it is made:
    pending policies coming into force, then at each licence or tranche time its expiries and re-examined holds."""
    passed = boundaries(state, state.now, now)
    events: list[Message] = []
    while True:
        pending = due_policy(state, now)
        boundary = passed[0] if passed else None
        if pending is not None and (boundary is None or pending.effective_at <= boundary.at):
            state.pending.pop(0)
            decided: list[Message] = []
            if supersedes(state, pending.event):
                decided = policy_in_force(state, pending.event, cause)
                bring_into_force(state, pending.event)
        elif boundary is not None:
            passed.pop(0)
            decided = at_boundary(state, boundary, cause)
        else:
            break
        for event in decided:
            fold_decision(state, event)
        events += decided
    state.now = now
    return events


def at_boundary(state: ApprovalState, boundary: Boundary, cause: Cause) -> list[Message]:
    trial = Trial(state, cause, state.shared)
    if boundary.kind == "expiry":
        return expire(trial, boundary.buyer_id, boundary.source_id)
    return trial.reconsider_held(boundary.buyer_id)


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
