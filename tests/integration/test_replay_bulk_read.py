"""Replay's bulk reader (confluent-kafka) on a real broker gives the records kafka-python gave: partition by
partition in offset order, keys, values, headers, the producer's or the broker's timestamp and its type; it
stops at each partition's end, reads only committed transactions, and names a topic the cluster does not have."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.kafka_auth import kafka_python_options
from services.replay.bulk_read import read_topics, record_counts, records_at
from services.replay.records import LogRecord, ReplayError


def _as_kafka_python_reads(bootstrap: str, topics: list[str]) -> list[LogRecord]:
    """The same topics read the way replay read them before (kafka-python, partition by partition)."""
    found = []
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        **kafka_python_options(),
    )
    try:
        for topic in topics:
            for number in sorted(consumer.partitions_for_topic(topic) or ()):
                tp = TopicPartition(topic, number)
                consumer.assign([tp])
                consumer.seek_to_beginning(tp)
                end = consumer.end_offsets([tp])[tp]
                while consumer.position(tp) < end:
                    for batch in consumer.poll(timeout_ms=1000).values():
                        found += [
                            LogRecord(
                                topic,
                                number,
                                r.offset,
                                r.key,
                                r.value,
                                r.timestamp,
                                tuple((k, bytes(v)) for k, v in r.headers or ()),
                                r.timestamp_type,
                            )
                            for r in batch
                        ]
    finally:
        consumer.close()
    return found


def test_the_bulk_reader_gives_what_kafka_python_gave(kafka_bootstrap: str, make_topic: Callable[..., str]) -> None:
    created = make_topic("bulk", partitions=3)
    stamped = make_topic("bulk-stamped", partitions=2, configs={"message.timestamp.type": "LogAppendTime"})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", **kafka_python_options())
    for n in range(300):
        producer.send(
            created if n % 2 else stamped,
            key=None if n % 7 == 0 else f"key-{n % 11}".encode(),
            value=None if n == 5 else f'{{"n":{n}}}'.encode(),
            partition=n % 2,
            timestamp_ms=1_769_000_000_000 + n,
            headers=[("h200.n", str(n).encode()), ("empty", b"")] if n % 3 == 0 else None,
        )
    producer.flush()
    producer.close()

    records = list(read_topics(kafka_bootstrap, [created, stamped]))

    assert records == _as_kafka_python_reads(kafka_bootstrap, [created, stamped])
    assert len(records) == 300 and record_counts(kafka_bootstrap, [created, stamped]) == {created: 150, stamped: 150}
    assert [(r.topic, r.partition) for r in records] == sorted(
        ((r.topic, r.partition) for r in records), key=lambda p: ([created, stamped].index(p[0]), p[1])
    )
    assert {r.timestamp_type for r in records if r.topic == stamped} == {1}
    assert {r.timestamp_type for r in records if r.topic == created} == {0}


def test_an_open_transaction_is_not_waited_for_and_an_aborted_one_not_read(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("bulk-txn")
    committed = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-a", **kafka_python_options()
    )
    committed.init_transactions()
    committed.begin_transaction()
    committed.send(topic, b"kept")
    committed.commit_transaction()
    committed.begin_transaction()
    committed.send(topic, b"aborted")
    committed.abort_transaction()
    open_one = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-b", **kafka_python_options())
    open_one.init_transactions()
    open_one.begin_transaction()
    open_one.send(topic, b"not yet")
    open_one.flush()
    try:
        assert [r.value for r in read_topics(kafka_bootstrap, [topic])] == [b"kept"]
    finally:
        open_one.abort_transaction()
        open_one.close()
        committed.close()


def test_a_topic_the_cluster_does_not_have_is_named(kafka_bootstrap: str) -> None:
    with pytest.raises(ReplayError, match=r"topic h200\.nowhere does not exist on the cluster at "):
        list(read_topics(kafka_bootstrap, ["h200.nowhere"]))


def test_reads_from_a_checkpoint_s_offsets_and_single_records_by_position(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    # What ledger checkpoints need of the broker (services/replay/checkpoints.py): a read of every partition from
    # the offset a checkpoint ended at, and the record before that offset, to know the log is the same one.
    topic = make_topic("bulk-starts", partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", **kafka_python_options())
    for n in range(40):
        producer.send(topic, value=f"{n % 2}-{n // 2}".encode(), partition=n % 2)
    producer.flush()
    producer.close()

    since = list(read_topics(kafka_bootstrap, [topic], starts={(topic, 0): 15, (topic, 9): 3}))
    assert [(r.partition, r.offset) for r in since] == [(0, n) for n in range(15, 20)] + [(1, n) for n in range(20)]
    assert since[0].value == b"0-15"

    found = records_at(kafka_bootstrap, [(topic, 0, 14), (topic, 1, 19), (topic, 1, 20), (topic, 7, 0)])
    assert found == {(topic, 0, 14): b"0-14", (topic, 1, 19): b"1-19"}  # past the end, no such partition: left out
