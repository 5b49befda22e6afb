"""The two-gate decisions on orders and their later changes."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.base import Event, PolicyRef, Quantity, Reason, Reference, Slug, Timestamp, Uuid


class Decision(Event):
    """Every decision names the order, the policy revisions it applied and the event that caused it."""

    order_id: Uuid
    buyer_id: Slug
    pool_id: Slug
    policy_refs: tuple[PolicyRef, ...]
    cause_event_id: Uuid
    decided_at: Timestamp


class OrderApproved(Decision):
    """Both gates passed, possibly for less than requested and with conditions."""

    TYPE: ClassVar[str] = "OrderApproved"
    VERSION: ClassVar[int] = 1
    requested_quantity: Quantity
    approved_quantity: Quantity
    licence_id: Reference
    tranche_id: Reference
    conditions: tuple[Reason, ...] = ()


class OrderDenied(Decision):
    """At least one gate refused the order; every failed check is listed."""

    TYPE: ClassVar[str] = "OrderDenied"
    VERSION: ClassVar[int] = 1
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]


class OrderHeld(Decision):
    """The order waits for information (a document, a licence, a quota) before it can be decided."""

    TYPE: ClassVar[str] = "OrderHeld"
    VERSION: ClassVar[int] = 1
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]


class ApprovalSuspended(Decision):
    TYPE: ClassVar[str] = "ApprovalSuspended"
    VERSION: ClassVar[int] = 1
    reason: Reason


class ApprovalReinstated(Decision):
    TYPE: ClassVar[str] = "ApprovalReinstated"
    VERSION: ClassVar[int] = 1
    reason: Reason


class ApprovalRevoked(Decision):
    """An approval is withdrawn for good; chips not yet delivered return to the pool."""

    TYPE: ClassVar[str] = "ApprovalRevoked"
    VERSION: ClassVar[int] = 1
    reason: Reason


class ApprovalCancelled(Decision):
    """The buyer cancelled an approved (or suspended) order: no more chips go to it; those not yet shipped are
    recalled. Its licence and quota stay reserved until the order book closes the order (OrderClosed), and then
    only what did not ship is given back (ApprovalReleased)."""

    TYPE: ClassVar[str] = "ApprovalCancelled"
    VERSION: ClassVar[int] = 1
    reason: Reason


class ApprovalExpired(Decision):
    """The licence an approval draws on is no longer valid (its valid_until has passed): no more chips may go to the
    order and those not yet shipped cannot leave under it, so the order book recalls them as for a revocation.
    The chips that shipped stay counted against the licence and the quota (ApprovalReleased after OrderClosed)."""

    TYPE: ClassVar[str] = "ApprovalExpired"
    VERSION: ClassVar[int] = 1
    licence_id: Reference
    reason: Reason


class ApprovalReleased(Decision):
    """Licence and quota use held by an order is given back: the order was cancelled, revoked or closed, and
    `quantity` is what it did not keep (chips that shipped stay counted against the licence and the quota)."""

    TYPE: ClassVar[str] = "ApprovalReleased"
    VERSION: ClassVar[int] = 1
    licence_id: Reference
    tranche_id: Reference
    quantity: Annotated[int, Field(ge=0)]
    why: Literal["cancelled", "revoked", "closed", "expired", "unfilled"]
