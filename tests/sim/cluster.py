"""An in-memory Kafka: partitioned append-only logs, consumer positions and committed offsets, and the services'
workers running the real cores through services.common.partitions (so a rebuild after a crash is the real one).

Records keep their bytes (what the cores decode, as in production) and the envelope they were encoded from
(what routers, the oracle and the trace read). Every append gets a global sequence number: the order in which
things happened in the simulated world, which no single service can see.

Time (docs/time.md): the broker has a clock, `now`, moved only by the actions of a run (a message sent at its
time, a delivery some milliseconds after the previous action). A topic created with LogAppendTime (every inbox)
stamps each record with it, never going back within a partition, and the record carries it as Kafka's
LogAppendTime, so the real decode_record gives the envelope its arrival; any other topic keeps the producer's
CreateTime, which is no arrival. Each inbox record also keeps the clock of its partition up to it (the last tick
and the largest tick or arrival), which the oracle compares with the decisions made on it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codec import ContractError, encode
from schemas.envelope import Envelope
from schemas.routing import copy_partitions, explicit_partition, home_topic, record_key
from schemas.topics import BY_NAME
from services.common.journal import MemoryJournal
from services.common.partitions import Outcome, PartitionedCore
from services.common.records import LOG_APPEND_TIME, Record
from services.common.snapshots import MemorySnapshots

from .topology import Consumer, Topology, partition_of, simulated_topics
from .workers import make_worker, run_at_once, run_now

# A core that raises is reported by the simulator as a violation; the worker's traceback would only be noise.
logging.getLogger("services.common.partitions").setLevel(logging.CRITICAL)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CREATE_TIME = 0
"""Kafka's timestamp type of a record stamped by its producer: a claim, never an arrival."""


def ms(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def at_ms(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def stamped_by_broker(topic: str) -> bool:
    return BY_NAME[topic].config.get("message.timestamp.type") == "LogAppendTime"


@dataclass(frozen=True, slots=True)
class Entry:
    key: bytes
    value: bytes
    envelope: Envelope[Any]
    seq: int
    origin: tuple[str, int, int] | None = None
    """For a decision: the inbox record (topic, partition, offset) it was decided on."""
    timestamp_ms: int = 0
    timestamp_type: int = CREATE_TIME
    tick_ms: int | None = None
    """On an inbox: the latest tick (ClockTicked.at) in the partition up to and including this record."""
    clock_ms: int | None = None
    """On an inbox: the largest tick or arrival in the partition up to and including this record (docs/time.md:
    approval's partition clock `now` when it decides on this record)."""

    def record(self, topic: str, partition: int, offset: int) -> Record:
        """The Kafka record as a consumer reads it (with its timestamp and type)."""
        return Record(topic, partition, offset, self.key, self.value, (), self.timestamp_ms, self.timestamp_type)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    consumer: Consumer
    offset: int
    error: ContractError


class Cluster:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.logs: dict[str, list[list[Entry]]] = {
            t.name: [[] for _ in range(t.partitions)] for t in simulated_topics()
        }
        self.seq = 0
        self.now_ms = ms(datetime(2026, 2, 2, 9, 0, tzinfo=UTC))
        """The broker's clock: moved by the actions of a run (Simulation), read by every append."""
        self.position: dict[Consumer, int] = dict.fromkeys(topology.consumers, 0)
        self.committed: dict[Consumer, int] = dict.fromkeys(topology.consumers, 0)
        self.processed: dict[Consumer, int] = dict.fromkeys(topology.consumers, -1)
        """The highest offset each deciding agent has handled live: what the determinism check refolds."""
        self.journals = {service.name: MemoryJournal() for service in topology.services}
        self.snapshots = {service.name: MemorySnapshots() for service in topology.services}
        """Each service's decision journal (a topic) and snapshots (its disk): what a crash does not take."""
        self.workers = {service.name: self._worker(service.name) for service in topology.services}
        self.dead_letters: list[DeadLetter] = []
        self.fresh: list[tuple[str, int, int]] = []
        """(topic, partition, offset) of records appended since the oracle last looked."""
        self.readers: dict[tuple[str, int], list[Consumer]] = {}
        for consumer in topology.consumers:
            self.readers.setdefault((consumer.topic, consumer.partition), []).append(consumer)
        self.admissions = 0
        """Approvals written (OrderApproved, ApprovalReinstated): allocation serves each once a later tick's markers
        have passed it."""
        self.waiting: set[Consumer] = set()
        """Consumers with records to read (kept as records are written and read: asked at every step)."""

    def _worker(self, service: str) -> PartitionedCore:
        core = self.topology.service(service).core
        return make_worker(core, self._replay, self.journals[service], self.snapshots[service])

    async def _replay(self, topic: str, partition: int, until: int, start: int = 0) -> AsyncIterator[Record]:
        log = self.logs[topic][partition]
        for offset in range(start, min(until, len(log))):
            yield log[offset].record(topic, partition, offset)

    # ------------------------------------------------------------------------------------------- time

    def reach(self, at: datetime) -> None:
        """The world's time is `at` (a message is sent then): the broker's clock never goes back."""
        self.now_ms = max(self.now_ms, ms(at))

    def elapse(self, milliseconds: int) -> None:
        self.now_ms += milliseconds

    # ------------------------------------------------------------------------------------------- producing

    def append(
        self, topic: str, partition: int, key: bytes, value: bytes, envelope: Envelope[Any], origin: Any = None
    ) -> int:
        log = self.logs[topic][partition]
        if stamped_by_broker(topic):
            previous = log[-1] if log else None
            stamp = max(self.now_ms, previous.timestamp_ms if previous else self.now_ms)
            tick = previous.tick_ms if previous else None
            if envelope.type == "ClockTicked":
                tick = max(tick or 0, ms(envelope.payload.at))
            clock = stamp if tick is None else max(stamp, tick)  # stamps never go back: so neither does this
            entry = Entry(key, value, envelope, self.seq, origin, stamp, LOG_APPEND_TIME, tick, clock)
        else:
            entry = Entry(key, value, envelope, self.seq, origin, ms(envelope.occurred_at), CREATE_TIME)
        log.append(entry)
        self.waiting.update(self.readers.get((topic, partition), ()))
        self.seq += 1
        self.fresh.append((topic, partition, len(log) - 1))
        return len(log) - 1

    def publish(
        self, envelope: Envelope[Any], origin: tuple[str, int, int] | None = None, partition: int | None = None
    ) -> tuple[str, int]:
        """Send to the message's home topic under the envelope's key, as a worker or an upstream client does."""
        topic = home_topic(envelope.payload)
        if partition is None:
            partition = explicit_partition(envelope.payload)
        partition = partition_of(envelope.key, topic) if partition is None else partition
        self.append(topic.name, partition, envelope.key.encode(), encode(envelope), envelope, origin)
        return topic.name, partition

    def duplicate(self, topic: str, partition: int, offset: int) -> bool:
        """A producer's retry: the same record written again at the end of its partition."""
        log = self.logs[topic][partition]
        if offset >= len(log):
            return False
        entry = log[offset]
        self.append(topic, partition, entry.key, entry.value, entry.envelope, entry.origin)
        return True

    # ------------------------------------------------------------------------------------------- consuming

    def pending(self, consumer: Consumer) -> int:
        return len(self.logs[consumer.topic][consumer.partition]) - self.position[consumer]

    def entry_at(self, consumer: Consumer) -> Entry:
        return self.logs[consumer.topic][consumer.partition][self.position[consumer]]

    def deliver(self, consumer: Consumer, publish: int | None = None) -> list[tuple[str, int, Envelope[Any]]]:
        """Hand the next record to the consumer; `publish` = k sends only the first k outputs (then the caller
        crashes the worker). Returns what was written: (topic, partition, envelope)."""
        offset = self.position[consumer]
        entry = self.logs[consumer.topic][consumer.partition][offset]
        self.position[consumer] = offset + 1
        if consumer.route is None:
            written = self._decide(consumer, offset, entry, publish)
        else:
            written = self._route(consumer, entry)
        if self.pending(consumer) == 0:
            self.waiting.discard(consumer)
        return written

    def _decide(self, consumer: Consumer, offset: int, entry: Entry, publish: int | None) -> list[Any]:
        record = entry.record(consumer.topic, consumer.partition, offset)
        worker = self.workers[consumer.service]
        outcome: Outcome = (run_at_once if worker.is_current(record) else run_now)(worker.handle(record))
        self.processed[consumer] = max(self.processed[consumer], offset)
        if outcome.rejected is not None:
            self.dead_letters.append(DeadLetter(consumer, offset, outcome.rejected))
        outputs = outcome.outputs if publish is None else outcome.outputs[:publish]
        self.admissions += sum(1 for envelope in outputs if envelope.type in ("OrderApproved", "ApprovalReinstated"))
        origin = (consumer.topic, consumer.partition, offset)
        return [(*self.publish(envelope, origin), envelope) for envelope in outputs]

    def _route(self, consumer: Consumer, entry: Entry) -> list[Any]:
        """Copy the bytes unchanged into the inbox under the inbox's key, to every partition for broadcast rules
        (to its own lane's for a lane-only marker).
        Records the route does not carry are passed over at once: dropping them is invisible to everyone, so a
        delivery step is spent on a record that matters (time compression)."""
        assert consumer.route is not None
        while not isinstance(entry.envelope.payload, consumer.route.types):
            if self.pending(consumer) == 0:
                return []
            entry = self.entry_at(consumer)
            self.position[consumer] += 1
        payload = entry.envelope.payload
        inbox = self.topology.inbox_of(consumer.service)
        copies = copy_partitions(payload, inbox)
        if copies is not None:
            targets = [(p, entry.key) for p in copies]
        else:
            key = record_key(payload, inbox)
            targets = [(partition_of(key, inbox), key.encode())]
        for partition, key_bytes in targets:
            self.append(inbox.name, partition, key_bytes, entry.value, entry.envelope)
        return [(inbox.name, partition, entry.envelope) for partition, _ in targets]

    def commit(self, consumer: Consumer) -> bool:
        if self.committed[consumer] == self.position[consumer]:
            return False
        self.committed[consumer] = self.position[consumer]
        return True

    def crash(self, service: str) -> None:
        """The worker dies: every position of the service falls back to its committed offset and the cores'
        per-partition states are gone (the next record rebuilds them from the inbox)."""
        for consumer in self.topology.consumers_of(service):
            self.position[consumer] = self.committed[consumer]
            if self.pending(consumer):
                self.waiting.add(consumer)
        self.workers[service] = self._worker(service)

    def waiting_in_order(self) -> list[Consumer]:
        return sorted(self.waiting, key=lambda consumer: consumer.index)

    def quiescent(self) -> bool:
        return not self.waiting
