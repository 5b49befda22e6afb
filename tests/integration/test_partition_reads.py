"""Rebuild reads against the real broker through consumers kept started between reads (#9): every read gives the
records of its range, whatever the consumer read before, and a consumer left in the middle of a read is not used
again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kafka import KafkaProducer

from services.common.inbox_replay import PartitionReads
from services.common.kafka_auth import kafka_python_options


def _fill(bootstrap: str, topic: str, per_partition: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **kafka_python_options())
    for partition in (0, 1):
        for n in range(per_partition):
            producer.send(topic, f"p{partition}-{n}".encode(), partition=partition)
    producer.flush()
    producer.close()


def test_reads_of_several_ranges_share_started_consumers(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    topic = make_topic("reads", partitions=2)
    _fill(kafka_bootstrap, topic, 50)

    async def read() -> tuple[list[list[bytes | None]], list[int], int]:
        reads = PartitionReads(kafka_bootstrap)
        try:
            ends = [await reads.end(topic, 0), await reads.end(topic, 1)]
            ranges = [
                [r.value async for r in reads.replay(topic, 0, 50)],
                [r.value async for r in reads.replay(topic, 1, 30, start=20)],
                [r.value async for r in reads.replay(topic, 0, 5, start=2)],  # backwards on a used consumer
                [r.value async for r in reads.replay(topic, 1, 50, start=49)],
            ]
            return ranges, ends, reads.started
        finally:
            await reads.close()

    ranges, ends, started = asyncio.run(read())
    assert ends == [50, 50]
    assert ranges[0] == [f"p0-{n}".encode() for n in range(50)]
    assert ranges[1] == [f"p1-{n}".encode() for n in range(20, 30)]
    assert ranges[2] == [f"p0-{n}".encode() for n in range(2, 5)]
    assert ranges[3] == [b"p1-49"]
    assert started == 1  # six reads one after another, one consumer


def test_a_read_left_half_way_stops_its_consumer_and_the_next_read_starts_another(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("reads-left", partitions=2)
    _fill(kafka_bootstrap, topic, 20)

    async def read() -> tuple[list[bytes | None], list[bytes | None], int]:
        reads = PartitionReads(kafka_bootstrap)
        try:
            left = reads.replay(topic, 0, 20)
            first = [await anext(left) for _ in range(3)]
            await left.aclose()
            whole = [r.value async for r in reads.replay(topic, 0, 20)]
            return [r.value for r in first], whole, reads.started
        finally:
            await reads.close()

    first, whole, started = asyncio.run(read())
    assert first == [b"p0-0", b"p0-1", b"p0-2"]
    assert whole == [f"p0-{n}".encode() for n in range(20)]
    assert started == 2


def test_two_reads_at_once_each_get_their_own_range(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    topic = make_topic("reads-together", partitions=2)
    _fill(kafka_bootstrap, topic, 300)

    async def read() -> tuple[list[bytes | None], list[bytes | None]]:
        reads = PartitionReads(kafka_bootstrap)

        async def one(partition: int) -> list[bytes | None]:
            return [r.value async for r in reads.replay(topic, partition, 300)]

        try:
            zero, one_ = await asyncio.gather(one(0), one(1))
            return zero, one_
        finally:
            await reads.close()

    zero, one_ = asyncio.run(read())
    assert zero == [f"p0-{n}".encode() for n in range(300)]
    assert one_ == [f"p1-{n}".encode() for n in range(300)]
