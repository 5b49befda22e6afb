"""Reads one inbox partition from its start up to an offset, committed records only (aiokafka, no group): how a
service worker rebuilds its state. The operator's replay of the whole log is services/replay."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka_auth import aiokafka_options
from services.common.records import Record


async def replay_partition(bootstrap: str, topic: str, partition: int, until: int) -> AsyncIterator[Record]:
    if until <= 0:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        **aiokafka_options(),
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
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
