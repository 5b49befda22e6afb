"""Round trips through the real broker with kafka-python and aiokafka, and transaction visibility."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.kafka_auth import kafka_python_options

DRAIN_TIMEOUT_S = 60.0


def drain(consumer: KafkaConsumer, partitions: list[TopicPartition], timeout: float = DRAIN_TIMEOUT_S) -> list[Any]:
    """Poll from the beginning until the consumer's position reaches the end offset of every partition
    (end offsets taken now, i.e. everything already written), and return the records in poll order."""
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        assert time.monotonic() < deadline, (
            f"positions { {tp.partition: consumer.position(tp) for tp in partitions} } did not reach "
            f"end offsets { {tp.partition: o for tp, o in ends.items()} } within {timeout}s"
        )
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def test_kafka_python_round_trip(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    partitions = 3
    topic = make_topic("kp-roundtrip", partitions=partitions)
    n = 300
    sent: list[tuple[bytes, bytes]] = [(f"key-{i % 10}".encode(), f"value-{i}".encode()) for i in range(n)]

    producer = KafkaProducer(
        **kafka_python_options(),
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        client_id="h200-test-kp-producer",
    )
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in sent]
        producer.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futures]
    finally:
        producer.close(timeout=10)

    # per partition, offsets must follow the send order (idempotent producer keeps order with retries)
    produced_by_partition: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for (k, v), meta in zip(sent, metas, strict=True):
        produced_by_partition[meta.partition].append((meta.offset, k, v))
    for p, rows in produced_by_partition.items():
        offsets = [o for o, _, _ in rows]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), f"partition {p} offsets {offsets}"
    # same key -> same partition
    key_partitions: dict[bytes, set[int]] = defaultdict(set)
    for (k, _), meta in zip(sent, metas, strict=True):
        key_partitions[k].add(meta.partition)
    assert all(len(ps) == 1 for ps in key_partitions.values()), key_partitions
    assert len(produced_by_partition) > 1, "10 keys over 3 partitions should use more than one partition"

    consumer = KafkaConsumer(
        **kafka_python_options(),
        bootstrap_servers=kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        client_id="h200-test-kp-consumer",
    )
    try:
        records = drain(consumer, [TopicPartition(topic, p) for p in range(partitions)])
    finally:
        consumer.close()

    assert len(records) == n
    consumed_by_partition: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for r in records:
        consumed_by_partition[r.partition].append((r.offset, r.key, r.value))
    assert dict(consumed_by_partition) == dict(produced_by_partition)


def test_aiokafka_round_trip(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    partitions = 2
    topic = make_topic("aio-roundtrip", partitions=partitions)
    n = 200
    sent = [(f"acct-{i % 7}".encode(), f"event-{i}".encode()) for i in range(n)]

    async def run() -> tuple[list[Any], list[Any]]:
        producer = AIOKafkaProducer(
            **kafka_python_options(),
            bootstrap_servers=kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id="h200-test-aio-producer",
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v) for k, v in sent]
            await producer.flush()
            metas = [await f for f in futures]
        finally:
            await producer.stop()

        tps = [AioTopicPartition(topic, p) for p in range(partitions)]
        consumer = AIOKafkaConsumer(
            **kafka_python_options(),
            bootstrap_servers=kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="h200-test-aio-consumer",
        )
        await consumer.start()
        records: list[Any] = []
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while True:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
                assert time.monotonic() < deadline, f"positions {positions} never reached {ends}"
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        finally:
            await consumer.stop()
        return metas, records

    metas, records = asyncio.run(run())
    assert len(records) == n
    produced: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for (k, v), meta in zip(sent, metas, strict=True):
        produced[meta.partition].append((meta.offset, k, v))
    consumed: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for r in records:
        consumed[r.partition].append((r.offset, r.key, r.value))
    assert dict(consumed) == dict(produced)
    # per key, values come back in send order
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[r.key].append(r.value)
    for k in by_key:
        assert by_key[k] == [v for kk, v in sent if kk == k]


def test_transactional_write_is_visible_only_after_commit(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    topic = make_topic("txn", partitions=1)
    tp = TopicPartition(topic, 0)
    aborted = [f"aborted-{i}".encode() for i in range(5)]
    committed = [f"committed-{i}".encode() for i in range(7)]

    producer = KafkaProducer(
        **kafka_python_options(),
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"h200-test-{uuid.uuid4().hex}",
        transaction_timeout_ms=15000,
        acks="all",
        client_id="h200-test-txn-producer",
    )
    try:
        producer.init_transactions()

        producer.begin_transaction()
        for v in aborted:
            producer.send(topic, key=b"k", value=v)
        producer.flush(timeout=30)  # the aborted records are in the log, followed by an ABORT marker
        producer.abort_transaction()

        # while a transaction is open, read_committed must not see its records (last stable offset holds)
        producer.begin_transaction()
        for v in committed:
            producer.send(topic, key=b"k", value=v)
        producer.flush(timeout=30)
        peek = KafkaConsumer(
            **kafka_python_options(),
            bootstrap_servers=kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id="h200-test-txn-peek",
        )
        try:
            open_txn_view = [r.value for r in drain(peek, [tp])]
        finally:
            peek.close()
        assert open_txn_view == [], open_txn_view

        producer.commit_transaction()
    finally:
        producer.close(timeout=10)

    views: dict[str, list[bytes]] = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = KafkaConsumer(
            **kafka_python_options(),
            bootstrap_servers=kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level=isolation,
            client_id=f"h200-test-txn-{isolation}",
        )
        try:
            views[isolation] = [r.value for r in drain(consumer, [tp])]
        finally:
            consumer.close()

    assert views["read_committed"] == committed
    assert views["read_uncommitted"] == aborted + committed
