"""The canonical path of decode (schemas.codec._canonical) skips the UUID and time text checks and relies on the
re-encoding comparison instead. It must give exactly what the general path gives, for every message type: the same
envelope, UUIDs as uuid.UUID and times on datetime.timezone.utc (pydantic's own TzInfo would compare ten times
slower in the cores); and a spelling the checks refuse must still be refused."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from schemas.base import Message
from schemas.codec import ContractError, _canonical, decode, decode_general, encode
from schemas.envelope import make_envelope
from schemas.samples import AT, sample_payloads

PAYLOADS = sample_payloads()
ID = UUID("5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11")


def times_and_ids(value: object) -> list[object]:
    """Every datetime and UUID inside a decoded message, however deep."""
    found: list[object] = []
    if isinstance(value, datetime | UUID):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            found += times_and_ids(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found += times_and_ids(item)
    elif hasattr(value, "__pydantic_fields__"):
        for name in type(value).__pydantic_fields__:
            found += times_and_ids(getattr(value, name))
    return found


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.schema_name() for p in PAYLOADS])
def test_the_canonical_path_gives_what_the_general_path_gives(payload: Message) -> None:
    data = encode(make_envelope(payload, key="k", producer="test", occurred_at=AT, message_id=ID))
    fast = _canonical(data)
    assert fast is not None, "a record exactly as encode writes it takes the canonical path"
    general = decode_general(data)
    assert fast == general
    assert encode(fast) == data
    for found in times_and_ids(fast):
        if isinstance(found, datetime):
            assert found.tzinfo is UTC, f"{found!r} is not on datetime.timezone.utc"
        else:
            assert type(found) is UUID


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (b'"occurred_at":"2026-01-28T09:00:00Z"', b'"occurred_at":"2026-01-28 09:00:00Z"'),
        (b'"occurred_at":"2026-01-28T09:00:00Z"', b'"occurred_at":"2026-01-28T09:00:00"'),
    ],
)
def test_a_spelling_the_text_checks_refuse_is_still_refused(good: bytes, bad: bytes) -> None:
    data = encode(make_envelope(PAYLOADS[0], key="k", producer="test", occurred_at=AT, message_id=ID))
    assert good in data
    with pytest.raises(ContractError):
        decode(data.replace(good, bad))


def test_a_uuid_without_dashes_is_still_refused() -> None:
    envelope = make_envelope(PAYLOADS[0], key="k", producer="test", occurred_at=AT, message_id=ID)
    data = encode(envelope)
    hyphenated = str(envelope.id).encode()
    assert hyphenated in data
    with pytest.raises(ContractError):
        decode(data.replace(hyphenated, hyphenated.replace(b"-", b"")))
