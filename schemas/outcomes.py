"""What intake answers a submitter besides the order facts: a command that changed nothing, and a record it could not
read as a command at all.

Every record on a submission topic (h200.intake.commands, h200.submissions.<buyer>) has exactly one outcome on the
outcome topic of its channel (schemas.topics.outcome_topic_of): the fact it caused (OrderPlaced,
OrderSubmissionRejected, OrderCancelled, OrderDocumentsAdded, CommandRejected), SubmissionUnchanged, or
SubmissionMalformed. Its causation_id is the command's id (none for a malformed record, which has no id to trust) and
its correlation_id the command's correlation_id.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from schemas.base import Event, Reason, Sha256, Slug, Text, Timestamp, Uuid

MALFORMED_KEY = "unattributed"
"""The record key of a SubmissionMalformed whose buyer could not be told (a record on the shared topic without one)."""


class SubmissionUnchanged(Event):
    """Intake read a valid command whose effect is already recorded (an identical resend under a new id, a second
    cancellation, documents already on file): nothing new was recorded, and the order stands as it was."""

    TYPE: ClassVar[str] = "SubmissionUnchanged"
    VERSION: ClassVar[int] = 1
    command_id: Uuid
    command_type: Annotated[str, Field(min_length=1, max_length=64)]
    buyer_id: Slug
    upstream_ref: Annotated[str, Field(min_length=1, max_length=128)]
    order_id: Uuid
    reason: Reason = Field(description="why nothing changed, e.g. already_placed, already_rejected, already_cancelled")
    decided_at: Timestamp = Field(description="when intake received the command (its inbox arrival)")


class SubmissionMalformed(Event):
    """Intake could not accept a record of a submission topic as a command (not decodable, not a known contract, an
    invalid envelope or payload, a key that is not the envelope's, a command for another buyer): nothing was decided;
    the record also went to h200.dlq.intake with its original bytes."""

    TYPE: ClassVar[str] = "SubmissionMalformed"
    VERSION: ClassVar[int] = 1
    source_topic: Annotated[str, Field(min_length=1, max_length=249)]
    source_partition: Annotated[int, Field(ge=0)]
    source_offset: Annotated[int, Field(ge=0)]
    record_key: Annotated[str, Field(max_length=256)] | None = Field(
        description="the record's key as text (bytes that are not UTF-8 as \\x escapes), its first 256 characters; "
        "null for a record without a key"
    )
    value_sha256: Sha256 = Field(description="SHA-256 (hex) of the record value's bytes (of no bytes: no value)")
    value_length: Annotated[int, Field(ge=0)]
    code: Slug = Field(description="the same stable code as the dead letter's dlq.error_code")
    detail: Text = Field(description="what is wrong, naming the field (the dead letter's dlq.error, shortened)")
    buyer_id: Slug | None = Field(
        description="the buyer whose channel the record came by (its submission topic), or the buyer_id the record "
        "names when it can be read that far; null when neither"
    )
    command_id: Uuid | None = Field(description="the id the record gives itself, when it can be read that far")
    correlation_id: Uuid | None = Field(
        description="the correlation id recovered from the record: its `correlation_id` header, else the JSON "
        "envelope's correlation_id, else its id; null when none is readable"
    )
    refused_at: Timestamp = Field(
        description="the source record's timestamp (when its producer or the broker dated it), so that a redelivered "
        "record gives the same outcome; when it has none, when intake refused it"
    )
