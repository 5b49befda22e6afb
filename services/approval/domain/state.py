"""What approval remembers: the partition clock, the policies in force per buyer and those not yet in force, the
shared rules, and the orders of the partition that are not done with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Self
from uuid import UUID

from schemas.base import PolicyRef, Reason
from schemas.intake import OrderPlaced
from schemas.policy import ImportUseRulesSet, PolicyEvent
from services.domain_kit.seen_ids import SeenIds


class Value:
    """A frozen value: a deep copy of the state (decide tries changes on one) shares it rather than copying it."""

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self


OrderStatus = Literal["placed", "held", "approved", "suspended", "revoked", "expired", "denied", "cancelled", "closed"]
ImporterStatus = Literal["authorised", "suspended", "revoked"]


@dataclass(frozen=True)
class Licence(Value):
    """A US export licence as its latest revision states it."""

    licence_id: str
    quantity: int
    valid_from: datetime
    valid_until: datetime
    revoked: bool
    ref: PolicyRef

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until


@dataclass(frozen=True)
class Tranche(Value):
    """A buyer's import quota for one tranche (a period of approvals)."""

    tranche_id: str
    quantity: int
    opens_at: datetime
    closes_at: datetime
    ref: PolicyRef

    def is_open(self, at: datetime) -> bool:
        return self.opens_at <= at < self.closes_at


@dataclass(frozen=True)
class Importer(Value):
    status: ImporterStatus
    ref: PolicyRef


@dataclass(frozen=True)
class BuyerPolicy(Value):
    """Every policy that names one buyer. Replaced, never mutated: decide tries a change on a copy."""

    licences: Mapping[str, Licence] = field(default_factory=dict)
    tranches: Mapping[str, Tranche] = field(default_factory=dict)
    importer: Importer | None = None
    denied_by: Mapping[str, PolicyRef] = field(default_factory=dict)
    """The denied-party lists (by policy id) that name the buyer now: denied while any does."""


@dataclass(frozen=True)
class SharedPolicy(Value):
    """Policies that concern every buyer: China's use rules and the denied-party lists consulted."""

    use_rules: ImportUseRulesSet | None = None
    denied_lists: Mapping[str, PolicyRef] = field(default_factory=dict)

    @property
    def use_rules_ref(self) -> PolicyRef | None:
        rules = self.use_rules
        return None if rules is None else PolicyRef(policy_id=rules.policy_id, revision=rules.revision)


@dataclass
class Usage:
    """Chips held by a buyer's approvals that are not released, per licence and per tranche."""

    licence: dict[str, int] = field(default_factory=dict)
    tranche: dict[str, int] = field(default_factory=dict)

    def copy(self) -> Usage:
        return Usage(dict(self.licence), dict(self.tranche))

    def commit(self, licence_id: str, tranche_id: str, quantity: int) -> None:
        self.licence[licence_id] = self.licence.get(licence_id, 0) + quantity
        self.tranche[tranche_id] = self.tranche.get(tranche_id, 0) + quantity

    def release(self, licence_id: str, tranche_id: str, quantity: int) -> None:
        self.commit(licence_id, tranche_id, -quantity)


@dataclass(frozen=True)
class Grant(Value):
    """What an approval holds: chips under one licence and one tranche."""

    licence_id: str
    tranche_id: str
    quantity: int
    approved_at: datetime


@dataclass
class OrderRecord:
    placed: OrderPlaced
    document_kinds: frozenset[str]
    status: OrderStatus = "placed"
    held_since: datetime | None = None
    held_reasons: tuple[Reason, ...] = ()
    grant: Grant | None = None
    released: bool = False

    @property
    def order_id(self) -> UUID:
        return self.placed.order_id

    @property
    def buyer_id(self) -> str:
        return self.placed.buyer_id

    @property
    def awaiting_close(self) -> bool:
        """Ended (cancelled, revoked or expired) while approved: its licence and quota wait for the order book's
        OrderClosed."""
        return self.status in ("cancelled", "revoked", "expired") and self.grant is not None and not self.released

    @property
    def is_done(self) -> bool:
        """Nothing about the order can change any decision any more: ended, and holding no licence or quota."""
        if self.status in ("denied", "closed"):
            return True
        return self.status in ("cancelled", "revoked", "expired") and (self.grant is None or self.released)

    @property
    def is_open_approval(self) -> bool:
        """Approved or suspended, and its chips still count against licence and quota."""
        return self.status in ("approved", "suspended") and self.grant is not None and not self.released


@dataclass
class BuyerBook:
    policy: BuyerPolicy = field(default_factory=BuyerPolicy)
    orders: dict[UUID, OrderRecord] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    def open_approvals(self) -> list[OrderRecord]:
        """Open approvals, oldest first."""
        found = [order for order in self.orders.values() if order.is_open_approval]
        return sorted(found, key=approval_order)


@dataclass(frozen=True)
class PendingPolicy(Value):
    """A policy revision seen before its effective_at: it comes into force when the partition clock reaches it."""

    effective_at: datetime
    seq: int
    """Arrival order among pending policies: the tie-break between equal effective times."""
    event: PolicyEvent


@dataclass
class ApprovalState:
    now: datetime | None = None
    """The partition clock: the latest tick or arrival seen. Never goes back; every decision is made at it."""
    pending: list[PendingPolicy] = field(default_factory=list)
    """Policies seen but not yet in force, in the order they come into force (effective_at, arrival)."""
    pending_seen: int = 0
    in_force: dict[str, int] = field(default_factory=dict)
    """The revision in force of every policy_id (`revisions` counts revisions seen, pending ones too)."""
    next_due: datetime | None = None
    """The earliest time after `now` at which something falls due (a policy, a licence or tranche boundary)."""
    buyers: dict[str, BuyerBook] = field(default_factory=dict)
    shared: SharedPolicy = field(default_factory=SharedPolicy)
    revisions: dict[str, int] = field(default_factory=dict)
    """The last revision seen of every policy_id, in force or pending: an older or repeated one is ignored."""
    applied: SeenIds = field(default_factory=SeenIds)
    """Ids of every envelope folded: a repeated one is ignored (16 bytes an id: services.domain_kit.seen_ids)."""
    held: dict[UUID, str] = field(default_factory=dict)
    """Held orders: order_id -> buyer_id."""
    cancelled_unplaced: set[UUID] = field(default_factory=set)
    """Orders cancelled before this partition saw them placed: never to be decided."""
    forgotten: SeenIds = field(default_factory=SeenIds)
    """Orders done with (denied, closed, cancelled or ended and released): their records are dropped, their ids kept
    so that a resend of one is never decided. Only open and held orders, and ended ones still holding licence or
    quota, are kept in full: the state grows with what is open, not with history."""
    done_with: list[OrderRecord] = field(default_factory=list)
    """Orders a step left done with, forgotten when the next input is folded: the step's own events come after its
    input in evolve (a held order approved by the clock and cancelled by the input of one step), so a record stays
    until the step is over, and is forgotten only if it is still done with then."""

    def forget_if_done(self, order: OrderRecord) -> None:
        if order.is_done:
            self.done_with.append(order)

    def forget_done(self) -> None:
        for order in self.done_with:
            book = self.buyers.get(order.buyer_id)
            if order.is_done and book is not None and book.orders.get(order.order_id) is order:
                del book.orders[order.order_id]
                self.forgotten.add(order.order_id)
                self.held.pop(order.order_id, None)
        self.done_with.clear()

    def known(self, order_id: UUID, buyer_id: str) -> bool:
        """The order was placed here already (open, or done with and forgotten), or cancelled before it was."""
        if order_id in self.book_of(buyer_id).orders:
            return True
        return order_id in self.forgotten or order_id in self.cancelled_unplaced

    def book_of(self, buyer_id: str) -> BuyerBook:
        """The buyer's book, or an empty one (not stored: decide must not change the state)."""
        return self.buyers.get(buyer_id) or BuyerBook()

    def order(self, buyer_id: str, order_id: UUID) -> OrderRecord | None:
        return self.book_of(buyer_id).orders.get(order_id)

    def held_orders(self, buyer_id: str | None = None) -> list[OrderRecord]:
        """Held orders of one buyer (or of all), in the order they are re-examined: held time, then placed first."""
        found = [
            self.buyers[buyer].orders[order_id]
            for order_id, buyer in self.held.items()
            if buyer_id is None or buyer == buyer_id
        ]
        return sorted(found, key=hold_order)


def hold_order(order: OrderRecord) -> tuple[datetime, datetime, UUID]:
    # Orders held at the same partition time: the one placed first is looked at first.
    return (order.held_since or order.placed.placed_at, order.placed.placed_at, order.order_id)


def approval_order(order: OrderRecord) -> tuple[datetime, UUID]:
    approved_at = order.grant.approved_at if order.grant else order.placed.placed_at
    return (approved_at, order.order_id)


def initial_state() -> ApprovalState:
    return ApprovalState()
