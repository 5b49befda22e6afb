"""One sample of every message kind: printed, or sent to Kafka and read back by its exact position.

The samples are fakes (policies of a sample authority, a ChipsAllocated line for a made-up batch). Sent to the
catalogue's topics they would be acted on by the services and kept forever, so they go to scratch topics
(`h200.scratch.<topic>`, one partition, kept an hour) unless the operator names the live topics explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import TopicPartition

from schemas.base import Message
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.routing import home_topic
from schemas.topics import Topic
from services.ops.kafka_clients import admin_client, producer, reader
from services.ops.topics import TopicsReport, ensure_topics

SCRATCH_PREFIX = "h200.scratch."
SCRATCH_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(60 * 60 * 1000)}


@dataclass(frozen=True)
class Echo:
    type: str
    topic: str
    partition: int
    offset: int
    matches: bool


def live_topic(envelope: Envelope[Message]) -> str:
    return home_topic(envelope.payload).name


def scratch_topic(envelope: Envelope[Message]) -> str:
    """h200.policy -> h200.scratch.policy: no service reads it, and it forgets within the hour."""
    return SCRATCH_PREFIX + live_topic(envelope).removeprefix("h200.")


def create_scratch_topics(bootstrap: str, names: Sequence[str], timeout_s: float = 30.0) -> TopicsReport:
    scratch = tuple(
        Topic(
            name=name,
            key="the sample's own key",
            partitions=1,
            description="samples of `h200 samples --scratch`",
            messages=(),
            producers=("ops",),
            consumers=(),
            config=dict(SCRATCH_CONFIG),
        )
        for name in sorted(set(names))
    )
    with admin_client(bootstrap, timeout_s) as admin:
        return ensure_topics(admin, scratch)


def send_and_read_back(
    bootstrap: str,
    envelopes: Sequence[Envelope[Message]],
    destination: Callable[[Envelope[Message]], str],
    timeout_s: float = 30.0,
) -> list[Echo]:
    """Send each envelope to `destination(envelope)`, then read each back where the broker put it."""
    positions: list[tuple[Envelope[Message], TopicPartition, int]] = []
    with producer(bootstrap) as client:
        futures = [(e, client.send(destination(e), key=e.key.encode(), value=encode(e))) for e in envelopes]
        for envelope, future in futures:
            metadata = future.get(timeout=timeout_s)
            positions.append((envelope, TopicPartition(metadata.topic, metadata.partition), metadata.offset))
    echoes = []
    with reader(bootstrap, consumer_timeout_ms=int(timeout_s * 1000)) as consumer:
        for envelope, partition, offset in positions:
            consumer.assign([partition])
            consumer.seek(partition, offset)
            record = next(iter(consumer))
            echoes.append(
                Echo(envelope.type, partition.topic, partition.partition, offset, decode(record.value) == envelope)
            )
    return echoes
