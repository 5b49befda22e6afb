"""Reads one partition (an inbox or its journal) from an offset up to another, committed records only (aiokafka, no
group): how a service worker rebuilds its state. The operator's replay of the whole log is services/replay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka_auth import aiokafka_options
from services.common.records import Record

KEEP_IDLE = 4
"""Started consumers kept for the next read: a rebuild reads a partition's snapshot check, inbox and journal and
their ends, two at a time, and rebuilds come in a burst after an assignment."""
FETCH_MAX_WAIT_MS = 10
IDLE_CLOSE_S = 30.0
"""A consumer not used for this long is closed (its connection is not worth keeping between bursts)."""


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        # A read stops at an offset known to exist, but the fetcher keeps a request in flight past it; the broker
        # holds a request at a partition's end for fetch.max.wait (500 ms by default), and the consumer's next read,
        # of another partition, waits for it: a rebuild's four reads lost ~2 s that way (the recovery bench).
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **aiokafka_options(),
    )


class PartitionReads:
    """Reads of whole partition ranges through a few consumers kept started between reads. Starting one (connection,
    SCRAM login, metadata) cost more than folding a few hundred records, and a rebuild of one partition started
    four (the recovery benchmark's restart: 7.5% of it in the SCRAM key derivation alone). A consumer that failed
    in a read is stopped, never reused."""

    def __init__(self, bootstrap: str, keep: int = KEEP_IDLE, idle_close_s: float = IDLE_CLOSE_S) -> None:
        self.bootstrap = bootstrap
        self.keep = keep
        self.idle_close_s = idle_close_s
        self._idle: list[tuple[AIOKafkaConsumer, float]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self.started = 0
        """Consumers started so far (for tests and figures)."""

    async def _acquire(self) -> AIOKafkaConsumer:
        if self._idle:
            return self._idle.pop()[0]
        consumer = _consumer(self.bootstrap)
        await consumer.start()
        self.started += 1
        return consumer

    def _release(self, consumer: AIOKafkaConsumer, reusable: bool) -> None:
        loop = asyncio.get_running_loop()
        if reusable and len(self._idle) < self.keep:
            self._idle.append((consumer, loop.time()))
            loop.call_later(self.idle_close_s, self._close_idle)
        else:
            self._stop_later(consumer)

    def _stop_later(self, consumer: AIOKafkaConsumer) -> None:
        task = asyncio.get_running_loop().create_task(_stop(consumer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _close_idle(self) -> None:
        now = asyncio.get_running_loop().time()
        # call_later may fire up to the clock's resolution early: a hair of slack, or the consumer would outlive it
        stale = [entry for entry in self._idle if now - entry[1] >= self.idle_close_s * 0.99]
        self._idle = [entry for entry in self._idle if entry not in stale]
        for consumer, _ in stale:
            self._stop_later(consumer)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for consumer, _ in idle:
            await _stop(consumer)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def end(self, topic: str, partition: int) -> int:
        """The offset after the last committed record of a partition (its last stable offset)."""
        consumer = await self._acquire()
        reusable = False
        try:
            tp = TopicPartition(topic, partition)
            end = int((await consumer.end_offsets([tp]))[tp])
            reusable = True
            return end
        finally:
            self._release(consumer, reusable)

    async def replay(self, topic: str, partition: int, until: int, start: int = 0) -> AsyncIterator[Record]:
        """The committed records of offsets [start, until)."""
        if until <= start:
            return
        consumer = await self._acquire()
        reusable = False
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            if start:
                consumer.seek(tp, start)
            else:
                await consumer.seek_to_beginning(tp)
            # Control records of transactions occupy offsets too: stop on the position, not on a count.
            while await consumer.position(tp) < until:
                batches = await consumer.getmany(tp, timeout_ms=1000, max_records=2000)
                for message in batches.get(tp, []):
                    if message.offset >= until:
                        reusable = True
                        return
                    yield Record(
                        topic,
                        partition,
                        message.offset,
                        message.key,
                        message.value,
                        tuple(message.headers or ()),
                        message.timestamp,
                        message.timestamp_type,
                    )
            reusable = True
        finally:
            # Left early by its reader (an exception, a generator closed), the consumer may hold a fetch for this
            # partition in flight: stopped rather than handed to the next read.
            self._release(consumer, reusable)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
