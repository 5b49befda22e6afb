"""Kafka records as the services see them, and their decoding at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def decode_record(record: Record, max_bytes: int) -> Envelope[Message]:
    """The validated envelope of a record; ContractError names what is wrong with it."""
    if record.value is None:
        raise ContractError("empty_value", "the record has no value (a tombstone is not a message)")
    return decode(record.value, max_bytes=max_bytes)


def from_faust(message: Any) -> Record:
    """Our view of a faust Message (raw serializers: key and value are the bytes on the wire)."""
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), bytes(v)) for k, v in (message.headers or ())),
    )
