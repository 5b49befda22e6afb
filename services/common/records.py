"""Kafka records as the services see them, and their decoding at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Arrival, Envelope

LOG_APPEND_TIME = 1
"""Kafka's timestamp type of a record stamped by the broker (0 is the producer's CreateTime)."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None
    timestamp_type: int | None = None

    @property
    def arrival(self) -> Arrival | None:
        """The record's position and broker time when the broker stamped it (an inbox, docs/time.md), else None:
        a producer's CreateTime is the sender's claim and never becomes a time of receipt."""
        if self.timestamp_type != LOG_APPEND_TIME or self.timestamp_ms is None:
            return None
        at = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return Arrival(self.topic, self.partition, self.offset, at)

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def decode_record(record: Record, max_bytes: int) -> Envelope[Message]:
    """The validated envelope of a record; ContractError names what is wrong with it."""
    if record.value is None:
        raise ContractError("empty_value", "the record has no value (a tombstone is not a message)")
    envelope = decode(record.value, max_bytes=max_bytes)
    arrival = record.arrival
    return envelope if arrival is None else envelope.arrived(arrival)


def from_faust(message: Any) -> Record:
    """Our view of a faust Message (raw serializers: key and value are the bytes on the wire)."""
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), bytes(v)) for k, v in (message.headers or ())),
        # faust gives the record's timestamp in seconds (a float) with its type as aiokafka read it.
        timestamp_ms=None if message.timestamp is None else round(message.timestamp * 1000),
        timestamp_type=getattr(message, "timestamp_type", None),
    )
