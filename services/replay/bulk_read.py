"""Reading whole topics fast: librdkafka (confluent-kafka) fetches in its own threads, outside the GIL, while Python
decodes and folds what was fetched. Every committed record of the topics, topic by topic, partition by partition,
in offset order; a read that stalls below a partition's end says so instead of polling forever.

All of replay's Kafka reads build their client in `bulk_consumer`, from the cluster's settings: that is where
the cluster's security options go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as Partition

from schemas.principals import BULK_READ_GROUP
from services.common.kafka_auth import librdkafka_options
from services.common.settings import ClusterSettings
from services.ops.kafka_clients import BrokerUnavailableError
from services.replay.progress import Progress
from services.replay.records import LogRecord, ReplayError

FETCH_BYTES = 4 * 1024 * 1024
"""A fetch's bytes. With 16 MB and a 48 MB queue a 1M-event replay peaked at 287 MB; with 4 and 12, at 219 and no
slower (59 s against 63); with 1 and 4, at 200 but 1.5 times slower (a fetch per ~1,500 records)."""
QUEUED_KBYTES = 12 * 1024
"""librdkafka's prefetch queue (three fetches of FETCH_BYTES)."""
FETCH_QUEUE_BACKOFF_MS = 20
BATCH_RECORDS = 10_000
"""Records taken from librdkafka's queue per call: the per-call cost spread over many records."""
METADATA_TIMEOUT_S = 10.0
STALL_S = 60.0
"""How long a read may stay at one offset below the partition's end before it gives up."""


def bulk_consumer(cluster: ClusterSettings) -> Consumer:
    """The one Kafka client replay reads with: no group membership (partitions are assigned by hand, nothing is
    committed), committed transactions only, CRCs checked as kafka-python checks them."""
    return Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            # librdkafka wants a group id even for a consumer that only assigns partitions; it never joins it.
            "group.id": BULK_READ_GROUP,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "check.crcs": True,
            "enable.partition.eof": True,
            # A fetch held by the broker for a partition just read to its end would hold the next partition's first
            # fetch as long (500 ms by default, once per partition: 14 times slower on the bench's log).
            "fetch.wait.max.ms": 10,
            "fetch.max.bytes": FETCH_BYTES,
            "max.partition.fetch.bytes": FETCH_BYTES,
            "receive.message.max.bytes": FETCH_BYTES + 1024 * 1024,
            # What librdkafka fetches ahead of Python: at ~20,000 events/s decoded (14 MB/s) 12 MB is most of a
            # second of work. It was 256 MB, which the queue filled while Python decoded (most of a 1M replay's
            # 462 MB peak), then 48.
            "queued.max.messages.kbytes": QUEUED_KBYTES,
            # When the queue is full librdkafka waits this long before fetching again (1 s by default): with a queue
            # of a second's work that left the reader idle, a bare read of 5M events took 34 us an event, not 4.
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            "socket.connection.setup.timeout.ms": int(METADATA_TIMEOUT_S * 1000),
            **librdkafka_options(cluster),
        }
    )


@contextmanager
def _consumer(bootstrap: str) -> Iterator[Consumer]:
    consumer = bulk_consumer(ClusterSettings(bootstrap_servers=bootstrap))
    try:
        yield consumer
    finally:
        consumer.close()


def _unreachable(bootstrap: str) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"no Kafka broker answers at {bootstrap}: start one with `make kafka-up`, "
        "or give a running cluster with --bootstrap or H200_BOOTSTRAP_SERVERS"
    )


def _partitions(consumer: Consumer, bootstrap: str, topics: Iterable[str]) -> list[tuple[str, int]]:
    try:
        metadata = consumer.list_topics(timeout=METADATA_TIMEOUT_S)
    except KafkaException:
        raise _unreachable(bootstrap) from None
    found = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise ReplayError(
                f"topic {topic} does not exist on the cluster at {bootstrap}: is this the h200 cluster? "
                "(`h200 topics create` makes an empty catalogue)"
            )
        found += [(topic, p) for p in sorted(described.partitions)]
    return found


def _bounds(consumer: Consumer, partition: tuple[str, int]) -> tuple[int, int]:
    """(first offset, offset after the last committed record), asked of the partition's leader now."""
    low, high = consumer.get_watermark_offsets(Partition(*partition), timeout=METADATA_TIMEOUT_S, cached=False)
    return int(low), int(high)


def record_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """Records each topic holds now (committed, from its first offset to its end)."""
    counts: dict[str, int] = {}
    with _consumer(bootstrap) as consumer:
        for partition in _partitions(consumer, bootstrap, topics):
            low, high = _bounds(consumer, partition)
            counts[partition[0]] = counts.get(partition[0], 0) + high - low
    return counts


Bounded = tuple[tuple[str, int], int, int]
"""A partition to read, (topic, partition), from its first offset to the offset after its last."""


def partition_bounds(
    bootstrap: str, topics: Iterable[str], starts: Mapping[tuple[str, int], int] | None = None
) -> list[Bounded]:
    """The partitions of the topics in the order read_topics reads them, each with the offsets it would read."""
    with _consumer(bootstrap) as consumer:
        return _bounded(consumer, bootstrap, topics, starts)


def _bounded(
    consumer: Consumer, bootstrap: str, topics: Iterable[str], starts: Mapping[tuple[str, int], int] | None
) -> list[Bounded]:
    found = []
    for partition in _partitions(consumer, bootstrap, topics):
        low, high = _bounds(consumer, partition)
        start = (starts or {}).get(partition)
        found.append((partition, low if start is None else max(low, start), high))
    return found


def read_topics(
    bootstrap: str,
    topics: Iterable[str],
    stream: TextIO | None = None,
    starts: Mapping[tuple[str, int], int] | None = None,
) -> Iterator[LogRecord]:
    """Every committed record of the topics, topic by topic, partition by partition, oldest first; from the offset
    `starts` gives a partition, if it gives one (a ledger checkpoint's end), else from the first."""
    with _consumer(bootstrap) as consumer:
        bounded = _bounded(consumer, bootstrap, topics, starts)
        progress = Progress(f"reading {bootstrap}", sum(high - low for _, low, high in bounded), stream)
        yield from _read_bounded(consumer, bounded, progress)
        progress.close()


def read_bounded(bootstrap: str, bounded: Iterable[Bounded], progress: Progress) -> Iterator[LogRecord]:
    """The records of the partitions `partition_bounds` gave (or some of them), in their order."""
    with _consumer(bootstrap) as consumer:
        yield from _read_bounded(consumer, bounded, progress)


def _read_bounded(consumer: Consumer, bounded: Iterable[Bounded], progress: Progress) -> Iterator[LogRecord]:
    for partition, low, high in bounded:
        if high > low:
            yield from _read_partition(consumer, partition, low, high, progress)


def records_at(bootstrap: str, spots: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int, int], bytes | None]:
    """The value of the record at each (topic, partition, offset) that the partition still holds; a spot it does
    not hold (deleted, compacted away, past its end, a partition it does not have) is left out."""
    return {spot: record.value for spot, record in read_at(bootstrap, spots).items()}


def read_at(bootstrap: str, spots: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int, int], LogRecord]:
    """The record at each (topic, partition, offset) the partition still holds, as read_topics gives it."""
    found: dict[tuple[str, int, int], LogRecord] = {}
    spots = list(spots)
    with _consumer(bootstrap) as consumer:
        topics = sorted({topic for topic, _, _ in spots})
        present = set(_partitions(consumer, bootstrap, topics)) if topics else set()
        progress = Progress("", None, None)
        for topic, number, offset in spots:
            if (topic, number) not in present:
                continue
            low, high = _bounds(consumer, (topic, number))
            if not low <= offset < high:
                continue
            for record in _read_partition(consumer, (topic, number), offset, offset + 1, progress):
                found[(topic, number, offset)] = record
    return found


def _read_partition(
    consumer: Consumer, partition: tuple[str, int], start: int, end: int, progress: Progress
) -> Iterator[LogRecord]:
    topic, number = partition
    consumer.assign([Partition(topic, number, start)])
    stall = _Stall(partition, end)
    position = start
    try:
        while stall.reading(position):
            # consume() waits until it has as many records as asked, or its timeout: never ask for more than are left
            for message in consumer.consume(min(BATCH_RECORDS, end - position), timeout=1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # Nothing more is committed for now (read_committed stops at the last stable offset,
                        # which an open transaction may hold below `end`): the partition is read.
                        return
                    raise ReplayError(f"reading {topic}[{number}] failed: {error.str()}: check the broker, then retry")
                offset = message.offset() or 0
                position = offset + 1
                if offset >= end:
                    continue
                kind, stamp = message.timestamp()
                yield LogRecord(
                    topic,
                    number,
                    offset,
                    message.key(),
                    message.value(),
                    None if kind == TIMESTAMP_NOT_AVAILABLE else int(stamp),
                    _headers(message.headers()),
                    # librdkafka counts from 1 (CreateTime), Kafka's record attribute from 0
                    None if kind == TIMESTAMP_NOT_AVAILABLE else int(kind) - 1,
                )
                progress.advance()
    finally:
        consumer.unassign()


def _headers(
    found: Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None,
) -> tuple[tuple[str, bytes], ...]:
    """A consumed record's headers as kafka-python gave them: (name, bytes) pairs in order."""
    if not found:
        return ()
    pairs = found.items() if isinstance(found, Mapping) else found
    return tuple((name, value.encode() if isinstance(value, str) else value or b"") for name, value in pairs)


class _Stall:
    """Ends a read that makes no progress: a broker gone mid-read would otherwise leave the reader polling forever."""

    def __init__(self, partition: tuple[str, int], end: int) -> None:
        self.partition, self.end = partition, end
        self.position, self.since = -1, time.monotonic()

    def reading(self, position: int) -> bool:
        if position >= self.end:
            return False
        if position != self.position:
            self.position, self.since = position, time.monotonic()
        elif time.monotonic() - self.since > STALL_S:
            topic, number = self.partition
            raise ReplayError(
                f"reading {topic}[{number}] made no progress for {STALL_S:.0f} s at offset "
                f"{max(position, 0)} of {self.end}: check that the broker is up and the partition has a leader, "
                "then retry"
            )
        return True
