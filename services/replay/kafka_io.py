"""The log on a Kafka cluster: read topics from their beginning (committed records only, partition by partition,
in offset order), and write records back to the partitions they came from (for `import`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from schemas.topics import CATALOGUE
from services.common.records import LOG_APPEND_TIME
from services.ops.kafka_clients import admin_client, producer, reader
from services.ops.topics import ensure_topics
from services.replay.progress import Progress
from services.replay.records import IMPORTED_ARRIVAL, LogRecord, ReplayError

TIMESTAMP_TYPE = "message.timestamp.type"

FETCH_BYTES = 16 * 1024 * 1024
POLL_RECORDS = 10_000
SEND_CHUNK = 10_000
SEND_TIMEOUT_S = 60
STALL_S = 60.0
"""How long a read may stay at one offset below the partition's end before it gives up."""


def _partitions(consumer: KafkaConsumer, bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    found = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ReplayError(
                f"topic {topic} does not exist on the cluster at {bootstrap}: is this the h200 cluster? "
                "(`h200 topics create` makes an empty catalogue)"
            )
        found += [TopicPartition(topic, p) for p in sorted(partitions)]
    return found


def read_topics(bootstrap: str, topics: Iterable[str], stream: TextIO | None = None) -> Iterator[LogRecord]:
    """Every committed record of the topics, topic by topic, partition by partition, oldest first."""
    with reader(
        bootstrap, max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=FETCH_BYTES, receive_buffer_bytes=1 << 20
    ) as consumer:
        partitions = _partitions(consumer, bootstrap, topics)
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        progress = Progress(f"reading {bootstrap}", sum(ends[tp] - starts[tp] for tp in partitions), stream)
        for tp in partitions:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            stall = _Stall(tp, ends[tp])
            while stall.reading(consumer.position(tp)):
                for batch in consumer.poll(timeout_ms=1000, max_records=POLL_RECORDS).values():
                    for record in batch:
                        if record.offset < ends[tp]:
                            yield LogRecord(
                                tp.topic,
                                tp.partition,
                                record.offset,
                                record.key,
                                record.value,
                                record.timestamp,
                                tuple((str(k), bytes(v)) for k, v in record.headers or ()),
                                record.timestamp_type,
                            )
                    progress.advance(len(batch))
        progress.close()


class _Stall:
    """Ends a read that makes no progress: a broker gone mid-read would otherwise leave the reader polling forever."""

    def __init__(self, tp: TopicPartition, end: int) -> None:
        self.tp, self.end = tp, end
        self.position, self.since = -1, time.monotonic()

    def reading(self, position: int) -> bool:
        if position >= self.end:
            return False
        if position != self.position:
            self.position, self.since = position, time.monotonic()
        elif time.monotonic() - self.since > STALL_S:
            raise ReplayError(
                f"reading {self.tp.topic}[{self.tp.partition}] made no progress for {STALL_S:.0f} s at offset "
                f"{position} of {self.end}: check that the broker is up and the partition has a leader, then retry"
            )
        return True


def record_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """Records each topic holds now (committed, from its first offset to its end)."""
    with reader(bootstrap) as consumer:
        partitions = _partitions(consumer, bootstrap, topics)
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
    counts: dict[str, int] = {}
    for tp in partitions:
        counts[tp.topic] = counts.get(tp.topic, 0) + ends[tp] - starts[tp]
    return counts


def create_catalogue(bootstrap: str) -> None:
    with admin_client(bootstrap) as admin:
        report = ensure_topics(admin)
    if report.problems:
        raise ReplayError("the cluster's topics differ from the catalogue: " + "; ".join(report.problems))


@contextmanager
def keeping_arrivals(bootstrap: str) -> Iterator[None]:
    """While importing, the inboxes take the producer's time: a broker stamping them again (LogAppendTime) would
    give every imported record the time of the import, and a refold would decide at other times than the cores
    did. Each record then keeps its original time (its arrival is marked by IMPORTED_ARRIVAL); the catalogue's
    setting is restored afterwards, so what arrives later is stamped by the broker again."""
    inboxes = [topic.name for topic in CATALOGUE if topic.config.get(TIMESTAMP_TYPE) == "LogAppendTime"]
    with admin_client(bootstrap) as admin:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={TIMESTAMP_TYPE: "CreateTime"}) for name in inboxes]
        )
    try:
        yield
    finally:
        create_catalogue(bootstrap)


def write_records(bootstrap: str, records: Iterable[LogRecord], stream: TextIO | None = None) -> int:
    """Send each record to its own topic and partition, with its key, time and headers, in the order given (an
    idempotent producer keeps that order per partition); returns how many the broker acknowledged."""
    progress = Progress(f"writing {bootstrap}", None, stream)
    sent = 0
    with producer(bootstrap, max_request_size=FETCH_BYTES) as client:
        pending = []
        for record in records:
            pending.append(
                client.send(
                    record.topic,
                    key=record.key,
                    value=record.value,
                    partition=record.partition,
                    timestamp_ms=record.timestamp_ms,
                    headers=[*record.headers, *_arrival_mark(record)],
                )
            )
            if len(pending) >= SEND_CHUNK:
                sent += _acknowledged(pending)
                progress.advance(SEND_CHUNK)
                pending = []
        sent += _acknowledged(pending)
        progress.advance(len(pending))
    progress.close()
    return sent


def _arrival_mark(record: LogRecord) -> list[tuple[str, bytes]]:
    already = any(name == IMPORTED_ARRIVAL for name, _ in record.headers)
    return [(IMPORTED_ARRIVAL, b"1")] if record.timestamp_type == LOG_APPEND_TIME and not already else []


def _acknowledged(futures: list[object]) -> int:
    for future in futures:
        future.get(timeout=SEND_TIMEOUT_S)  # type: ignore[attr-defined]
    return len(futures)
