"""What the order book decides on each input: chips released, then as many chips allocated as the book allows.

Every input that may add supply or eligible demand runs the pool's rule on the book, so after every input
either no eligible order is unfilled or no batch has chips left (allocation is work-conserving). The book is
read in rank order and only as far as the rule needs. Deciding never changes the state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from heapq import merge
from typing import Any, Literal
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import (
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
)
from schemas.base import Message, PolicyRef
from schemas.envelope import Envelope, derive_id
from schemas.fulfilment import DeliveryFailed
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from services.allocation.domain.rules import (
    Claim,
    Grant,
    Stock,
    approval_rank,
    fill_in_order,
    share_in_order,
    supply_rank,
)
from services.allocation.domain.state import IN_BOOK, Allocation, AllocationState, Batch, Order, Pool, Rule

Why = Literal["order_cancelled", "approval_revoked", "delivery_failed"]
RELEASE_WHY: dict[str, Why | None] = {"cancelled": "order_cancelled", "revoked": "approval_revoked", "closed": None}
"""ApprovalReleased.why -> why its unshipped allocations are released; a closed order keeps what it has."""


def decide(state: AllocationState, message: Envelope[Any]) -> list[Message]:
    match message.payload:
        case OrderApproved() as approved:
            return _on_approved(state.pool(approved.pool_id), approved, message)
        case BatchManufactured() as batch:
            return _on_batch(state.pool(batch.pool_id), batch, message)
        case AllocationPolicySet() as policy:
            return _on_policy(state.pool(policy.pool_id), policy, message)
        case ApprovalReinstated() as reinstated:
            return _on_reinstated(state.pool(reinstated.pool_id), reinstated, message)
        case ApprovalRevoked() as revoked:
            return _on_order_leaving(state.pool(revoked.pool_id), revoked.order_id, "approval_revoked", message)
        case ApprovalReleased() as released:
            why = RELEASE_WHY[released.why]
            if why is None:
                return []
            return _on_order_leaving(state.pool(released.pool_id), released.order_id, why, message)
        case DeliveryFailed() as failed:
            return _on_delivery_failed(state.pool(failed.pool_id), failed, message)
        case ApprovalSuspended():
            return []  # the order keeps what it has; taking demand away frees nothing
        case _:
            return []  # denied and held orders never reach the book; fulfilment steps only mark shipments


def _on_approved(pool: Pool, approved: OrderApproved, cause: Envelope[Any]) -> list[Message]:
    if approved.order_id in pool.orders:
        return []
    claim = Claim(approved.order_id, approved.buyer_id, approved.decided_at, approved.approved_quantity)
    return _allocate(pool, cause, extra_claim=claim)


def _on_batch(pool: Pool, batch: BatchManufactured, cause: Envelope[Any]) -> list[Message]:
    if batch.batch_id in pool.batches:
        return []
    return _allocate(pool, cause, extra_stock=Stock(batch.batch_id, batch.ready_at, batch.quantity))


def _on_policy(pool: Pool, policy: AllocationPolicySet, cause: Envelope[Any]) -> list[Message]:
    if policy.revision <= pool.policy_revision:
        return []
    ref = PolicyRef(policy_id=policy.policy_id, revision=policy.revision)
    return _allocate(pool, cause, rule=policy.rule, policy_ref=ref)


def _on_reinstated(pool: Pool, reinstated: ApprovalReinstated, cause: Envelope[Any]) -> list[Message]:
    order = pool.orders.get(reinstated.order_id)
    if cause.id in pool.toggles_seen or order is None or order.status != "suspended":
        return []
    return _allocate(pool, cause, extra_claim=_claim_of(order))


def _on_order_leaving(pool: Pool, order_id: UUID, why: Why, cause: Envelope[Any]) -> list[Message]:
    order = pool.orders.get(order_id)
    if order is None or order.status not in IN_BOOK:
        return []
    lines = (pool.allocations[allocation_id] for allocation_id in order.allocation_ids)
    releases = [_release(pool, line, why, cause) for line in lines if not line.released and not line.shipped]
    return _allocate(pool, cause, releases=releases, leaving=order_id)


def _on_delivery_failed(pool: Pool, failed: DeliveryFailed, cause: Envelope[Any]) -> list[Message]:
    line = pool.allocations.get(failed.allocation_id)
    if line is None or line.released:
        return []
    return _allocate(pool, cause, releases=[_release(pool, line, "delivery_failed", cause)])


def _release(pool: Pool, line: Allocation, why: Why, cause: Envelope[Any]) -> AllocationReleased:
    return AllocationReleased(
        allocation_id=line.allocation_id,
        pool_id=pool.pool_id,
        order_id=line.order_id,
        buyer_id=line.buyer_id,
        batch_id=line.batch_id,
        quantity=line.quantity,
        why=why,
        cause_event_id=cause.id,
        released_at=cause.occurred_at,
    )


def _allocate(
    pool: Pool,
    cause: Envelope[Any],
    *,
    releases: Sequence[AllocationReleased] = (),
    extra_claim: Claim | None = None,
    extra_stock: Stock | None = None,
    leaving: UUID | None = None,
    rule: Rule | None = None,
    policy_ref: PolicyRef | None = None,
) -> list[Message]:
    """The releases, then the allocations the rule makes on the book as it stands after the input and them."""
    returned: dict[str, int] = {}
    regained: dict[UUID, int] = {}
    for release in releases:
        returned[release.batch_id] = returned.get(release.batch_id, 0) + release.quantity
        if pool.orders[release.order_id].eligible and release.order_id != leaving:
            regained[release.order_id] = regained.get(release.order_id, 0) + release.quantity
    available = pool.available + sum(returned.values()) + (extra_stock.remaining if extra_stock else 0)
    if available == 0:  # the usual case when demand exceeds supply: no need to look at the waiting orders
        return list(releases)
    stock = _stock(pool, returned, extra_stock)
    claims = _claims(pool, regained, extra_claim, leaving)
    rule = rule or pool.rule
    grants = (
        fill_in_order(claims, stock)
        if rule == "first_approved_first_served"
        else share_in_order(claims, stock, available)
    )
    policy_ref = policy_ref or pool.policy_ref
    allocations = [
        ChipsAllocated(
            allocation_id=derive_id("allocation", pool.pool_id, grant.batch_id, grant.order_id, cause.id),
            pool_id=pool.pool_id,
            order_id=grant.order_id,
            buyer_id=grant.buyer_id,
            batch_id=grant.batch_id,
            quantity=grant.quantity,
            rule=rule,
            policy_ref=policy_ref,
            cause_event_id=cause.id,
            allocated_at=_dated(pool, grant, cause.occurred_at, extra_stock, extra_claim),
        )
        for grant in grants
    ]
    return [*releases, *allocations]


def _dated(pool: Pool, grant: Grant, at: datetime, stock: Stock | None, claim: Claim | None) -> datetime:
    """A line is never dated before its batch was ready or its order approved, whatever order inputs came in."""
    batch = pool.batches.get(grant.batch_id)
    ready_at = batch.ready_at if batch else stock.ready_at if stock else at
    order = pool.orders.get(grant.order_id)
    approved_at = order.approved_at if order else claim.approved_at if claim else at
    return max(at, ready_at, approved_at)


def _stock(pool: Pool, returned: dict[str, int], extra: Stock | None) -> Iterator[Stock]:
    """Batches with chips, in supply order, counting the chips this decision returns to them."""
    kept = (_stock_of(pool.batches[batch_id]) for _, batch_id in pool.supply if batch_id not in returned)
    changed = [_stock_of(pool.batches[batch_id], plus=chips) for batch_id, chips in returned.items()]
    if extra is not None:
        changed.append(extra)
    return merge(kept, sorted(changed, key=supply_rank), key=supply_rank)


def _claims(pool: Pool, regained: dict[UUID, int], extra: Claim | None, leaving: UUID | None) -> Iterator[Claim]:
    """Eligible unfilled orders in approval order, counting the chips this decision takes back from them."""
    kept = (
        _claim_of(pool.orders[order_id])
        for *_, order_id in pool.demand
        if order_id not in regained and order_id != leaving
    )
    changed = [_claim_of(pool.orders[order_id], plus=chips) for order_id, chips in regained.items()]
    if extra is not None and extra.unfilled > 0:
        changed.append(extra)
    return merge(kept, sorted(changed, key=approval_rank), key=approval_rank)


def _stock_of(batch: Batch, plus: int = 0) -> Stock:
    return Stock(batch.batch_id, batch.ready_at, batch.remaining + plus)


def _claim_of(order: Order, plus: int = 0) -> Claim:
    return Claim(order.order_id, order.buyer_id, order.approved_at, order.unfilled + plus)
