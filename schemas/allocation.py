"""The order book's decisions: chips of a batch given to an order, and chips given back."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime

from schemas.base import Event, PolicyRef, Quantity, Reference, Slug


class ChipsAllocated(Event):
    """A quantity of one batch is assigned to one order: a line of the ledger."""

    TYPE: ClassVar[str] = "ChipsAllocated"
    VERSION: ClassVar[int] = 1
    allocation_id: UUID
    pool_id: Slug
    order_id: UUID
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    rule: Literal["first_approved_first_served", "pro_rata"]
    policy_ref: PolicyRef | None
    cause_event_id: UUID
    allocated_at: AwareDatetime


class AllocationReleased(Event):
    """Chips of an allocation go back to the pool to be allocated again."""

    TYPE: ClassVar[str] = "AllocationReleased"
    VERSION: ClassVar[int] = 1
    allocation_id: UUID
    pool_id: Slug
    order_id: UUID
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    why: Literal["order_cancelled", "approval_revoked", "delivery_failed"]
    cause_event_id: UUID
    released_at: AwareDatetime
