"""A core's state per inbox partition, rebuilt from the partition itself whenever it is not current.

The inbox is the service's whole input in one order per partition, so the state after offset n is the fold
of records 0..n-1. A worker that starts, restarts after a crash or receives a partition in a rebalance sees
a first record whose offset is not the next one it expects; it then replays the partition from the start up
to that offset, silently (the outputs of that history were sent by whoever processed it), and goes on.
Duplicates are the cores' business, not the runner's: every core is idempotent on a repeated input (by its
id or by the natural key of what it records, property-tested per core), and only the core knows when an input
must be decided again: a fulfilment report refused because its ledger line had not arrived yet is forgotten by
the core so that its identical retry is decided, which a runner-level set of applied ids would silently drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError
from schemas.envelope import Envelope
from services.common.decider import step
from services.common.records import Record, decode_record
from services.common.retry import Backoff, Lifecycle, persist

log = logging.getLogger(__name__)

YIELD_EVERY = 500
"""Records folded in a rebuild between two returns to the event loop, so heartbeats and the fetcher go on (a
partition of 116,000 records folded in one go blocked a worker past its session, and the group rebalanced)."""

REBUILD = Backoff(first_s=0.5, max_s=30.0, attempt_timeout_s=3600.0)
"""A rebuild reads a whole partition: it may take long, and its failures are waited out."""

Replay = Callable[[str, int, int], AsyncIterator[Record]]
"""(topic, partition, until_offset) -> the records of offsets [0, until_offset) that are committed."""


@dataclass
class PartitionState:
    state: Any
    next_offset: int = 0


@dataclass(frozen=True)
class Outcome:
    outputs: list[Envelope[Message]]
    rejected: ContractError | None = None


class PartitionedCore:
    def __init__(
        self, core: Any, replay: Replay, max_bytes: int, lifecycle: Lifecycle | None = None, backoff: Backoff = REBUILD
    ) -> None:
        self.core = core
        self._replay = replay
        self._max_bytes = max_bytes
        self._lifecycle = lifecycle or _Running()
        self._backoff = backoff
        self._partitions: dict[tuple[str, int], PartitionState] = {}
        self.rebuilds = 0
        self.rebuilding: set[tuple[str, int]] = set()
        """The partitions being rebuilt now (a worker rebuilding is not ready)."""
        self.on_rebuilt: Callable[[float], None] = lambda seconds: None
        """Called with the duration of each rebuild that succeeded."""

    def _apply(self, current: PartitionState, record: Record) -> Outcome:
        current.next_offset = record.offset + 1
        try:
            envelope = decode_record(record, self._max_bytes)
        except ContractError as error:
            return Outcome([], rejected=error)
        try:
            current.state, outputs = step(self.core, current.state, envelope)
        except Exception as exc:
            # A defect in the core, not in the record: the record goes to the dead letters with the error.
            # Live processing and a rebuild fail the same way on it, so the states stay the same. Nothing of it
            # was folded: once the defect is fixed, the same record sent again (same id) is processed.
            log.exception("%s failed on %s", self.core.NAME, record.where)
            return Outcome([], rejected=ContractError("processing_failed", f"{type(exc).__name__}: {exc}"))
        return Outcome(outputs)

    async def _rebuild(self, topic: str, partition: int, until: int) -> PartitionState:
        rebuilt = PartitionState(self.core.initial_state())
        count, started = 0, time.monotonic()
        self.rebuilding.add((topic, partition))
        try:
            async for record in self._replay(topic, partition, until):
                self._apply(rebuilt, record)
                count += 1
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            self.rebuilding.discard((topic, partition))
        rebuilt.next_offset = until
        self.rebuilds += 1
        self.on_rebuilt(time.monotonic() - started)
        log.info(
            "rebuilt %s state of %s[%s] from %s records up to offset %s", self.core.NAME, topic, partition, count, until
        )
        return rebuilt

    def is_current(self, record: Record) -> bool:
        """Whether `record` is the next one of a partition whose state is held: handling it rebuilds nothing, and
        then `handle` never waits."""
        current = self._partitions.get((record.topic, record.partition))
        return current is not None and current.next_offset == record.offset

    async def handle(self, record: Record) -> Outcome:
        """Apply one live record; the outputs are the facts to publish for it."""
        key = (record.topic, record.partition)
        if not self.is_current(record):
            # A rebuild that fails (broker away) is retried: raising would end the agent and faust would skip
            # this record (faust-streaming #315). A stop request ends the retries (StopRequestedError).
            self._partitions[key] = await persist(
                partial(self._rebuild, record.topic, record.partition, record.offset),
                f"rebuilding {self.core.NAME} state of {record.topic}[{record.partition}]",
                self._lifecycle,
                self._backoff,
                logger=log,
            )
        return self._apply(self._partitions[key], record)

    def forget(self, topic: str, partition: int) -> bool:
        """Drop the state of a partition this worker no longer owns (it is rebuilt if the partition comes back)."""
        return self._partitions.pop((topic, partition), None) is not None

    def state_of(self, topic: str, partition: int) -> Any:
        current = self._partitions.get((topic, partition))
        return None if current is None else current.state


class _Running:
    """The lifecycle of a core used outside a service (tests, tools): never asked to stop."""

    should_stop = False

    async def sleep(self, n: float) -> None:
        await asyncio.sleep(n)
