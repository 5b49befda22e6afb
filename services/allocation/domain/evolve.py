"""How the order book changes with each input it observes and each allocation or release it decided.

Inputs change status, supply and policy only; quantities move only with the book's own ChipsAllocated and
AllocationReleased, so the book is exactly the fold of its ledger. The state is updated in place.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import (
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
)
from schemas.base import PolicyRef
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from services.allocation.domain.state import IN_BOOK, Allocation, AllocationState, Batch, Order, Pool, Status

SHIPPED_STEPS = frozenset({"shipped", "delivered"})
LEFT_AS: dict[str, Status] = {"cancelled": "cancelled", "revoked": "revoked", "closed": "closed"}


def evolve(state: AllocationState, message: Envelope[Any]) -> AllocationState:
    match message.payload:
        case OrderApproved() as approved:
            _approved(state.pool_for_update(approved.pool_id), approved)
        case BatchManufactured() as batch:
            _manufactured(state.pool_for_update(batch.pool_id), batch)
        case AllocationPolicySet() as policy:
            _policy_set(state.pool_for_update(policy.pool_id), policy)
        case ApprovalSuspended() as suspended:
            _toggle(state.pool_for_update(suspended.pool_id), message, suspended.order_id, "approved", "suspended")
        case ApprovalReinstated() as reinstated:
            _toggle(state.pool_for_update(reinstated.pool_id), message, reinstated.order_id, "suspended", "approved")
        case ApprovalRevoked() as revoked:
            _left(state.pool_for_update(revoked.pool_id), revoked.order_id, "revoked")
        case ApprovalReleased() as released:
            _left(state.pool_for_update(released.pool_id), released.order_id, LEFT_AS[released.why])
        case FulfilmentStepRecorded() as recorded if recorded.step in SHIPPED_STEPS:
            _shipped(state.pool_for_update(recorded.pool_id), recorded)
        case ChipsAllocated() as allocated:
            _allocated(state.pool_for_update(allocated.pool_id), allocated)
        case AllocationReleased() as released_line:
            _released(state.pool_for_update(released_line.pool_id), released_line)
        case _:
            pass  # denied and held orders, other fulfilment steps; a failed delivery moves chips by its release
    return state


def _approved(pool: Pool, approved: OrderApproved) -> None:
    if approved.order_id in pool.orders:
        return
    order = Order(approved.order_id, approved.buyer_id, approved.approved_quantity, approved.decided_at)
    pool.orders[order.order_id] = order
    pool.refresh_order(order)


def _manufactured(pool: Pool, batch: BatchManufactured) -> None:
    if batch.batch_id in pool.batches:
        return
    line = Batch(batch.batch_id, batch.quantity, batch.ready_at, batch.site)
    pool.batches[line.batch_id] = line
    pool.available += line.quantity
    pool.refresh_batch(line)


def _policy_set(pool: Pool, policy: AllocationPolicySet) -> None:
    if policy.revision > pool.policy_revision:
        pool.rule = policy.rule
        pool.policy_ref = PolicyRef(policy_id=policy.policy_id, revision=policy.revision)


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
    if order is not None and order.status in IN_BOOK:
        order.status = status
        pool.refresh_order(order)


def _shipped(pool: Pool, recorded: FulfilmentStepRecorded) -> None:
    line = pool.allocations.get(recorded.allocation_id)
    if line is not None and not line.released:
        line.shipped = True


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
    pool.available += line.quantity
    pool.refresh_order(order)
    pool.refresh_batch(batch)
