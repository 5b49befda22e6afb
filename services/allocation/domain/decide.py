"""What the order book decides on each input, at the partition's clock (admission.py): chips allocated as the rule
allows to the approvals admitted into the queue, and the protocol with fulfilment for lines whose order stops
taking chips (see lines.py). Deciding never changes the state."""

from __future__ import annotations

import copy
from typing import Any

from schemas.allocation import OrderClosed
from schemas.approval import (
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalReinstated,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
)
from schemas.base import Message, PolicyRef
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, RecallAnswered
from schemas.policy import AllocationPolicySet
from schemas.routing import record_key
from schemas.supply import BatchManufactured
from services.allocation.domain.admission import (
    admits,
    admitted_by,
    after_marker,
    due_unfilled,
    hand_out_as_of,
    is_new_tick,
    marks_of,
    passed_before,
    time_of,
)
from services.allocation.domain.allocate import Cause, allocate
from services.allocation.domain.evolve import evolve
from services.allocation.domain.lines import (
    on_delivered,
    on_delivery_failed,
    on_order_leaving,
    on_recall_answered,
    on_reinstated,
    on_suspended,
)
from services.allocation.domain.rules import Claim, Stock
from services.allocation.domain.rules_in_force import bring_rule_into_force, due_rules, is_newer, pools_with_due_rules
from services.allocation.domain.state import AllocationState, Pool


def decide(state: AllocationState, message: Envelope[Any]) -> list[Message]:
    now = time_of(state, message)
    if not pools_with_due_rules(state, now):
        return _decide(state, message, now)
    # A revision of a rule comes into force at this step: what it changes is decided first, on a copy (rare: only
    # when the clock passes a pending revision's effective_at), then the input against the rule now in force.
    scratch = copy.deepcopy(state)
    cause = Cause(message.id, now, *hand_out_as_of(scratch, message, now))
    events: list[Message] = []
    for pool in pools_with_due_rules(scratch, now):
        for policy in due_rules(pool, now):
            changed = _rule_changed(pool, policy, cause)
            bring_rule_into_force(pool, policy)
            _fold(scratch, message, changed, now, len(events))
            events.extend(changed)
    return events + _decide(scratch, message, now)


def _fold(state: AllocationState, cause: Envelope[Any], events: list[Message], at: Any, first: int) -> None:
    """Fold decisions of this step into decide's copy as evolve will fold their envelopes."""
    for index, event in enumerate(events, start=first):
        envelope = make_envelope(
            event,
            key=record_key(event),
            producer="allocation",
            occurred_at=at,
            message_id=derive_id(cause.id, "in-force", index),
        )
        evolve(state, envelope)


def _decide(state: AllocationState, message: Envelope[Any], now: Any) -> list[Message]:
    cause = Cause(message.id, now, *hand_out_as_of(state, message, now))
    match message.payload:
        case OrderApproved() as approved:
            return _on_approved(state, approved, cause)
        case BatchManufactured() as batch:
            return _on_batch(state.pool(batch.pool_id), batch, cause)
        case AllocationPolicySet() as policy:
            return _on_policy(state.pool(policy.pool_id), policy, cause)
        case ApprovalSuspended() as suspended:
            return on_suspended(state.pool(suspended.pool_id), suspended, cause)
        case ApprovalReinstated() as reinstated:
            return on_reinstated(state.pool(reinstated.pool_id), reinstated, cause)
        case ApprovalRevoked() as revoked:
            return on_order_leaving(state.pool(revoked.pool_id), revoked.order_id, "revoked", cause)
        case ApprovalCancelled() as cancelled:
            return on_order_leaving(state.pool(cancelled.pool_id), cancelled.order_id, "cancelled", cause)
        case ApprovalExpired() as expired:
            return on_order_leaving(state.pool(expired.pool_id), expired.order_id, "expired", cause)
        case RecallAnswered() as answered:
            return on_recall_answered(state.pool(answered.pool_id), answered, cause)
        case DeliveryFailed() as failed:
            return on_delivery_failed(state.pool(failed.pool_id), failed, cause)
        case FulfilmentStepRecorded() as recorded if recorded.step == "delivered":
            return on_delivered(state.pool(recorded.pool_id), recorded, cause)
        case ClockTicked() as ticked:
            return _on_tick(state, cause) if is_new_tick(state, ticked) else []
        case ApprovalsPassed() as marker:
            return _on_marker(state, marker, message, cause)
        case _:
            # Denied and held orders never reach the book; ApprovalReleased ends the chain (approval's answer to
            # our OrderClosed); other fulfilment steps only mark shipments.
            return []


def _on_approved(state: AllocationState, approved: OrderApproved, cause: Cause) -> list[Message]:
    pool = state.pool(approved.pool_id)
    if pool.known(approved.order_id) or not admits(state, approved.decided_at):
        return []  # a repeat, or kept in the book until the markers admit it
    claim = Claim(approved.order_id, approved.buyer_id, approved.decided_at, approved.approved_quantity)
    return allocate(pool, cause, extra_claims=[claim])


def _on_batch(pool: Pool, batch: BatchManufactured, cause: Cause) -> list[Message]:
    if batch.batch_id in pool.batches:
        return []
    return allocate(pool, cause, extra_stock=Stock(batch.batch_id, batch.ready_at, batch.quantity))


def _on_policy(pool: Pool, policy: AllocationPolicySet, cause: Cause) -> list[Message]:
    """A newer revision in force now changes the rule; one effective later waits, pending (rules_in_force.py)."""
    if not is_newer(pool, policy) or policy.effective_at > cause.at:
        return []
    return _rule_changed(pool, policy, cause)


def _rule_changed(pool: Pool, policy: AllocationPolicySet, cause: Cause) -> list[Message]:
    ref = PolicyRef(policy_id=policy.policy_id, revision=policy.revision)
    return allocate(pool, cause, rule=policy.rule, policy_ref=ref)


def _on_tick(state: AllocationState, cause: Cause) -> list[Message]:
    """Orders left unfilled too long leave the book (their unshipped lines recalled, as for a cancellation); the
    recalls come first, then the chips the clock's move lets the others take (a batch ready by the new time, when
    approval's markers are ahead of the old one), then the orders closed at once, as for every other decision."""
    events: list[Message] = []
    for pool in state.pools.values():
        leaving = [order.order_id for order in due_unfilled(pool, cause.at)]
        for order_id in leaving:
            events.extend(on_order_leaving(pool, order_id, "unfilled", cause))
        if cause.marked:
            events.extend(allocate(pool, cause, leaving=frozenset(leaving)))
    return sorted(events, key=lambda event: isinstance(event, OrderClosed))


def _on_marker(state: AllocationState, marker: ApprovalsPassed, message: Envelope[Any], cause: Cause) -> list[Message]:
    """The approvals every source has now passed join the queue; the frontier may have moved past batches' ready
    times: free chips go to the admitted approvals as a batch's arrival would give them."""
    mark = passed_before(*after_marker(state, marker, message))
    moved = mark != passed_before(*marks_of(state))
    events: list[Message] = []
    for pool in state.pools.values():
        claims = [
            Claim(order.order_id, order.buyer_id, order.approved_at, order.unfilled)
            for order in admitted_by(pool, mark)
            if order.status == "approved"
        ]
        if claims or moved:  # a repeat of a marker changes nothing
            events.extend(allocate(pool, cause, extra_claims=claims))
    return events
