"""Waiting for the system to settle: every service group and the projector have read every topic to its end.

Nothing here sleeps a fixed time to hope work is done: it compares recorded positions with the log ends.

Work that crosses services several times needs no special case: a revocation goes approval -> allocation (recall
asked) -> fulfilment (recall answered) -> allocation (chips released and given again, order closed) -> approval
(licence and quota released). Every service publishes, and the broker acknowledges, the facts an input causes
before it commits that input, so while any hop is pending, some reader has not committed a record that exists: the
system is settled only once the whole round trip is in the log. The demo and the end-to-end tier check so (every
recall answered, every ended order closed and released: services.ops.protocol).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import RetriableError

from schemas.topics import BY_NAME, EVENT_TOPICS, inputs_of
from services.projector.store import ReadModelStore

SERVICE_INPUTS = {
    f"h200-{service}": inputs_of(service) for service in ("intake", "approval", "allocation", "fulfilment")
}
"""Consumer group -> the topics it reads: what "caught up" is measured against."""


@dataclass(frozen=True)
class Lag:
    by_reader: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_reader.values())


def _ends(consumer: KafkaConsumer, topics: set[str]) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(t, p) for t in sorted(topics) for p in range(BY_NAME[t].partitions)]
    return dict(consumer.end_offsets(partitions))


def measure_lag(admin: KafkaAdminClient, consumer: KafkaConsumer, store: ReadModelStore) -> Lag:
    topics = {t for inputs in SERVICE_INPUTS.values() for t in inputs} | set(EVENT_TOPICS)
    ends = _ends(consumer, topics)
    lag: dict[str, int] = {}
    for group, inputs in SERVICE_INPUTS.items():
        # kafka-python 3 names it list_group_offsets and answers {group: {partition: offset}}.
        found = admin.list_group_offsets(group).get(group, {})
        committed = {tp: meta.offset for tp, meta in found.items()}
        lag[group] = sum(_behind(end, committed.get(tp, 0)) for tp, end in ends.items() if tp.topic in inputs)
    positions = store.positions()
    lag["projector"] = sum(
        _behind(end, positions.get((tp.topic, tp.partition), 0)) for tp, end in ends.items() if tp.topic in EVENT_TOPICS
    )
    return Lag(lag)


def _behind(end: int, position: int) -> int:
    # The ends are read first: a reader may have passed one since. That partition is not behind, and being
    # ahead there must not cancel lag on another partition.
    return max(end - max(position, 0), 0)


def wait_until_settled(
    admin: KafkaAdminClient,
    consumer: KafkaConsumer,
    store: ReadModelStore,
    timeout_s: float = 120.0,
    progress: Callable[[Lag], None] | None = None,
) -> Lag:
    """Block until no reader lags twice in a row (work caused by work has had its turn); raise on timeout."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while True:
        try:
            lag = measure_lag(admin, consumer, store)
        except RetriableError:
            # A new broker creates __consumer_offsets on first use: its coordinator answers a moment later.
            time.sleep(0.5)
            continue
        if progress:
            progress(lag)
        quiet = quiet + 1 if lag.total == 0 else 0
        if quiet >= 2:
            return lag
        if time.monotonic() > deadline:
            behind = ", ".join(f"{k} {v}" for k, v in lag.by_reader.items() if v)
            raise TimeoutError(f"the system did not settle in {timeout_s:.0f} s; still behind: {behind}")
        time.sleep(0.5)
