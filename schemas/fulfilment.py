"""The physical life of an allocation: packed, shipped, cleared by customs, delivered, or failed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.base import Command, Event, Quantity, Reason, Reference, Slug, Text, Timestamp, Uuid

Step = Literal["packed", "shipped", "customs_cleared", "delivered", "held", "released", "lost", "refused"]


class RecordFulfilmentStep(Command):
    """A logistics system or an operator reports what happened to an allocation's shipment."""

    TYPE: ClassVar[str] = "RecordFulfilmentStep"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    step: Step
    at: Timestamp
    note: Text | None = None


class FulfilmentStepRecorded(Event):
    TYPE: ClassVar[str] = "FulfilmentStepRecorded"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    step: Step
    note: Text | None = None
    cause_event_id: Uuid
    at: Timestamp


class DeliveryFailed(Event):
    """A shipment was lost or refused: its chips return to the pool for reallocation."""

    TYPE: ClassVar[str] = "DeliveryFailed"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    outcome: Literal["lost", "refused"]
    cause_event_id: Uuid
    at: Timestamp


class FulfilmentStepRejected(Event):
    """A reported step does not fit the shipment's history (e.g. delivered before shipped, unknown allocation)."""

    TYPE: ClassVar[str] = "FulfilmentStepRejected"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    step: Step
    reason: Reason
    cause_event_id: Uuid
    at: Timestamp

    def id_discriminator(self) -> str:
        # A report refused as unknown_allocation may be decided again when retried (its line has arrived since),
        # with another outcome: the two facts need two ids, or readers would drop the second as a duplicate.
        return self.reason.code if self.reason.code == "unknown_allocation" else ""


class RecallAnswered(Event):
    """Fulfilment's answer to AllocationRecallRequested: the shipment was stopped before it left (`cancelled`,
    the chips go back to the pool) or it had already left the warehouse (`already_shipped`, they stay with the
    order and count against its licence and quota)."""

    TYPE: ClassVar[str] = "RecallAnswered"
    VERSION: ClassVar[int] = 1
    allocation_id: Uuid
    pool_id: Slug
    order_id: Uuid
    buyer_id: Slug
    batch_id: Reference
    quantity: Quantity
    outcome: Literal["cancelled", "already_shipped"]
    stage: Literal[
        "allocated", "packed", "shipped", "customs_cleared", "held", "delivered", "lost", "refused", "cancelled"
    ] = Field(description="the shipment's stage when the recall reached fulfilment")
    cause_event_id: Uuid
    at: Timestamp
