"""How the order book changes with each input it observes and each allocation or release it decided.

Inputs change the clock, admission, status, supply and policy only; quantities move only with the book's own
ChipsAllocated and AllocationReleased, so the book is exactly the fold of its ledger. A tick changes the status of
the orders it closes unfilled and a marker admits approvals, by the same rules `decide` applies (admission.py).
The state is updated in place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.allocation import (
    AllocationRecallRequested,
    AllocationReinstated,
    AllocationReleased,
    AllocationSuspended,
    ChipsAllocated,
    OrderClosed,
)
from schemas.approval import (
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalReinstated,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
)
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded, RecallAnswered
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from services.allocation.domain.admission import (
    admits,
    admitted_by,
    after_marker,
    due_unfilled,
    is_new_tick,
    marks_of,
    passed_before,
    time_of,
)
from services.allocation.domain.rules_in_force import apply_rule, bring_due_into_force, is_newer, pools_with_due_rules
from services.allocation.domain.state import IN_BOOK, LEAVING, Allocation, AllocationState, Batch, Order, Pool, Status

SHIPPED_STEPS = frozenset({"shipped", "customs_cleared", "held", "released", "delivered", "lost", "refused"})
"""Steps that mean the chips left the warehouse."""

OWN_EVENTS = (
    ChipsAllocated,
    AllocationReleased,
    AllocationRecallRequested,
    AllocationSuspended,
    AllocationReinstated,
    OrderClosed,
)
"""What the book decides: folded after the input of their step, so orders done with wait for the next input."""


def evolve(state: AllocationState, message: Envelope[Any]) -> AllocationState:
    if not isinstance(message.payload, OWN_EVENTS):
        for pool in state.pools.values():
            if pool.done_with:
                pool.forget_done()
    now = state.now = time_of(state, message)
    for pool in pools_with_due_rules(state, now):
        bring_due_into_force(pool, now)
    match message.payload:
        case OrderApproved() as approved:
            _approved(state.pool_for_update(approved.pool_id), approved, admitted=admits(state, approved.decided_at))
        case BatchManufactured() as batch:
            _manufactured(state.pool_for_update(batch.pool_id), batch)
        case AllocationPolicySet() as policy:
            _policy_set(state.pool_for_update(policy.pool_id), policy, now)
        case ApprovalSuspended() as suspended:
            _toggle(state.pool_for_update(suspended.pool_id), message, suspended.order_id, "approved", "suspended")
        case ApprovalReinstated() as reinstated:
            _toggle(state.pool_for_update(reinstated.pool_id), message, reinstated.order_id, "suspended", "approved")
        case ApprovalRevoked() as revoked:
            _left(state.pool_for_update(revoked.pool_id), revoked.order_id, "revoked")
        case ApprovalCancelled() as cancelled:
            _left(state.pool_for_update(cancelled.pool_id), cancelled.order_id, "cancelled")
        case ApprovalExpired() as expired:
            _left(state.pool_for_update(expired.pool_id), expired.order_id, "expired")
        case ClockTicked() as ticked if is_new_tick(state, ticked):
            state.ticked = ticked.at
            _ticked(state, now)
        case ApprovalsPassed() as marker:
            _marked(state, marker, message)
        case FulfilmentStepRecorded() as recorded if recorded.step in SHIPPED_STEPS:
            _shipped(state.pool_for_update(recorded.pool_id), recorded)
        case AllocationRecallRequested() as recall:
            _recall(state.pool_for_update(recall.pool_id), recall.allocation_id, asked=True)
        case RecallAnswered() as answered:
            _recall(state.pool_for_update(answered.pool_id), answered.allocation_id, asked=False)
            if answered.outcome == "already_shipped":
                _shipped(state.pool_for_update(answered.pool_id), answered)
        case OrderClosed() as closed:
            _left(state.pool_for_update(closed.pool_id), closed.order_id, "closed")
        case ChipsAllocated() as allocated:
            _allocated(state.pool_for_update(allocated.pool_id), allocated)
        case AllocationReleased() as released_line:
            _released(state.pool_for_update(released_line.pool_id), released_line)
        case _:
            pass  # denied and held orders, other fulfilment steps; a failed delivery moves chips by its release
    return state


def _approved(pool: Pool, approved: OrderApproved, *, admitted: bool) -> None:
    if pool.known(approved.order_id):
        return
    order = Order(approved.order_id, approved.buyer_id, approved.approved_quantity, approved.decided_at)
    order.admitted = admitted
    pool.orders[order.order_id] = order
    pool.refresh_order(order)


def _ticked(state: AllocationState, now: datetime) -> None:
    for pool in state.pools.values():
        for order in due_unfilled(pool, now):
            _left(pool, order.order_id, "unfilled")


def _marked(state: AllocationState, marker: ApprovalsPassed, message: Envelope[Any]) -> None:
    state.passed, state.lanes, state.sources, state.lane = after_marker(state, marker, message)
    mark = passed_before(*marks_of(state))
    for pool in state.pools.values():
        for order in admitted_by(pool, mark):
            order.admitted = True
            pool.refresh_order(order)


def _manufactured(pool: Pool, batch: BatchManufactured) -> None:
    if batch.batch_id in pool.batches:
        return
    line = Batch(batch.batch_id, batch.quantity, batch.ready_at, batch.site)
    pool.batches[line.batch_id] = line
    pool.available += line.quantity
    pool.refresh_batch(line)


def _policy_set(pool: Pool, policy: AllocationPolicySet, now: datetime) -> None:
    if not is_newer(pool, policy):
        return
    if policy.effective_at > now:
        pool.pending_rules.append(policy)
    else:
        apply_rule(pool, policy)


def _toggle(pool: Pool, message: Envelope[Any], order_id: UUID, before: Status, after: Status) -> None:
    if message.id in pool.toggles_seen:
        return
    pool.toggles_seen.add(message.id)
    order = pool.orders.get(order_id)
    if order is not None and order.status == before:
        order.status = after
        pool.refresh_order(order)


def _left(pool: Pool, order_id: UUID, status: Status) -> None:
    order = pool.orders.get(order_id)
    if order is not None and (order.status in IN_BOOK or (status == "closed" and order.status in LEAVING)):
        order.status = status
        pool.refresh_order(order)
        pool.forget_if_done(order_id)


def _shipped(pool: Pool, recorded: FulfilmentStepRecorded | RecallAnswered) -> None:
    line = pool.allocations.get(recorded.allocation_id)
    if line is not None and not line.released:
        line.shipped = True
        line.delivered = line.delivered or (
            isinstance(recorded, FulfilmentStepRecorded) and recorded.step == "delivered"
        )
        pool.forget_if_done(line.order_id)


def _recall(pool: Pool, allocation_id: UUID, *, asked: bool) -> None:
    line = pool.allocations.get(allocation_id)
    if line is None:
        return
    order = pool.orders[line.order_id]
    if asked and not line.released and not line.shipped:
        line.recall_pending = True
        order.recalls.add(allocation_id)
    elif not asked:
        line.recall_pending = False
        order.recalls.discard(allocation_id)
        pool.forget_if_done(line.order_id)


def _allocated(pool: Pool, allocated: ChipsAllocated) -> None:
    order, batch = pool.orders.get(allocated.order_id), pool.batches.get(allocated.batch_id)
    if allocated.allocation_id in pool.allocations or order is None or batch is None:
        return
    pool.allocations[allocated.allocation_id] = Allocation(
        allocated.allocation_id,
        allocated.order_id,
        allocated.buyer_id,
        allocated.batch_id,
        allocated.quantity,
        allocated.allocated_at,
    )
    order.allocation_ids.append(allocated.allocation_id)
    order.allocated += allocated.quantity
    batch.allocated += allocated.quantity
    pool.available -= allocated.quantity
    pool.refresh_order(order)
    pool.refresh_batch(batch)


def _released(pool: Pool, released: AllocationReleased) -> None:
    line = pool.allocations.get(released.allocation_id)
    if line is None or line.released:
        return
    line.released = True
    order, batch = pool.orders[line.order_id], pool.batches[line.batch_id]
    order.allocated -= line.quantity
    batch.allocated -= line.quantity
    batch.returns.append((released.released_at, line.quantity))
    pool.available += line.quantity
    pool.forget_if_done(line.order_id)
    pool.refresh_order(order)
    pool.refresh_batch(batch)
