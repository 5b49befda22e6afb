"""What can happen in one step of a run, concretely enough to replay it without the seed: a trace is a list of
these. Shrinking removes some and replays the rest; an action that no longer applies does nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.envelope import Envelope

from .topology import Consumer


@dataclass(frozen=True)
class Inject:
    """An upstream system, an operator, an authority or the clock process sends a message at `at` (the world's
    time then, the envelope's own time unless said: a resend goes again later), to the partition of its key
    unless `partition` says where another client's partitioner put it."""

    envelope: Envelope[Any]
    partition: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Deliver:
    """The next record to one consumer, `after_ms` after the previous action (the broker's clock moves on).
    `publish` = k: the worker dies after sending k of the outputs."""

    consumer: Consumer
    publish: int | None = None
    after_ms: int = 0


@dataclass(frozen=True)
class Commit:
    consumer: Consumer


@dataclass(frozen=True)
class Crash:
    service: str


@dataclass(frozen=True)
class Duplicate:
    """A producer retry: the record at (topic, partition, offset) is written again."""

    topic: str
    partition: int
    offset: int


Action = Inject | Deliver | Commit | Crash | Duplicate


def describe_message(envelope: Envelope[Any]) -> str:
    """One line naming what a message is about: enough to follow a trace."""
    payload = envelope.payload
    fields = []
    for name in ("buyer_id", "upstream_ref", "batch_id", "quantity", "approved_quantity", "step", "rule", "lane"):
        value = getattr(payload, name, None)
        if value is not None:
            fields.append(f"{name}={value}")
    for name in ("policy_id", "licence_id", "tranche_id"):
        value = getattr(payload, name, None)
        if value is not None:
            fields.append(f"{name}={value}")
    revision = getattr(payload, "revision", None)
    if revision is not None:
        fields.append(f"rev={revision}")
    for name in ("order_id", "allocation_id"):
        value = getattr(payload, name, None)
        if value is not None:
            fields.append(f"{name[:-3]}={str(value)[:8]}")
    why = getattr(payload, "why", None) or getattr(payload, "outcome", None)
    if why is not None:
        fields.append(f"why={why}")
    reason = getattr(payload, "reason", None)
    if reason is not None and hasattr(reason, "code"):
        fields.append(f"reason={reason.code}")
    for name in ("at", "decided_at", "allocated_at", "effective_at", "valid_until", "closed_at"):
        value = getattr(payload, name, None)
        if value is not None:
            fields.append(f"{name}={value:%m-%d %H:%M:%S}")
    return f"{payload.TYPE}({', '.join(fields)}) id={str(envelope.id)[:8]}"


def describe(action: Action) -> str:
    match action:
        case Inject(envelope, partition, at):
            where = "" if partition is None else f" on partition {partition}"
            return f"inject {describe_message(envelope)} at {at or envelope.occurred_at:%m-%d %H:%M:%S}{where}"
        case Deliver(consumer, publish, after_ms):
            later = f" {after_ms} ms later" if after_ms else ""
            crash = "" if publish is None else f", crash after publishing {publish} output(s)"
            return f"deliver {consumer.name}{later}{crash}"
        case Commit(consumer):
            return f"commit {consumer.name}"
        case Crash(service):
            return f"crash {service} (positions back to committed offsets, states rebuilt)"
        case Duplicate(topic, partition, offset):
            return f"duplicate {topic}:{partition}@{offset}"
    raise TypeError(action)
