"""Sends one sample of every message kind to its home topic and reads each back by its exact position."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import TopicPartition

from schemas.base import Message
from schemas.codec import decode, encode
from schemas.envelope import Envelope
from schemas.routing import home_topic
from schemas.samples import sample_envelopes
from services.ops.kafka_clients import producer, reader


@dataclass(frozen=True)
class Echo:
    type: str
    topic: str
    partition: int
    offset: int
    matches: bool


def send_and_read_back(bootstrap: str, timeout_s: float = 30.0) -> list[Echo]:
    envelopes = sample_envelopes()
    positions: list[tuple[Envelope[Message], TopicPartition, int]] = []
    with producer(bootstrap) as client:
        futures = [(e, client.send(home_topic(e.payload).name, key=e.key.encode(), value=encode(e))) for e in envelopes]
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
