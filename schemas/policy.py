"""Policy events: the rules of both governments and of allocation, published by ops as versioned data.

Every policy event names the policy it changes (`policy_id`) and its `revision`, which must grow by one
per policy; decisions cite the revisions they applied.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from schemas.base import Event, Percent, Quantity, Reference, Slug, Text, Timestamp


class PolicyEvent(Event):
    policy_id: Reference
    revision: Annotated[int, Field(ge=1)]
    effective_at: Timestamp
    issued_by: Text = Field(examples=["US Department of Commerce, BIS"])


class ExportLicenceIssued(PolicyEvent):
    """The US grants (or amends) an export licence for a buyer: quantity and validity window."""

    model_config = ConfigDict(json_schema_extra={"x-h200-rules": ["valid_until: later than valid_from"]})

    TYPE: ClassVar[str] = "ExportLicenceIssued"
    VERSION: ClassVar[int] = 1
    licence_id: Reference
    buyer_id: Slug
    quantity: Quantity
    valid_from: Timestamp
    valid_until: Timestamp

    @model_validator(mode="after")
    def _window_is_ordered(self) -> ExportLicenceIssued:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until: must be later than valid_from")
        return self


class ExportLicenceRevoked(PolicyEvent):
    TYPE: ClassVar[str] = "ExportLicenceRevoked"
    VERSION: ClassVar[int] = 1
    licence_id: Reference
    buyer_id: Slug
    reason: Text


class DeniedPartyListed(PolicyEvent):
    TYPE: ClassVar[str] = "DeniedPartyListed"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    reason: Text


class DeniedPartyDelisted(PolicyEvent):
    TYPE: ClassVar[str] = "DeniedPartyDelisted"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    reason: Text


class ImporterAuthorised(PolicyEvent):
    """China authorises a company to import H200 chips."""

    TYPE: ClassVar[str] = "ImporterAuthorised"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    buyer_name: Text


class ImporterSuspended(PolicyEvent):
    """China pauses an importer: its approvals stop receiving chips until reinstated."""

    TYPE: ClassVar[str] = "ImporterSuspended"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    reason: Text


class ImporterReinstated(PolicyEvent):
    TYPE: ClassVar[str] = "ImporterReinstated"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    reason: Text


class ImporterRevoked(PolicyEvent):
    """China withdraws an importer's authorisation: its open approvals are revoked, quota released."""

    TYPE: ClassVar[str] = "ImporterRevoked"
    VERSION: ClassVar[int] = 1
    buyer_id: Slug
    reason: Text


class TrancheQuotaSet(PolicyEvent):
    """The import quota of one buyer in one tranche (a period of approvals)."""

    model_config = ConfigDict(json_schema_extra={"x-h200-rules": ["closes_at: later than opens_at"]})

    TYPE: ClassVar[str] = "TrancheQuotaSet"
    VERSION: ClassVar[int] = 1
    tranche_id: Reference
    buyer_id: Slug
    quantity: Annotated[int, Field(ge=0, le=100_000_000)]
    opens_at: Timestamp
    closes_at: Timestamp

    @model_validator(mode="after")
    def _window_is_ordered(self) -> TrancheQuotaSet:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at: must be later than opens_at")
        return self


class ImportUseRulesSet(PolicyEvent):
    """China's rules on declared uses, documents, inference share and domestic-chip commitment."""

    TYPE: ClassVar[str] = "ImportUseRulesSet"
    VERSION: ClassVar[int] = 1
    necessary_uses: Annotated[tuple[Slug, ...], Field(min_length=1)]
    required_document_kinds: tuple[Slug, ...] = ()
    max_inference_share_pct: Percent
    min_domestic_commitment_pct: Annotated[int, Field(ge=0, le=1000)] = Field(
        description="domestic chips committed, as a percent of the H200 quantity ordered"
    )
    inference_use: Slug = "inference"


class AllocationPolicySet(PolicyEvent):
    """How a pool's scarce batches are shared among approved orders."""

    TYPE: ClassVar[str] = "AllocationPolicySet"
    VERSION: ClassVar[int] = 1
    pool_id: Slug
    rule: Literal["first_approved_first_served", "pro_rata"]
    close_unfilled_after_s: Annotated[int, Field(ge=1, le=10 * 366 * 86_400)] | None = Field(
        default=None,
        description="an approved order not filled this many seconds after its approval leaves the book: its "
        "unshipped lines are recalled and the rest of its licence and quota given back (none: never)",
    )


class SubmissionWindowSet(PolicyEvent):
    """How far the submitted_at an upstream system claims may lie from the time intake received the submission
    (the broker's time of its inbox record). A claim outside the window is refused with `implausible_submitted_at`;
    inside it, it is kept as a claim and never orders anything (docs/time.md)."""

    TYPE: ClassVar[str] = "SubmissionWindowSet"
    VERSION: ClassVar[int] = 1
    max_ahead_s: Annotated[int, Field(ge=0, le=366 * 86_400)]
    max_behind_s: Annotated[int, Field(ge=0, le=10 * 366 * 86_400)]
