"""The order book of each pool (approved orders, manufactured batches, the allocations between them, the rule in
force) and what the inbox partition knows of time: its clock and how far approval has passed on every lane."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from schemas.base import PolicyRef
from schemas.policy import AllocationPolicySet
from services.domain_kit.seen_ids import SeenIds

Rule = Literal["first_approved_first_served", "pro_rata"]

Status = Literal["approved", "suspended", "revoked", "cancelled", "expired", "unfilled", "closed"]
"""approved: takes chips (once admitted); suspended: keeps its chips, takes no new ones; revoked, cancelled, expired
(its licence ended) and unfilled (not filled in the pool's close_unfilled_after_s): leaving the book, its
unshipped lines recalled; closed: done, what it kept is final."""

IN_BOOK: frozenset[Status] = frozenset({"approved", "suspended"})
LEAVING: frozenset[Status] = frozenset({"revoked", "cancelled", "expired", "unfilled"})

OrderRank = tuple[datetime, str, UUID]
"""Approval time, then order id as a string (the UUID itself rides along, never compared: ids are unique)."""
BatchRank = tuple[datetime, str]
"""Ready time, then batch id: the order in which batches are drawn from."""

K = TypeVar("K", bound=tuple[Any, ...])


@dataclass(slots=True)
class Ranking(Generic[K]):
    """Keys kept sorted, so a decision reads the book in rule order and stops as soon as it has enough."""

    keys: list[K] = field(default_factory=list)

    def add(self, key: K) -> None:
        index = bisect_left(self.keys, key)
        if index == len(self.keys) or self.keys[index] != key:
            self.keys.insert(index, key)

    def discard(self, key: K) -> None:
        index = bisect_left(self.keys, key)
        if index < len(self.keys) and self.keys[index] == key:
            del self.keys[index]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(slots=True)
class Order:
    order_id: UUID
    buyer_id: str
    approved_quantity: int
    approved_at: datetime
    status: Status = "approved"
    allocated: int = 0
    """Chips of live (not released) allocations, shipped or not."""
    allocation_ids: list[UUID] = field(default_factory=list)
    """Every allocation the order ever received, oldest first."""
    recalls: set[UUID] = field(default_factory=set)
    """Lines whose recall fulfilment has not answered yet: the order closes when none is left."""
    admitted: bool = True
    """In the queue: every approval decided before it has reached the book (see admission.py)."""

    @property
    def rank(self) -> OrderRank:
        return (self.approved_at, str(self.order_id), self.order_id)

    @property
    def eligible(self) -> bool:
        """Approved by both gates right now and admitted: the only orders that may receive chips."""
        return self.status == "approved" and self.admitted

    @property
    def unfilled(self) -> int:
        """Chips still owed to the order; nothing is owed to an order that has left the book."""
        return self.approved_quantity - self.allocated if self.status in IN_BOOK else 0


@dataclass(slots=True)
class Batch:
    batch_id: str
    quantity: int
    ready_at: datetime
    site: str
    allocated: int = 0
    returns: list[tuple[datetime, int]] = field(default_factory=list)
    """Chips given back to the batch (releases) and when: they are the batch's only from then on, so a hand-out as of
    an earlier time cannot use them (the batch's other free chips it can)."""

    @property
    def rank(self) -> BatchRank:
        return (self.ready_at, self.batch_id)

    @property
    def remaining(self) -> int:
        return self.quantity - self.allocated


@dataclass(slots=True)
class Allocation:
    allocation_id: UUID
    order_id: UUID
    buyer_id: str
    batch_id: str
    quantity: int
    allocated_at: datetime
    shipped: bool = False
    """Fulfilment said the chips left the warehouse: the line is never recalled, only a failed delivery frees it."""
    delivered: bool = False
    released: bool = False
    recall_pending: bool = False


@dataclass(slots=True)
class Pool:
    pool_id: str
    rule: Rule | None = None
    """None until the pool's first AllocationPolicySet: a pool without a rule allocates nothing."""
    policy_ref: PolicyRef | None = None
    close_unfilled_after: timedelta | None = None
    pending_rules: list[AllocationPolicySet] = field(default_factory=list)
    """Revisions of the rule published ahead of their effective_at (rules_in_force.py)."""
    orders: dict[UUID, Order] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    allocations: dict[UUID, Allocation] = field(default_factory=dict)
    demand: Ranking[OrderRank] = field(default_factory=Ranking)
    """Eligible orders with unfilled quantity, first approved first."""
    owed: Ranking[OrderRank] = field(default_factory=Ranking)
    """Admitted orders in the book with unfilled quantity (suspended or not): those that may be closed unfilled."""
    waiting: Ranking[OrderRank] = field(default_factory=Ranking)
    """Orders in the book not admitted yet, first approved first."""
    supply: Ranking[BatchRank] = field(default_factory=Ranking)
    """Batches with chips left, in supply order."""
    available: int = 0
    """Chips left in all batches."""
    toggles_seen: set[UUID] = field(default_factory=set)
    """Ids of the suspensions and reinstatements seen: a later input can undo their effect, so a redelivered copy
    is recognised by its id. Every other input is idempotent by its natural key (order, batch, revision,
    allocation), which keeps this set small."""
    forgotten: SeenIds = field(default_factory=SeenIds)
    """Orders done with and dropped from the book, by id (16 bytes each, services.domain_kit.seen_ids): a
    redelivered OrderApproved of one is a repeat, not a new order. So the book grows with what is open, not with
    history (issue #9)."""
    done_with: list[UUID] = field(default_factory=list)
    """Orders a step left done with, forgotten when the next input is folded: the step's own events come after its
    input, and one of them may still name the order. Forgotten only if still done with then."""

    def known(self, order_id: UUID) -> bool:
        """The order reached this book already: it is in it, or was done with and forgotten."""
        return order_id in self.orders or order_id in self.forgotten

    def is_done(self, order: Order) -> bool:
        """Nothing about the order can change any decision any more: closed, no recall unanswered, and every line
        final (delivered, or released: a shipped line may still fail and give its chips back to the batch)."""
        if order.status != "closed" or order.recalls:
            return False
        lines = (self.allocations[allocation_id] for allocation_id in order.allocation_ids)
        return all(line.released or line.delivered for line in lines)

    def forget_if_done(self, order_id: UUID) -> None:
        order = self.orders.get(order_id)
        if order is not None and self.is_done(order):
            self.done_with.append(order_id)

    def forget_done(self) -> None:
        """Drop the orders done with, their lines too; keep their ids. The batches keep their counts."""
        for order_id in self.done_with:
            order = self.orders.get(order_id)
            if order is not None and self.is_done(order):
                del self.orders[order_id]
                for allocation_id in order.allocation_ids:
                    del self.allocations[allocation_id]
                self.forgotten.add(order_id)
        self.done_with.clear()

    @property
    def policy_revision(self) -> int:
        return self.policy_ref.revision if self.policy_ref else 0

    def refresh_order(self, order: Order) -> None:
        _keep(self.demand, order.rank, order.eligible and order.unfilled > 0)
        _keep(self.owed, order.rank, order.admitted and order.unfilled > 0)
        _keep(self.waiting, order.rank, not order.admitted and order.status in IN_BOOK)

    def refresh_batch(self, batch: Batch) -> None:
        if batch.remaining > 0:
            self.supply.add(batch.rank)
        else:
            self.supply.discard(batch.rank)


def _keep(ranking: Ranking[OrderRank], rank: OrderRank, kept: bool) -> None:
    if kept:
        ranking.add(rank)
    else:
        ranking.discard(rank)


@dataclass(slots=True)
class AllocationState:
    """Every pool of one inbox partition (pools never affect each other), and the partition's view of time."""

    pools: dict[str, Pool] = field(default_factory=dict)
    now: datetime | None = None
    """The partition's clock: the latest tick or arrival seen; it never goes back."""
    ticked: datetime | None = None
    """The latest tick's own time: ticks strictly increase, so one at or before it is a repeat."""
    passed: dict[tuple[int, int], datetime] = field(default_factory=dict)
    """(lane, source) -> the latest `at` of approval's ApprovalsPassed markers: empty until the first marker."""
    lanes: int = 0
    sources: int = 0
    """How many lanes and sources the markers name (the largest seen: partitions are only ever added)."""
    lane: int | None = None
    """The one lane whose marks bound this partition, once a lane-only marker of its own lane is seen (lane L feeds
    allocation partition L alone); None: the marks of every lane, as version 1 markers were counted."""

    def pool(self, pool_id: str) -> Pool:
        """The pool, or an empty one that is not stored (deciding must not change the state)."""
        return self.pools.get(pool_id) or Pool(pool_id)

    def pool_for_update(self, pool_id: str) -> Pool:
        return self.pools.setdefault(pool_id, Pool(pool_id))


def initial_state() -> AllocationState:
    return AllocationState()
