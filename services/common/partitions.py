"""A core's state per inbox partition, rebuilt from what was recorded whenever it is not current.

The inbox is the service's whole input in one order per partition, so the state after offset n is the fold of
records 0..n-1 and of what was decided on each. Every decision is journaled (services.common.journal) before any
of it is sent. A worker that starts, restarts after a crash or receives a partition in a rebalance sees a first
record whose offset is not the next one it expects; it then loads the partition's latest usable snapshot
(services.common.snapshots) and folds the rest of the inbox with the journal: each record and the events recorded
for it go through the core's `evolve`, and `decide` is never called, so a rebuild emits nothing and a changed core
cannot change what was decided. A record decided before a crash but not yet committed is answered live with its
recorded outputs, sent again under their ids (readers skip repeats). Only a record with no journal entry (history
from before the journal existed) is decided again in a rebuild, silently, as the runner did before; that is
counted.

Duplicates are the cores' business, not the runner's: every core is idempotent on a repeated input (by its id or by
the natural key of what it records, property-tested per core), and only the core knows when an input must be
decided again: a fulfilment report refused because its ledger line had not arrived yet is forgotten by the core so
that its identical retry is decided, which a runner-level set of applied ids would silently drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError, decode, encode
from schemas.envelope import Envelope
from schemas.journal import JournalEntry
from services.common.core_version import core_version
from services.common.decider import step
from services.common.journal import Journal, Recorded, decisions, digest, split
from services.common.records import Record, decode_record
from services.common.retry import Backoff, Lifecycle, persist
from services.common.snapshots import Snapshot, SnapshotStore, SnapshotUnusableError, Stored

log = logging.getLogger(__name__)

YIELD_EVERY = 500
"""Records folded in a rebuild between two returns to the event loop, so heartbeats and the fetcher go on (a
partition of 116,000 records folded in one go blocked a worker past its session, and the group rebalanced)."""

REBUILD_TOGETHER = 2
"""Partitions of one batch rebuilt at a time: a rebuild waits on the broker (snapshot check, journal and inbox
reads) as much as it folds, so two overlap their waits; more would only add consumers and memory."""

REBUILD = Backoff(first_s=0.5, max_s=30.0, attempt_timeout_s=3600.0)
"""A rebuild reads a whole partition: it may take long, and its failures are waited out."""

Replay = Callable[..., AsyncIterator[Record]]
"""(topic, partition, until_offset, start=0) -> the committed records of offsets [start, until_offset)."""


@dataclass
class PartitionState:
    state: Any
    next_offset: int = 0
    journal_position: int = 0
    """The position after the journal entries folded so far."""
    recorded: dict[int, Recorded] = field(default_factory=dict)
    """Decisions found in the journal for records not handled yet (decided before a crash, not committed)."""
    since_snapshot: int = 0
    snapshot_after: float = 0.0
    """Not snapshotted again before this time (time.monotonic), so that snapshots take their share of time only."""
    writing: bool = False
    """A snapshot of the partition is being stored: none is taken again before it is (one writer per partition)."""


@dataclass(frozen=True)
class Outcome:
    outputs: list[Envelope[Message]]
    rejected: ContractError | None = None
    decided_by: str = ""
    """The version of the core that decided (for a decision answered from the journal, the one recorded there)."""


@dataclass
class RebuildFigures:
    """What rebuilds did, for the worker's metrics."""

    folded: int = 0
    """Records folded from their journal entries."""
    redecided: int = 0
    """Records with no journal entry, decided again in a rebuild (history from before the journal)."""
    snapshots_used: int = 0
    snapshots_unusable: int = 0
    snapshots_written: int = 0
    snapshots_failed: int = 0


def _failure(stored: asyncio.Future[None]) -> BaseException | None:
    return asyncio.CancelledError("its writing was cancelled") if stored.cancelled() else stored.exception()


class PartitionedCore:
    def __init__(
        self,
        core: Any,
        replay: Replay,
        max_bytes: int,
        lifecycle: Lifecycle | None = None,
        backoff: Backoff = REBUILD,
        journal: Journal | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = 0,
        snapshot_share: float = 0.0,
        version: str | None = None,
    ) -> None:
        self.core = core
        self.version = version or core_version(core)
        """What every event this worker decides records as its core's version; given by a caller that makes many
        workers of one core (the simulation), so that the sources are hashed once."""
        self._replay = replay
        self._max_bytes = max_bytes
        self._lifecycle = lifecycle or _Running()
        self._backoff = backoff
        self.journal = journal
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        """Records handled between two snapshots of a partition (0: never)."""
        self.snapshot_share = snapshot_share
        """At most this share of the time goes to writing snapshots (0: no limit, every `snapshot_every`). A
        snapshot costs as much as the state is large, so at a fixed count their cost would grow with the state:
        after one that took t seconds the next waits t * (1 - share) / share. Only when snapshots are taken
        depends on it, never what a rebuild gives (snapshot + tail = full fold)."""
        self._partitions: dict[tuple[str, int], PartitionState] = {}
        self.rebuilds = 0
        self.figures = RebuildFigures()
        self.rebuilding: set[tuple[str, int]] = set()
        """The partitions being rebuilt now (a worker rebuilding is not ready)."""
        self.on_rebuilt: Callable[[float], None] = lambda seconds: None
        """Called with the duration of each rebuild that succeeded."""
        self.on_snapshot: Callable[[float], None] = lambda seconds: None
        """Called with the duration of each snapshot written, from its capture until it is stored (the records of
        its partition wait only for the capture: see services.common.forked)."""
        self.last_snapshot = ""
        """The latest snapshot written, with its duration, for a log line that asks what the worker was doing."""
        self._storing: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------------------------------- deciding

    def _apply(self, current: PartitionState, record: Record) -> tuple[Outcome, JournalEntry]:
        """Decide on a record and fold it: the outcome, and the journal entry that records it."""
        current.next_offset = record.offset + 1
        entry = {"inbox": record.topic, "partition": record.partition, "offset": record.offset}
        entry |= {"record_sha256": digest(record.value), "core_version": self.version}
        try:
            envelope = decode_record(record, self._max_bytes)
        except ContractError as error:
            rejected = Outcome([], rejected=error, decided_by=self.version)
            return rejected, JournalEntry(**entry, outcome="rejected", **_error(error))
        try:
            current.state, outputs = step(self.core, current.state, envelope)
        except Exception as exc:
            # A defect in the core, not in the record: the record goes to the dead letters with the error.
            # Nothing of it was folded: once the defect is fixed, the same record sent again (same id) is processed.
            log.exception("%s failed on %s", self.core.NAME, record.where)
            failure = ContractError("processing_failed", f"{type(exc).__name__}: {exc}")
            failed = Outcome([], rejected=failure, decided_by=self.version)
            return failed, JournalEntry(**entry, outcome="failed", **_error(failure))
        encoded = tuple(encode(output).decode("utf-8") for output in outputs)
        return Outcome(outputs, decided_by=self.version), JournalEntry(**entry, outcome="decided", outputs=encoded)

    def _refold(self, current: PartitionState, record: Record, entry: JournalEntry) -> Outcome:
        """Fold a record with what was recorded for it; `decide` is not called."""
        current.next_offset = record.offset + 1
        if entry.outcome != "decided":
            return Outcome(
                [], rejected=ContractError(entry.error_code or "processing_failed", entry.error_detail or "")
            )
        envelope = decode_record(record, self._max_bytes)
        outputs: list[Envelope[Message]] = [decode(output.encode("utf-8")) for output in entry.outputs]
        state = self.core.evolve(current.state, envelope)
        for output in outputs:
            state = self.core.evolve(state, output)
        current.state = state
        return Outcome(outputs, decided_by=entry.core_version)

    def is_current(self, record: Record) -> bool:
        """Whether `record` is the next one of a partition whose state is held: handling it rebuilds nothing, and
        then `handle` never waits."""
        current = self._partitions.get((record.topic, record.partition))
        return current is not None and current.next_offset == record.offset

    async def handle(self, record: Record) -> Outcome:
        """Apply one live record; the outputs are the facts to publish for it (journaled before they are)."""
        [outcome] = await self.handle_all([record])
        return outcome

    async def handle_all(self, records: list[Record]) -> list[Outcome]:
        """Apply live records in order (of one or several partitions); the outputs of each are the facts to publish
        for it. Every decision among them is journaled, in one round trip, before this returns and so before the
        caller sends anything of it: a batch costs one wait for the journal, not one per record."""
        await self._rebuild_together(records)
        outcomes: list[Outcome] = []
        entries: list[JournalEntry] = []
        touched: dict[tuple[str, int], Record] = {}
        must_wait = False
        for record in records:
            if not self.is_current(record) and entries:
                # A rebuild reads the journal to its end: what this batch decided so far goes there first.
                await self._journal(entries, wait=True)
                entries, must_wait = [], False
            outcome, entry = await self._take(record)
            outcomes.append(outcome)
            touched[(record.topic, record.partition)] = record
            if entry is not None:
                entries.extend(split(entry, self._max_bytes))
                must_wait = must_wait or bool(outcome.outputs or outcome.rejected)
        if entries:
            # A decision that sends or refuses something is recorded, with every entry before it, before anything
            # of it is sent; a batch that decided nothing is only queued (most inbox records decide nothing).
            await self._journal(entries, wait=must_wait)
        for (topic, partition), last in touched.items():
            current = self._partitions[(topic, partition)]
            if self._snapshot_due(current):
                await self._snapshot(current, last)
        return outcomes

    async def _rebuild_together(self, records: list[Record]) -> None:
        """Rebuild, REBUILD_TOGETHER at a time, the partitions of a batch whose first record is not the next one
        held (after an assignment every partition's first batch is): before anything of the batch is decided, so
        no entry of it is owed to the journal. One stale partition is left to `_take`, which rebuilds as it goes."""
        first: dict[tuple[str, int], Record] = {}
        for record in records:
            first.setdefault((record.topic, record.partition), record)
        stale = [record for record in first.values() if not self.is_current(record)]
        if len(stale) < 2:
            return
        together = asyncio.Semaphore(REBUILD_TOGETHER)

        async def rebuild(record: Record) -> None:
            async with together:
                await self._rebuild_for(record)

        tasks = [asyncio.ensure_future(rebuild(record)) for record in stale]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()  # a failure or a stop request: the others are not left running
            raise

    async def _rebuild_for(self, record: Record) -> None:
        # A rebuild that fails (broker away) is retried: raising would end the agent and faust would skip this
        # record (faust-streaming #315). A stop request ends the retries (StopRequestedError).
        self._partitions[(record.topic, record.partition)] = await persist(
            partial(self._rebuild, record.topic, record.partition, record.offset),
            f"rebuilding {self.core.NAME} state of {record.topic}[{record.partition}]",
            self._lifecycle,
            self._backoff,
            logger=log,
        )

    async def _take(self, record: Record) -> tuple[Outcome, JournalEntry | None]:
        """Fold one record: answered from the journal if it was decided before, else decided; the entry to journal."""
        key = (record.topic, record.partition)
        if not self.is_current(record):
            await self._rebuild_for(record)
        current = self._partitions[key]
        current.since_snapshot += 1
        recorded = current.recorded.pop(record.offset, None)
        if recorded is not None and recorded.entry.record_sha256 == digest(record.value):
            return self._refold(current, record, recorded.entry), None
        outcome, entry = self._apply(current, record)
        return outcome, entry if self.journal is not None else None

    async def _journal(self, entries: list[JournalEntry], wait: bool) -> None:
        assert self.journal is not None
        if not wait:
            await self.journal.write_later(entries)
            return
        for partition, position in (await self.journal.write_all(entries)).items():
            current = self._partitions.get((entries[0].inbox, partition))
            if current is not None:
                current.journal_position = max(current.journal_position, position)

    def _snapshot_due(self, current: PartitionState) -> bool:
        if self.snapshots is None or not self.snapshot_every or current.since_snapshot < self.snapshot_every:
            return False
        if current.writing:
            return False
        return not self.snapshot_share or time.monotonic() >= current.snapshot_after

    async def _snapshot(self, current: PartitionState, record: Record) -> None:
        began = time.monotonic()
        pending = [recorded.position for recorded in current.recorded.values()]
        assert self.snapshots is not None
        if self.journal is not None:
            current.journal_position = max(
                current.journal_position, await self.journal.flush(record.topic, record.partition)
            )
        where = f"{record.topic}[{record.partition}] at offset {current.next_offset}"
        stored = self.snapshots.capture(
            Snapshot(
                record.topic,
                record.partition,
                current.next_offset,
                min([current.journal_position, *pending]),
                self.version,
                digest(record.value),
                current.state,
            )
        )
        current.since_snapshot, current.writing = 0, True
        captured = time.monotonic() - began
        # Accounted for as soon as it is stored (at once for a store in memory), while the partition goes on.
        if isinstance(stored, Stored):
            self._stored(current, None, where, began, captured)
            return
        future = asyncio.ensure_future(stored)
        self._storing.add(future)
        future.add_done_callback(self._storing.discard)
        future.add_done_callback(lambda done: self._stored(current, _failure(done), where, began, captured))

    async def stored(self, timeout_s: float | None = None) -> int:
        """Wait for the snapshots being stored now (a clean stop, so that a writer is not ended with its worker), at
        most `timeout_s`: the number still being stored then (0: all were)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._storing:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            await asyncio.wait(set(self._storing), timeout=left)
        return len(self._storing)

    def _stored(
        self, current: PartitionState, error: BaseException | None, where: str, began: float, captured: float
    ) -> None:
        current.writing = False
        done = time.monotonic()
        if error is not None:
            # Not fatal: the topics back every state, so the next rebuild folds from an earlier snapshot.
            self.figures.snapshots_failed += 1
            log.error(
                "%s: the snapshot of %s was not stored (%s); the next is due in as many records",
                self.core.NAME,
                where,
                error,
            )
            self.last_snapshot = f"a snapshot of {where}, which failed after {done - began:.2f} s"
        else:
            self.figures.snapshots_written += 1
            self.on_snapshot(done - began)
            self.last_snapshot = (
                f"a snapshot of {where}, captured in {captured:.2f} s and stored in {done - began:.2f} s"
            )
        if self.snapshot_share:
            # A forked writer's time counts too: it takes a core the other partitions could use.
            current.snapshot_after = done + (done - began) * (1 - self.snapshot_share) / self.snapshot_share

    # ------------------------------------------------------------------------------------------- rebuilding

    def _read(self, topic: str, partition: int, until: int, start: int) -> AsyncIterator[Record]:
        return (
            self._replay(topic, partition, until) if start == 0 else self._replay(topic, partition, until, start=start)
        )

    async def _start_from(self, topic: str, partition: int, until: int) -> PartitionState:
        """The state of the latest usable snapshot at or before `until`, else the initial state at offset 0."""
        fresh = PartitionState(self.core.initial_state())
        if self.snapshots is None:
            return fresh
        try:
            snapshot = await self.snapshots.load(topic, partition, until)
            if snapshot is None:
                return fresh
            if snapshot.core_version != self.version:
                raise SnapshotUnusableError(f"it was made by {snapshot.core_version}, this worker runs {self.version}")
            if snapshot.offset > 0:
                before = [r async for r in self._read(topic, partition, snapshot.offset, snapshot.offset - 1)]
                if not before or digest(before[0].value) != snapshot.last_record_sha256:
                    raise SnapshotUnusableError(
                        f"inbox record {snapshot.offset - 1} is not the one it was taken after: another log"
                    )
        except SnapshotUnusableError as error:
            self.figures.snapshots_unusable += 1
            log.warning(
                "%s: the snapshot of %s[%s] cannot be used (%s); folding the partition from its start instead",
                self.core.NAME,
                topic,
                partition,
                error,
            )
            return fresh
        self.figures.snapshots_used += 1
        return PartitionState(snapshot.state, snapshot.offset, snapshot.journal_position)

    def _recorded(self, topic: str, partition: int, position: int, offset: int) -> AsyncIterator[Recorded]:
        if self.journal is None:
            return _nothing()
        return decisions(self.journal.read(topic, partition, position), offset)

    async def _rebuild(self, topic: str, partition: int, until: int) -> PartitionState:
        started = time.monotonic()
        self.rebuilding.add((topic, partition))
        try:
            rebuilt = await self._start_from(topic, partition, until)
            first, folded, redecided = rebuilt.next_offset, 0, 0
            journal_end = await self.journal.end(topic, partition) if self.journal is not None else 0
            recorded = self._recorded(topic, partition, rebuilt.journal_position, first)
            ahead = await anext(recorded, None)
            async for record in self._read(topic, partition, until, first):
                while ahead is not None and ahead.entry.offset < record.offset:
                    ahead = await anext(recorded, None)
                if ahead is not None and ahead.entry.offset == record.offset:
                    if ahead.entry.record_sha256 != digest(record.value):
                        raise RuntimeError(
                            f"the journal of {topic}[{partition}] records another record at offset {record.offset}: "
                            "the inbox and its journal are of different logs; delete the journal topic only if "
                            "the inbox was recreated too"
                        )
                    self._refold(rebuilt, record, ahead.entry)
                    folded += 1
                    ahead = await anext(recorded, None)
                else:
                    self._apply(rebuilt, record)  # history from before the journal: decided again, nothing sent
                    redecided += 1
                if (folded + redecided) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            later: dict[int, Recorded] = {}
            while ahead is not None:
                if ahead.entry.offset >= until:
                    later.setdefault(ahead.entry.offset, ahead)
                ahead = await anext(recorded, None)
        finally:
            self.rebuilding.discard((topic, partition))
        rebuilt.next_offset, rebuilt.recorded, rebuilt.journal_position = until, later, journal_end
        self.rebuilds += 1
        self.figures.folded += folded
        self.figures.redecided += redecided
        self.on_rebuilt(time.monotonic() - started)
        log.info(
            "rebuilt %s state of %s[%s] up to offset %s from %s: %s records folded from the journal, %s with no "
            "journal entry decided again, %s decisions recorded ahead",
            self.core.NAME,
            topic,
            partition,
            until,
            f"the snapshot at {first}" if first else "the start",
            folded,
            redecided,
            len(later),
        )
        return rebuilt

    async def rebuilt_state(self, topic: str, partition: int, until: int) -> Any:
        """The state a rebuild up to `until` reaches (checks and tools; the worker's own state is not touched)."""
        return (await self._rebuild(topic, partition, until)).state

    def forget(self, topic: str, partition: int) -> bool:
        """Drop the state of a partition this worker no longer owns (it is rebuilt if the partition comes back)."""
        return self._partitions.pop((topic, partition), None) is not None

    def state_of(self, topic: str, partition: int) -> Any:
        current = self._partitions.get((topic, partition))
        return None if current is None else current.state


async def _nothing() -> AsyncIterator[Recorded]:
    return
    yield  # pragma: no cover - makes this an async generator


def _error(error: ContractError) -> dict[str, str]:
    return {"error_code": error.code, "error_detail": error.detail[:2000]}


class _Running:
    """The lifecycle of a core used outside a service (tests, tools): never asked to stop."""

    should_stop = False

    async def sleep(self, n: float) -> None:
        await asyncio.sleep(n)
