"""Read-only views of a pool's book, for read models, replays and tests. They never change the state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from schemas.base import PolicyRef
from services.allocation.domain.state import AllocationState, Rule, Status


@dataclass(frozen=True, slots=True)
class OrderPosition:
    order_id: UUID
    buyer_id: str
    status: Status
    eligible: bool
    """Approved, not suspended, and admitted into the queue: it may receive chips."""
    approved_quantity: int
    allocated: int
    """Chips of live allocations (net of releases), shipped or not."""
    unfilled: int
    """Chips still owed: 0 once the order has left the book (revoked, cancelled, expired, unfilled, closed)."""
    admitted: bool
    """In the queue: every approval decided before it has reached the book (or no marker has been seen yet)."""


@dataclass(frozen=True, slots=True)
class BatchPosition:
    batch_id: str
    ready_at: datetime
    quantity: int
    allocated: int
    remaining: int


@dataclass(frozen=True, slots=True)
class AllocationLine:
    allocation_id: UUID
    order_id: UUID
    buyer_id: str
    batch_id: str
    quantity: int
    allocated_at: datetime
    shipped: bool


@dataclass(frozen=True, slots=True)
class BookSummary:
    pool_id: str
    rule: Rule | None
    """None until the pool's first AllocationPolicySet."""
    policy_ref: PolicyRef | None
    orders: tuple[OrderPosition, ...]
    """Every order the pool has seen, by order id (as a string)."""
    batches: tuple[BatchPosition, ...]
    """Every batch, in supply order (ready time, then batch id)."""
    allocations: tuple[AllocationLine, ...]
    """Live allocations, oldest first."""

    @property
    def eligible_demand(self) -> int:
        return sum(order.unfilled for order in self.orders if order.eligible)

    @property
    def remaining_supply(self) -> int:
        return sum(batch.remaining for batch in self.batches)


def book_summary(state: AllocationState, pool_id: str) -> BookSummary:
    pool = state.pool(pool_id)
    orders = tuple(
        OrderPosition(
            order.order_id,
            order.buyer_id,
            order.status,
            order.eligible,
            order.approved_quantity,
            order.allocated,
            order.unfilled,
            order.admitted,
        )
        for order in sorted(pool.orders.values(), key=lambda order: str(order.order_id))
    )
    batches = tuple(
        BatchPosition(batch.batch_id, batch.ready_at, batch.quantity, batch.allocated, batch.remaining)
        for batch in sorted(pool.batches.values(), key=lambda batch: (batch.ready_at, batch.batch_id))
    )
    allocations = tuple(
        AllocationLine(a.allocation_id, a.order_id, a.buyer_id, a.batch_id, a.quantity, a.allocated_at, a.shipped)
        for a in pool.allocations.values()
        if not a.released
    )
    return BookSummary(pool.pool_id, pool.rule, pool.policy_ref, orders, batches, allocations)
