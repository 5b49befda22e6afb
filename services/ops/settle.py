"""Waiting for the system to settle: every service group and the projector have read every topic to its end.

Nothing here sleeps a fixed time to hope work is done: it compares recorded positions with the log ends.

Work that crosses services several times needs no special case: a revocation goes approval -> allocation (recall
asked) -> fulfilment (recall answered) -> allocation (chips released and given again, order closed) -> approval
(licence and quota released). Every service publishes, and the broker acknowledges, the facts an input causes
before it commits that input, so while any hop is pending, some reader has not committed a record that exists: the
system is settled only once the whole round trip is in the log. The demo and the end-to-end tier check so (every
recall answered, every ended order closed and released: services.ops.protocol).

While the clock ticks (services.clock), the log never stops growing: each tick is copied into the inboxes and
answered by markers (ApprovalsPassed), and some work waits for time by design (allocation admits an approval once
the markers of a later tick have passed it). There, settled means: every reader has passed the ends seen one round
before, and for QUIET_S nothing but the passage of time has been written (the records between rounds are read:
only ticks, their copies and markers). Without a tick for QUIET_S, settled is as before: no reader lags twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import RetriableError

from schemas.topics import BY_NAME, EVENT_TOPICS, inputs_of
from services.common.kafka_auth import kafka_python_options
from services.projector.store import ReadModelStore

SERVICE_INPUTS = {
    f"h200-{service}": inputs_of(service) for service in ("intake", "approval", "allocation", "fulfilment")
}
"""Consumer group -> the topics it reads: what "caught up" is measured against."""
TIME_TYPES = frozenset({"ClockTicked", "ApprovalsPassed"})
"""Records that say only that time passed: what the running clock writes, copies and is answered with."""
QUIET_S = 3.0
"""How long the clock must be still, or write only time, before the system counts as settled: more than a tick
interval plus the trip of a marker to allocation (the default interval is 1 s)."""
CLOCK = "h200.clock"


@dataclass(frozen=True)
class Lag:
    by_reader: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_reader.values())


def _ends(consumer: KafkaConsumer, topics: set[str]) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(t, p) for t in sorted(topics) for p in range(BY_NAME[t].partitions)]
    return dict(consumer.end_offsets(partitions))


ALL_TOPICS = {t for inputs in SERVICE_INPUTS.values() for t in inputs} | set(EVENT_TOPICS) | {CLOCK}


Positions = dict[str, dict[TopicPartition, int]]
"""Reader (consumer group or projector) -> how far it has read each partition it reads."""


def positions(admin: KafkaAdminClient, store: ReadModelStore) -> Positions:
    found: Positions = {}
    for group in SERVICE_INPUTS:
        # kafka-python 3 names it list_group_offsets and answers {group: {partition: offset}}.
        offsets = admin.list_group_offsets(group).get(group, {})
        found[group] = {tp: meta.offset for tp, meta in offsets.items()}
    found["projector"] = {TopicPartition(topic, p): at for (topic, p), at in store.positions().items()}
    return found


def lag_behind(read: Positions, ends: dict[TopicPartition, int]) -> Lag:
    """How far each reader is behind `ends`, counting only the topics it reads."""
    inputs = {**SERVICE_INPUTS, "projector": EVENT_TOPICS}
    return Lag(
        {
            reader: sum(_behind(end, read[reader].get(tp, 0)) for tp, end in ends.items() if tp.topic in inputs[reader])
            for reader in read
        }
    )


def measure_lag(admin: KafkaAdminClient, consumer: KafkaConsumer, store: ReadModelStore) -> Lag:
    ends = _ends(consumer, ALL_TOPICS)
    return lag_behind(positions(admin, store), ends)


def _behind(end: int, position: int) -> int:
    # The ends are read first: a reader may have passed one since. That partition is not behind, and being
    # ahead there must not cancel lag on another partition.
    return max(end - max(position, 0), 0)


@dataclass
class Settling:
    """When to call the system settled, from what was seen of it (times in seconds of a monotonic clock)."""

    started: float
    quiet_s: float = QUIET_S
    zero_lag_in_a_row: int = 0
    clock_moved_at: float = 0.0
    clock_end: int | None = None
    work_seen_at: float = 0.0
    rounds_since_work: int = 0

    def __post_init__(self) -> None:
        # Until QUIET_S have passed, a clock that is about to tick and work about to be written cannot be told apart
        # from a still system: both timers start at the start.
        self.clock_moved_at = self.work_seen_at = self.started

    def lag(self, now: float, total: int, clock_end: int) -> None:
        self.zero_lag_in_a_row = self.zero_lag_in_a_row + 1 if total == 0 else 0
        if self.clock_end is not None and clock_end != self.clock_end:
            self.clock_moved_at = now
        self.clock_end = clock_end

    def round(self, now: float, types: Iterable[str | None]) -> None:
        """Every reader passed the ends of the round before; `types` were written since."""
        if any(t not in TIME_TYPES for t in types):
            self.work_seen_at, self.rounds_since_work = now, 0
        else:
            self.rounds_since_work += 1

    def settled(self, now: float) -> bool:
        # A clock that never ticked is taken for none (a system run without one, as before the clock existed).
        still = self.clock_end == 0 or now - self.clock_moved_at >= self.quiet_s
        if still and self.zero_lag_in_a_row >= 2:
            return True
        return self.rounds_since_work >= 2 and now - self.work_seen_at >= self.quiet_s


def written_types(
    consumer: KafkaConsumer, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> list[str | None]:
    """The envelope type of every record between `start` and `end` (None for one that is not an envelope)."""
    wanted = {tp: (start.get(tp, 0), stop) for tp, stop in end.items() if stop > start.get(tp, 0)}
    if not wanted:
        return []
    consumer.assign(list(wanted))
    for tp, (first, _) in wanted.items():
        consumer.seek(tp, first)
    found: list[str | None] = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < stop for tp, (_, stop) in wanted.items()) and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            found.extend(_type(r.value) for r in records if r.offset < wanted[tp][1])
    return found


def _type(value: bytes | None) -> str | None:
    try:
        found = json.loads(value or b"").get("type")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def wait_until_settled(
    admin: KafkaAdminClient,
    consumer: KafkaConsumer,
    store: ReadModelStore,
    timeout_s: float = 120.0,
    progress: Callable[[Lag], None] | None = None,
    quiet_s: float = QUIET_S,
) -> Lag:
    """Block until settled (see the module's doc: work caused by work has had its turn); raise on timeout."""
    deadline = time.monotonic() + timeout_s
    state = Settling(time.monotonic(), quiet_s)
    snapshot: dict[TopicPartition, int] | None = None
    reader = KafkaConsumer(
        bootstrap_servers=consumer.config["bootstrap_servers"], enable_auto_commit=False, **kafka_python_options()
    )
    try:
        while True:
            try:
                ends = _ends(consumer, ALL_TOPICS)
                read = positions(admin, store)
                lag = lag_behind(read, ends)
                passed = snapshot is not None and lag_behind(read, snapshot).total == 0
            except RetriableError:
                # A new broker creates __consumer_offsets on first use: its coordinator answers a moment later.
                time.sleep(0.5)
                continue
            now = time.monotonic()
            state.lag(now, lag.total, sum(end for tp, end in ends.items() if tp.topic == CLOCK))
            if snapshot is None or passed:
                if snapshot is not None:
                    state.round(now, written_types(reader, snapshot, ends))
                snapshot = ends
            if progress:
                progress(lag)
            if state.settled(now):
                return lag
            if now > deadline:
                behind = ", ".join(f"{k} {v}" for k, v in lag.by_reader.items() if v)
                raise TimeoutError(f"the system did not settle in {timeout_s:.0f} s; still behind: {behind}")
            time.sleep(0.5)
    finally:
        reader.close()
