"""The order book's decisions: chips of a batch given to an order, and chips given back."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from schemas.base import Event, PolicyRef, Quantity, Reference, Slug, Timestamp, Uuid


class ChipsAllocated(Event):
    """A quantity of one batch is assigned to one order: a line of the ledger."""

    TYPE: ClassVar[str] = "ChipsAllocated"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    rule: Literal["first_approved_first_served", "pro_rata"]
    policy_ref: PolicyRef | None
    cause_event_id: Uuid
    allocated_at: Timestamp


class AllocationReleased(Event):
    """Chips of an allocation go back to the pool to be allocated again."""

    TYPE: ClassVar[str] = "AllocationReleased"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    why: Literal["order_cancelled", "approval_revoked", "approval_expired", "order_unfilled", "delivery_failed"]
    cause_event_id: Uuid
    released_at: Timestamp


class AllocationLineEvent(Event):
    """An event about one ledger line, addressed to the service that ships it (keyed by allocation id there)."""

    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    cause_event_id: Uuid


class AllocationRecallRequested(AllocationLineEvent):
    """The order of this line left the book (cancelled or revoked): fulfilment is asked to stop its shipment.

    The chips return to the pool only when fulfilment answers that the line did not ship (RecallAnswered);
    fulfilment alone knows whether they left the warehouse, so this question is the only way chips come back."""

    TYPE: ClassVar[str] = "AllocationRecallRequested"
    VERSION: ClassVar[int] = 1
    why: Literal["order_cancelled", "approval_revoked", "approval_expired", "order_unfilled"]
    requested_at: Timestamp


class AllocationSuspended(AllocationLineEvent):
    """The order's approval is suspended: the line keeps its chips, but must not be packed or shipped."""

    TYPE: ClassVar[str] = "AllocationSuspended"
    VERSION: ClassVar[int] = 1
    suspended_at: Timestamp


class AllocationReinstated(AllocationLineEvent):
    """The order's approval is in force again: the line may be packed and shipped."""

    TYPE: ClassVar[str] = "AllocationReinstated"
    VERSION: ClassVar[int] = 1
    reinstated_at: Timestamp


class OrderClosed(Event):
    """The order book is done with an order: it receives no more chips and `kept_quantity` chips stay with it
    (shipped or delivered). Approval then gives back the rest of its licence and quota use."""

    TYPE: ClassVar[str] = "OrderClosed"
    VERSION: ClassVar[int] = 1
    order_id: Uuid
    pool_id: Slug
    buyer_id: Slug
    approved_quantity: Quantity
    kept_quantity: Annotated[int, Field(ge=0)]
    why: Literal["delivered", "cancelled", "revoked", "expired", "unfilled"]
    """delivered: every chip approved was delivered; cancelled/revoked/expired: the approval ended (ApprovalCancelled,
    ApprovalRevoked, ApprovalExpired); unfilled: the pool's close_unfilled_after_s passed before the order was
    filled. Except for delivered, the unshipped lines were recalled first."""
    cause_event_id: Uuid
    closed_at: Timestamp
