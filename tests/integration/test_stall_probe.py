"""The stall watch's probe against the real broker: it reads a group's committed offsets and the partitions' ends
with clients of its own, and tells a record waiting past the committed offset from a transaction's commit marker
(which also lies there, and must never make a caught-up worker exit)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from services.common.kafka_auth import kafka_python_options
from services.common.stall_watch import OffsetProbe, Stall


def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, **kafka_python_options())
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def test_committed_offsets_ends_and_a_record_waiting(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    topic, group = make_topic("stall", partitions=2), f"stall-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, **kafka_python_options())
    for n in range(3):
        producer.send(topic, f"r{n}".encode(), partition=0)
    producer.flush()
    producer.close()
    _commit(kafka_bootstrap, group, topic, 1)

    async def probe() -> tuple[dict, dict, bool, bool]:  # type: ignore[type-arg]
        offsets = OffsetProbe(kafka_bootstrap, group)
        try:
            committed, ends = await offsets.offsets({(topic, 0), (topic, 1)})
            waiting = await offsets.has_record(Stall(topic, 0, 1, 3, 0))
            none_left = await offsets.has_record(Stall(topic, 0, 3, 3, 0))
            return committed, ends, waiting, none_left
        finally:
            await offsets.close()

    committed, ends, waiting, none_left = asyncio.run(probe())
    assert committed == {(topic, 0): 1, (topic, 1): 0}  # partition 1 was never committed: from its log start
    assert ends == {(topic, 0): 3, (topic, 1): 0}
    assert waiting is True
    assert none_left is False


def test_a_commit_marker_past_the_committed_offset_is_no_record(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic, group = make_topic("stall-txn"), f"stall-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-t", **kafka_python_options())
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, b"only", partition=0)
    producer.commit_transaction()
    producer.close()
    _commit(kafka_bootstrap, group, topic, 1)  # what a consumer that read the one record commits

    async def probe() -> tuple[dict, bool]:  # type: ignore[type-arg]
        offsets = OffsetProbe(kafka_bootstrap, group)
        try:
            committed, ends = await offsets.offsets({(topic, 0)})
            return {"committed": committed[(topic, 0)], "end": ends[(topic, 0)]}, await offsets.has_record(
                Stall(topic, 0, committed[(topic, 0)], ends[(topic, 0)], 0)
            )
        finally:
            await offsets.close()

    seen, readable = asyncio.run(probe())
    assert seen == {"committed": 1, "end": 2}  # the marker holds offset 1
    assert readable is False
