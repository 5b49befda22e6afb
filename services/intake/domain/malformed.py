"""The answer to a record of a submission topic that intake cannot accept as a command: SubmissionMalformed.

Decided from the record alone (its coordinates, key, bytes, headers and timestamp) and the codec's error, so a
redelivered record gives the same outcome with the same id: derive_id("SubmissionMalformed", topic, partition,
offset). Nothing in the record is trusted; what can be read of it (the buyer it names, its id and correlation id)
is recovered for the submitter to match the answer with what it sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.codec import MAX_MESSAGE_BYTES, ContractError
from schemas.envelope import Envelope, derive_id, envelope_model
from schemas.outcomes import MALFORMED_KEY, SubmissionMalformed
from schemas.topics import CORRELATION_HEADER, buyer_of_submission_topic

_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_CHARS = 256
_DETAIL_CHARS = 500


@dataclass(frozen=True)
class Refused:
    """A record intake refused, as it was read: nothing of it has been validated."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    at: datetime
    """The record's timestamp (its producer's or the broker's), or when intake refused it if it has none."""


def key_problem(key: bytes | None, envelope: Envelope[Any]) -> ContractError | None:
    """A record's key must be the key its envelope names, or absent (some clients send none): anything else is
    refused rather than re-keyed silently, since the sender meant one of the two and we cannot tell which."""
    if key is None or key == envelope.key.encode():
        return None
    shown = key[:64].decode("utf-8", "backslashreplace")
    return ContractError(
        "key_mismatch",
        f"the record is keyed {shown!r} but its envelope names key {envelope.key[:64]!r}: "
        "a record's key must be its envelope's key (or none)",
    )


def malformed(record: Refused, error: ContractError) -> Envelope[SubmissionMalformed]:
    """The outcome of a refused record, keyed by its buyer when it can be told, with the correlation id it carries."""
    claims = _claims(record.value)
    buyer = buyer_of_submission_topic(record.topic) or _slug(claims.get("buyer_id"))
    command_id = _uuid(claims.get("id"))
    correlation_id = _header_uuid(record.headers) or _uuid(claims.get("correlation_id")) or command_id
    value = record.value or b""
    detail = error.detail if len(error.detail) <= _DETAIL_CHARS else error.detail[: _DETAIL_CHARS - 1] + "…"
    payload = SubmissionMalformed(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        record_key=None if record.key is None else record.key.decode("utf-8", "backslashreplace")[:_KEY_CHARS],
        value_sha256=hashlib.sha256(value).hexdigest(),
        value_length=len(value),
        code=error.code,
        detail=detail or error.code,
        buyer_id=buyer,
        command_id=command_id,
        correlation_id=correlation_id,
        refused_at=record.at,
    )
    message_id = derive_id(SubmissionMalformed.TYPE, record.topic, record.partition, record.offset)
    model: type[Envelope[SubmissionMalformed]] = envelope_model(SubmissionMalformed)
    return model.model_validate(
        {
            "id": message_id,
            "type": payload.TYPE,
            "version": payload.VERSION,
            "occurred_at": record.at,
            "producer": "intake",
            "key": buyer or MALFORMED_KEY,
            "correlation_id": correlation_id or message_id,
            "causation_id": command_id,
            "payload": payload,
        }
    )


def _claims(value: bytes | None) -> dict[str, Any]:
    """What the value says of itself, if it parses as a JSON object: its id, correlation id and buyer."""
    if value is None or len(value) > MAX_MESSAGE_BYTES:
        return {}
    try:
        raw = json.loads(value)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    payload = raw.get("payload")
    buyer = payload.get("buyer_id") if isinstance(payload, dict) else None
    return {"id": raw.get("id"), "correlation_id": raw.get("correlation_id"), "buyer_id": buyer}


def _uuid(value: object) -> UUID | None:
    return UUID(value) if isinstance(value, str) and _UUID.match(value) else None


def _slug(value: object) -> str | None:
    return value if isinstance(value, str) and _SLUG.match(value) else None


def _header_uuid(headers: tuple[tuple[str, bytes], ...]) -> UUID | None:
    for name, data in headers:
        if name == CORRELATION_HEADER:
            return _uuid(data.decode("utf-8", "replace"))
    return None
