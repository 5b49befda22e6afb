"""The one envelope every message travels in, and deterministic ids derived from causes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID, uuid5

from pydantic import Field

from schemas.base import Contract, Message, Timestamp, Uuid

M = TypeVar("M", bound=Message)

# Fixed forever: changing it would change every derived id and break deduplication of old records.
ID_NAMESPACE = UUID("5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11")


class Envelope(Contract, Generic[M]):
    id: Uuid = Field(
        description="unique per message. A fact caused by another message: derived from the cause, so a retry yields "
        "the same id. A message without a cause (an upstream command, a policy, a batch, a report): chosen by its "
        "sender and the same for every resend of the same message. The rule `h200 publish` and the HTTP API follow, "
        "and any sender may: UUIDv5 in the namespace 5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11 of the text "
        "`<producer>/<type>/<sha256 hex of the payload as compact JSON>` (schemas.envelope.command_id_for). A "
        "resend under a new id is still decided once, by the message's natural key (buyer and upstream_ref, "
        "policy_id and revision, batch_id), and answered SubmissionUnchanged"
    )
    type: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=1)]
    occurred_at: Timestamp
    producer: Annotated[str, Field(min_length=1, max_length=64)]
    key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            description="the Kafka record key its producer meant (the catalogue's key field of the topic); services "
            "never rely on the record's own key, which a client may set otherwise: they re-key by the payload",
        ),
    ]
    correlation_id: Uuid = Field(
        description="the id of the first message of the business flow: a message without a cause carries its own id "
        "(or the id of the sender's flow it belongs to); every message it causes carries it on"
    )
    causation_id: Uuid | None = Field(
        description="the id of the message that caused this one; null for a message without a cause"
    )
    payload: M
    # The arrival lives in pydantic's private slot without being declared as a PrivateAttr: a declared one is
    # initialised on every validation, a fifth of a decode, for a value most envelopes never get.

    @property
    def arrival(self) -> Arrival | None:
        """Where and when the system learned of this message: set by the reader of an inbox from the record's
        broker time (LogAppendTime), never by a sender (it is not part of the JSON), None for a message not read
        from a record that carries one (unit tests, tools)."""
        # Read straight from pydantic's private slot: `self._arrival` goes through BaseModel.__getattr__, and the
        # cores ask for a message's arrival several times per decision.
        private = self.__pydantic_private__
        return None if private is None else private.get("_arrival")

    def arrived(self, arrival: Arrival | None) -> Envelope[M]:
        """This envelope with its arrival set (a copy; the original is unchanged)."""
        copy = self.model_copy()
        object.__setattr__(copy, "__pydantic_private__", None if arrival is None else {"_arrival": arrival})
        return copy


@dataclass(frozen=True)
class Arrival:
    """An inbox record's position and the time the broker appended it (docs/time.md: "learned at")."""

    topic: str
    partition: int
    offset: int
    at: datetime


def learned_at(message: Envelope[Any]) -> datetime:
    """When the deciding service learned of `message`: its inbox arrival, or, for a message read without one, the
    time its producer stamped (a message from one of our own services, or a test)."""
    arrival = message.arrival
    return arrival.at if arrival is not None else message.occurred_at


def derive_id(*parts: object) -> UUID:
    """A stable id for a fact, from the facts that determine it (cause id, type, discriminators)."""
    return uuid5(ID_NAMESPACE, "/".join(str(part) for part in parts))


def command_id_for(producer: str, payload: Message) -> UUID:
    """The id of a message without a cause, from its content: a resend of the same message has the same id.
    `<producer>/<type>/<sha256 of the payload's compact JSON>` in ID_NAMESPACE (UUIDv5); see Envelope.id."""
    digest = hashlib.sha256(payload.model_dump_json().encode()).hexdigest()
    return derive_id(producer, payload.TYPE, digest)


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
    message_id: Uuid | None = None,
) -> Envelope[M]:
    """Wrap a payload; an id caused by another message is derived from that message's id."""
    if message_id is None:
        if cause is None:
            raise ValueError("make_envelope: give message_id for a message without a cause")
        message_id = derive_id(cause.id, payload.TYPE, discriminator)
    model: type[Envelope[M]] = envelope_model(type(payload))
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


@cache
def envelope_model(model: type[Message]) -> Any:
    """`Envelope[model]`, made once: pydantic's own cache of parametrised generics is weak and costly to miss, and
    its lookup costs more than the rest of wrapping a small payload."""
    return Envelope[model]  # type: ignore[valid-type]
