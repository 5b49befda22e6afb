"""Tampering with a recorded log as a file can be edited: records dropped, edited or written after the others of
their partition, over the log of tests/unit/builders_replay.World."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from builders_replay import World, at, of_type

from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import make_envelope
from services.replay.eventlog import EventLog, build_log
from services.replay.invariants import check
from services.replay.records import LogRecord
from services.replay.violations import Violation

Records = list[LogRecord]


def records(world: World) -> Records:
    return world.records(world.log().topics)


def as_log(world: World, changed: Records) -> EventLog:
    return build_log(changed, world.log().topics, "tampered")


def found(log: EventLog, code: str) -> list[Violation]:
    return [v for v in check(log) if v.code == code]


def envelope_of(record: LogRecord) -> dict[str, Any]:
    value = json.loads(record.value or b"null")
    return value if isinstance(value, dict) else {}


def without(changed: Records, where: Callable[[dict[str, Any]], bool]) -> Records:
    kept = [r for r in changed if not where(envelope_of(r))]
    assert len(kept) < len(changed), "no record matched"
    return kept


def appended(changed: Records, topic: str, partition: int, payload: Message, producer: str) -> Records:
    """A record written after the others of its partition, with an envelope of its own."""
    offset = sum(1 for r in changed if (r.topic, r.partition) == (topic, partition))
    key: str = payload.buyer_id  # type: ignore[attr-defined]
    envelope = make_envelope(payload, key=key, producer=producer, occurred_at=at(900), message_id=uuid4())
    return [*changed, LogRecord(topic, partition, offset, envelope.key.encode(), encode(envelope))]


def partition_of(changed: Records, type_: str, **fields: Any) -> int:
    return next(r.partition for r in changed if of_type(type_, **fields)(envelope_of(r)))
