"""Order submissions from upstream buyer systems and the facts intake records about them."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Command, Contract, Event, Percent, Quantity, Reason, Reference, Sha256, Slug, Text


class DeclaredUse(Contract):
    """One declared use of the chips and the share of the order it takes, in whole percent."""

    use: Slug = Field(examples=["ai_research"])
    share_pct: Annotated[Percent, Field(gt=0)]


class SupportingDocument(Contract):
    """A document the buyer filed to justify its use of the chips, identified by id and content hash."""

    document_id: Reference
    kind: Slug = Field(examples=["end_use_statement"])
    sha256: Sha256


class DomesticChipCommitment(Contract):
    """A buyer's commitment to buy Chinese-made accelerators alongside the H200 order."""

    supplier: Text
    quantity: Quantity


class DeliverySite(Contract):
    site_id: Reference
    city: Text
    country: Literal["CN"] = "CN"


class OrderTerms(Contract):
    """What a buyer asks for; carried unchanged from submission to the recorded order."""

    buyer_id: Slug
    buyer_name: Text
    upstream_ref: Reference
    pool_id: Slug = "h200"
    quantity: Quantity
    unit_price_cents: Annotated[int, Field(gt=0, le=10_000_000_00, description="US cents per chip")]
    currency: Literal["USD"] = "USD"
    declared_uses: Annotated[tuple[DeclaredUse, ...], Field(min_length=1, max_length=20)]
    documents: Annotated[tuple[SupportingDocument, ...], Field(max_length=50)] = ()
    domestic_commitment: DomesticChipCommitment | None = None
    delivery_site: DeliverySite

    @model_validator(mode="after")
    def _shares_cover_the_order(self) -> OrderTerms:
        total = sum(use.share_pct for use in self.declared_uses)
        if total != 100:
            raise ValueError(f"declared_uses: shares must add up to 100 percent, got {total}")
        uses = [use.use for use in self.declared_uses]
        if len(set(uses)) != len(uses):
            raise ValueError("declared_uses: each use may appear once")
        return self


class SubmitOrder(OrderTerms, Command):
    """An upstream system asks to place a purchase order; (buyer_id, upstream_ref) is its idempotency key."""

    TYPE: ClassVar[str] = "SubmitOrder"
    VERSION: ClassVar[int] = 1
    submitted_at: AwareDatetime


class CancelOrder(Command):
    TYPE: ClassVar[str] = "CancelOrder"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    upstream_ref: Reference
    reason: Text
    requested_at: AwareDatetime


class AddOrderDocuments(Command):
    """The buyer answers a hold by filing more documents for an order."""

    TYPE: ClassVar[str] = "AddOrderDocuments"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    upstream_ref: Reference
    documents: Annotated[tuple[SupportingDocument, ...], Field(min_length=1, max_length=50)]
    requested_at: AwareDatetime


class OrderPlaced(OrderTerms, Event):
    """Intake accepted and recorded an order; order_id is derived from (buyer_id, upstream_ref)."""

    TYPE: ClassVar[str] = "OrderPlaced"
    VERSION: ClassVar[int] = 1
    order_id: UUID
    placed_at: AwareDatetime = Field(description="when intake received the submission (its inbox arrival)")
    submitted_at: AwareDatetime | None = Field(
        default=None,
        description="the submitted_at the sender claimed, kept for the record: no rule reads it and it orders "
        "nothing (placed_at does); none on orders placed before it was kept",
    )


class OrderSubmissionRejected(Event):
    """Intake refused a submission; nothing was recorded for the order."""

    TYPE: ClassVar[str] = "OrderSubmissionRejected"
    VERSION: ClassVar[int] = 1
    buyer_id: str
    upstream_ref: str
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]
    rejected_at: AwareDatetime


class OrderDocumentsAdded(Event):
    TYPE: ClassVar[str] = "OrderDocumentsAdded"
    VERSION: ClassVar[int] = 1
    order_id: UUID
    buyer_id: Slug
    documents: tuple[SupportingDocument, ...]
    added_at: AwareDatetime


class OrderCancelled(Event):
    TYPE: ClassVar[str] = "OrderCancelled"
    VERSION: ClassVar[int] = 1
    order_id: UUID
    buyer_id: Slug
    reason: Text
    cancelled_at: AwareDatetime


class CommandRejected(Event):
    """Intake refused a cancellation or a document filing (e.g. the order is unknown or already closed)."""

    TYPE: ClassVar[str] = "CommandRejected"
    VERSION: ClassVar[int] = 1
    command_id: UUID
    command_type: str
    buyer_id: str
    upstream_ref: str
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]
    rejected_at: AwareDatetime
