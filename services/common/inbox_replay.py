"""Reads one partition (an inbox or its journal) from an offset up to another, committed records only (aiokafka, no
group): how a service worker rebuilds its state. The operator's replay of the whole log is services/replay."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka_auth import aiokafka_options
from services.common.records import Record


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        **aiokafka_options(),
    )


async def end_offset(bootstrap: str, topic: str, partition: int) -> int:
    """The offset after the last committed record of a partition (its last stable offset)."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def replay_partition(
    bootstrap: str, topic: str, partition: int, until: int, start: int = 0
) -> AsyncIterator[Record]:
    if until <= start:
        return
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if start:
            consumer.seek(tp, start)
        else:
            await consumer.seek_to_beginning(tp)
        # Control records of transactions occupy offsets too: stop on the position, not on a count.
        while await consumer.position(tp) < until:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=2000)
            for message in batches.get(tp, []):
                if message.offset >= until:
                    return
                yield Record(
                    topic,
                    partition,
                    message.offset,
                    message.key,
                    message.value,
                    tuple(message.headers or ()),
                    message.timestamp,
                    message.timestamp_type,
                )
    finally:
        await consumer.stop()
