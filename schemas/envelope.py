"""The one envelope every message travels in, and deterministic ids derived from causes."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar
from uuid import UUID, uuid5

from pydantic import AwareDatetime, Field

from schemas.base import Contract, Message

M = TypeVar("M", bound=Message)

# Fixed forever: changing it would change every derived id and break deduplication of old records.
ID_NAMESPACE = UUID("5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11")


class Envelope(Contract, Generic[M]):
    id: UUID = Field(description="unique per fact; derived from the cause so a retry yields the same id")
    type: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)]
    occurred_at: AwareDatetime
    producer: Annotated[str, Field(min_length=1, max_length=64)]
    key: Annotated[str, Field(min_length=1, max_length=256, description="the Kafka record key")]
    correlation_id: UUID = Field(description="the id of the first message of the business flow")
    causation_id: UUID | None = Field(description="the id of the message that caused this one")
    payload: M


def derive_id(*parts: object) -> UUID:
    """A stable id for a fact, from the facts that determine it (cause id, type, discriminators)."""
    return uuid5(ID_NAMESPACE, "/".join(str(part) for part in parts))


def order_id_for(buyer_id: str, upstream_ref: str) -> UUID:
    """The id of an order: the same (buyer, upstream reference) always names the same order."""
    return derive_id("order", buyer_id, upstream_ref)


def make_envelope(
    payload: M,
    *,
    key: str,
    producer: str,
    occurred_at: object,
    cause: Envelope[Message] | None = None,
    discriminator: object = "",
    message_id: UUID | None = None,
) -> Envelope[M]:
    """Wrap a payload; an id caused by another message is derived from that message's id."""
    if message_id is None:
        if cause is None:
            raise ValueError("make_envelope: give message_id for a message without a cause")
        message_id = derive_id(cause.id, payload.TYPE, discriminator)
    model: type[Envelope[M]] = Envelope[type(payload)]  # type: ignore[misc,assignment]
    return model.model_validate(
        {
            "id": message_id,
            "type": payload.TYPE,
            "version": payload.VERSION,
            "occurred_at": occurred_at,
            "producer": producer,
            "key": key,
            "correlation_id": cause.correlation_id if cause else message_id,
            "causation_id": cause.id if cause else None,
            "payload": payload,
        }
    )
