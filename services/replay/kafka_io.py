"""The log on a Kafka cluster: read topics from their beginning (committed records only, partition by partition,
in offset order: services.replay.bulk_read), and write records back to the partitions they came from (for
`import`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from kafka.admin import ConfigResource, ConfigResourceType

from schemas.topics import CATALOGUE
from services.common.records import LOG_APPEND_TIME
from services.ops.kafka_clients import admin_client, producer
from services.ops.topics import ensure_topics
from services.replay.bulk_read import FETCH_BYTES, read_at, read_topics, record_counts, records_at
from services.replay.progress import Progress
from services.replay.records import IMPORTED_ARRIVAL, LogRecord, ReplayError

__all__ = [
    "FETCH_BYTES",
    "create_catalogue",
    "keeping_arrivals",
    "read_at",
    "read_topics",
    "record_counts",
    "records_at",
    "write_records",
]

TIMESTAMP_TYPE = "message.timestamp.type"

SEND_CHUNK = 10_000
SEND_TIMEOUT_S = 60


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
