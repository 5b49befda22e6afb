"""Running the pool's rule on the book: the releases a decision makes, then as many chips allocated as it allows.

Every input that may add supply or eligible demand runs the rule, so after every input either no eligible order
is unfilled or no batch has chips left (allocation is work-conserving), once the pool has a rule: a pool whose
AllocationPolicySet has not arrived allocates nothing, and its demand waits for it. Every line cites the policy
revision it applied. The book is read in rank order and only as far as the rule needs. Deciding never changes the
state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from heapq import merge
from itertools import takewhile
from typing import Any, Literal
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.base import Message, PolicyRef
from schemas.envelope import derive_id
from services.allocation.domain.rules import (
    Claim,
    Grant,
    Stock,
    approval_rank,
    fill_in_order,
    share_in_order,
    supply_rank,
)
from services.allocation.domain.state import Allocation, Batch, Order, Pool, Rule

Why = Literal["order_cancelled", "approval_revoked", "approval_expired", "order_unfilled", "delivery_failed"]


@dataclass(frozen=True, slots=True)
class Cause:
    """The input a decision is made on, and the partition's clock then: the time of everything it decides, except
    chips handed out, which are handed out as of `as_of` (admission.hand_out_as_of)."""

    id: UUID
    at: datetime
    marked: bool = False
    """Approval's markers exist: chips are handed out only as of `as_of`, never later than its frontier."""
    as_of: datetime | None = None
    """When marked, the time of every ChipsAllocated (None: a lane or source is still unheard, none are)."""


def line_fields(pool: Pool, line: Allocation, cause: Cause) -> dict[str, Any]:
    """What every event about one ledger line names: the line, and the input that caused the event."""
    return {
        "allocation_id": line.allocation_id,
        "pool_id": pool.pool_id,
        "order_id": line.order_id,
        "buyer_id": line.buyer_id,
        "batch_id": line.batch_id,
        "quantity": line.quantity,
        "cause_event_id": cause.id,
    }


def release(pool: Pool, line: Allocation, why: Why, cause: Cause) -> AllocationReleased:
    return AllocationReleased(**line_fields(pool, line, cause), why=why, released_at=cause.at)


def allocate(
    pool: Pool,
    cause: Cause,
    *,
    releases: Sequence[AllocationReleased] = (),
    extra_claims: Sequence[Claim] = (),
    extra_stock: Stock | None = None,
    leaving: Collection[UUID] = (),
    rule: Rule | None = None,
    policy_ref: PolicyRef | None = None,
) -> list[Message]:
    """The releases, then the allocations the rule makes on the book as it stands after the input and them.

    `extra_claims` are orders that become eligible with this decision (not in the book's demand yet); `leaving`
    names orders whose departure this very decision records (they are still in the book's state)."""
    rule = rule or pool.rule
    policy_ref = policy_ref or pool.policy_ref
    if rule is None or policy_ref is None:  # no rule published for the pool yet: demand waits for it
        return list(releases)
    if cause.marked and cause.as_of is None:  # approval has not passed anything on some lane: nothing is safe
        return list(releases)
    as_of = cause.as_of if cause.marked and cause.as_of is not None else cause.at
    returned: dict[str, int] = {}
    regained: dict[UUID, int] = {}
    for release in releases:
        returned[release.batch_id] = returned.get(release.batch_id, 0) + release.quantity
        if pool.orders[release.order_id].eligible and release.order_id not in leaving:
            regained[release.order_id] = regained.get(release.order_id, 0) + release.quantity
    available = pool.available + sum(returned.values()) + (extra_stock.remaining if extra_stock else 0)
    if available == 0:  # the usual case when demand exceeds supply: no need to look at the waiting orders
        return list(releases)
    stock = _stock(pool, returned, extra_stock)
    if cause.marked:  # chips ready (or given back) after the frontier wait for a marker that passes that time
        stock = (held for line in stock if (held := _held_as_of(pool, line, returned, cause, as_of)) is not None)
        if rule == "pro_rata":
            ready = list(stock)
            stock, available = iter(ready), sum(line.remaining for line in ready)
    claims = _claims(pool, regained, extra_claims, leaving)
    if cause.marked:  # nor is an order approved after it served (possible only when the frontier is ahead of now)
        claims = takewhile(lambda claim: claim.approved_at <= as_of, claims)
    # By order id, the first claim of each: a grant's date looks its claim up (a scan per grant was quadratic in the
    # orders one marker admits, a tenth of a busy allocation worker's time).
    new_claims: dict[UUID, Claim] = {}
    for claim in extra_claims:
        new_claims.setdefault(claim.order_id, claim)
    grants = (
        fill_in_order(claims, stock)
        if rule == "first_approved_first_served"
        else share_in_order(claims, stock, available)
    )
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
            allocated_at=_dated(pool, grant, as_of, extra_stock, new_claims),
        )
        for grant in grants
    ]
    return [*releases, *allocations]


def _dated(pool: Pool, grant: Grant, at: datetime, stock: Stock | None, claims: Mapping[UUID, Claim]) -> datetime:
    """A line is never dated before its batch was ready or its order approved, whatever order inputs came in."""
    batch = pool.batches.get(grant.batch_id)
    ready_at = batch.ready_at if batch else stock.ready_at if stock else at
    order = pool.orders.get(grant.order_id)
    claim = claims.get(grant.order_id)
    approved_at = order.approved_at if order else claim.approved_at if claim else at
    return max(at, ready_at, approved_at)


def _held_as_of(pool: Pool, line: Stock, returned: dict[str, int], cause: Cause, as_of: datetime) -> Stock | None:
    """The chips of a stock line that the batch held at `as_of`: none before it was ready, and not the chips given
    back to it after `as_of` (a line handed out as of then would hold chips another line still held then)."""
    if line.ready_at > as_of:
        return None
    batch = pool.batches.get(line.batch_id)
    later = sum(chips for at, chips in batch.returns if at > as_of) if batch is not None else 0
    if cause.at > as_of:
        later += returned.get(line.batch_id, 0)
    remaining = line.remaining - later
    return replace(line, remaining=remaining) if remaining > 0 else None


def _stock(pool: Pool, returned: dict[str, int], extra: Stock | None) -> Iterator[Stock]:
    """Batches with chips, in supply order, counting the chips this decision returns to them."""
    kept = (_stock_of(pool.batches[batch_id]) for _, batch_id in pool.supply if batch_id not in returned)
    changed = [_stock_of(pool.batches[batch_id], plus=chips) for batch_id, chips in returned.items()]
    if extra is not None:
        changed.append(extra)
    return merge(kept, sorted(changed, key=supply_rank), key=supply_rank)


def _claims(
    pool: Pool, regained: dict[UUID, int], extra: Sequence[Claim], leaving: Collection[UUID]
) -> Iterator[Claim]:
    """Eligible unfilled orders in approval order, counting the chips this decision takes back from them."""
    kept = (
        _claim_of(pool.orders[order_id])
        for *_, order_id in pool.demand
        if order_id not in regained and order_id not in leaving
    )
    changed = [_claim_of(pool.orders[order_id], plus=chips) for order_id, chips in regained.items()]
    changed.extend(claim for claim in extra if claim.unfilled > 0)
    return merge(kept, sorted(changed, key=approval_rank), key=approval_rank)


def _stock_of(batch: Batch, plus: int = 0) -> Stock:
    return Stock(batch.batch_id, batch.ready_at, batch.remaining + plus)


def _claim_of(order: Order, plus: int = 0) -> Claim:
    return Claim(order.order_id, order.buyer_id, order.approved_at, order.unfilled + plus)
