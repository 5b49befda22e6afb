"""The faust wiring every service shares: an inbox agent that runs the core, and router agents that copy
inputs from other topics into the inbox under its key. Agents decode at the edge, call the core and send
its events; business rules live in the cores only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust

from schemas.base import Message
from schemas.codec import ContractError, encode
from schemas.envelope import Envelope
from schemas.routing import copy_partitions, explicit_partition, home_topic, record_key
from schemas.topics import BY_NAME, Topic, journal_topic
from services.common.batches import take_events
from services.common.dead_letters import DeadLetter, DeadLetters, RecordRefusedError, dead_letter_topic
from services.common.inbox_replay import PartitionReads
from services.common.journal import KafkaJournal
from services.common.logs import log_decision
from services.common.loop_watch import LoopWatch, blocked_histogram
from services.common.metrics import CONTENT_TYPE, Lag, Readiness, WorkerFigures, WorkerMetrics, render
from services.common.partitions import REBUILD, PartitionedCore
from services.common.publishing import Outgoing, Publisher
from services.common.records import Record, decode_record, from_faust
from services.common.retry import Backoff, StopRequestedError
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.snapshots import FileSnapshots
from services.common.stall_watch import OffsetProbe, StallWatch

log = logging.getLogger(__name__)

STOP_WAITS_FOR_SNAPSHOTS_S = 5.0
"""A clean stop waits this long for snapshot writers (one usually takes a second): a container's stop grace is 10 s."""
EXIT_UNFINISHED = 75  # EX_TEMPFAIL: stopped during a record; it is processed again after a restart
EXIT_FAILED = 70  # EX_SOFTWARE: a failure that waiting does not cure
STALL_CHECK_S = 5.0
DECIDED_BY = "h200.decided-by"
"""Header of every event a core decided: the version of that core (name@digest of its code)."""


def halt(code: int) -> None:
    """End the process now: no shutdown code runs, so nothing more is committed."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(code)


@dataclass(frozen=True)
class Route:
    """Copy the records of `source` whose message type is in `types` into the service's inbox."""

    source: str
    types: tuple[type[Message], ...]


class ServiceWorker:
    def __init__(
        self,
        app: faust.App,
        service: str,
        core: Any,
        inbox: str,
        routes: tuple[Route, ...],
        cluster: ClusterSettings,
        worker: WorkerSettings,
    ) -> None:
        self.app = app
        self.service = service
        self.inbox: Topic = BY_NAME[inbox]
        self.routes = routes
        self._max_bytes = cluster.max_message_bytes
        backoff = Backoff(worker.send_retry_s, worker.send_retry_max_s, worker.send_timeout_s)
        self.publisher = Publisher(app, backoff)
        self.batch_max, self.batch_within_s = worker.batch_max, worker.batch_within_s
        # One set of started consumers for every rebuild read (a consumer's start and login cost more than folding
        # hundreds of records).
        self.reads = PartitionReads(cluster.bootstrap_servers)
        replay = self.reads.replay
        journal = KafkaJournal(journal_topic(service), self.publisher.enqueue, replay, self.reads.end)
        self.core = PartitionedCore(
            core,
            replay,
            self._max_bytes,
            app,
            # Not the send back-off: its attempts time out at send_timeout_s (60 s), and a rebuild of a partition
            # of 166,000 records folds for longer than that, so it was abandoned and begun again, forever (the
            # recovery bench at 1M records, when its snapshots were of another core version).
            REBUILD,
            journal=journal,
            # Shared by the workers of one machine (not per process): a restarted worker finds its snapshots.
            snapshots=FileSnapshots(worker.datadir / service / "snapshots", fork=worker.snapshot_fork),
            snapshot_every=worker.snapshot_every,
            snapshot_share=worker.snapshot_share,
        )
        # A dead letter must fit both what our producer sends and what the cluster takes.
        letter_bytes = min(cluster.max_message_bytes, app.conf.producer_max_request_size)
        self.dead_letters = DeadLetters(service, self._send_letter, letter_bytes)
        self.decided = 0
        self.assigned: set[tuple[str, int]] = set()
        self.metrics = WorkerMetrics(service, self.figures)
        self.core.on_rebuilt = self.metrics.rebuilt
        self.core.on_snapshot = self.metrics.snapshotted
        self.loop_watch = LoopWatch(
            service,
            blocked_histogram(self.metrics.registry, service),
            warn_after_s=worker.loop_warn_after_s,
            doing=lambda: self.core.last_snapshot,
        )
        app.task(self._watch_loop)
        app.agent(self.publisher.topic(inbox), name=f"{service}.decide", concurrency=1)(self._decide)
        for route in routes:
            app.agent(self.publisher.topic(route.source), name=f"{service}.route.{route.source}", concurrency=1)(
                self._router(route)
            )
        app.page("/stats/")(self.page(self.stats))
        app.page("/metrics")(self.metrics_page())
        app.page("/health")(self.page(self.health))
        app.page("/ready")(self.readiness_page())
        app.on_partitions_assigned.connect(self._on_assigned)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_before_shutdown.connect(self._on_shutdown)
        self.stall_watch = StallWatch(worker.stall_after_s)
        self.offset_probe = OffsetProbe(cluster.bootstrap_servers, app.conf.id)
        if worker.stall_after_s > 0:
            app.timer(interval=STALL_CHECK_S, name=f"{service}.stall_watch")(self._watch_for_stall)

    async def _watch_for_stall(self) -> None:
        """Every STALL_CHECK_S: exit (to be restarted) if partitions held have had records waiting, and nothing
        committed, for stall_after_s (services.common.stall_watch says why and what excuses it)."""
        retried = self.publisher.retried
        if not self.assigned or self.core.rebuilding:
            self.stall_watch.reset()
            return
        try:
            committed, ends = await self.offset_probe.offsets(self.assigned)
        except Exception as error:  # no verdict without an observation; the outage is logged where it hurts
            log.debug("stall watch: no observation (%s)", error)
            self.stall_watch.reset()
            await self.offset_probe.close()
            return
        if self.publisher.retried != retried or self.core.rebuilding:
            self.stall_watch.reset()  # waiting out a failed send (or a rebuild began): busy, not stalled
            return
        now = asyncio.get_running_loop().time()
        for stall in self.stall_watch.observe(now, committed, ends):
            try:
                readable = await self.offset_probe.has_record(stall)
            except Exception:
                self.stall_watch.reset()
                return
            if readable:
                log.critical(
                    "%s has stopped reading: %s. Exiting so that a restart reads them (faust-streaming #523); "
                    "nothing is lost: offsets are committed only past acknowledged work",
                    self.service,
                    stall,
                )
                halt(EXIT_UNFINISHED)

    async def _watch_loop(self) -> None:
        await self.loop_watch.run()

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", ())
        self.assigned = {(tp.topic, tp.partition) for tp in assigned}

    async def _on_shutdown(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """A clean stop lets the snapshots being written finish, and closes the consumers rebuilds read with rather
        than leaving their connections to time out."""
        unfinished = await self.core.stored(STOP_WAITS_FOR_SNAPSHOTS_S)
        if unfinished:
            # The writers die with this process: the snapshots before theirs serve the next rebuild.
            log.warning(
                "%s: stopping with %s snapshot(s) still being written after %s s; they are abandoned",
                self.service,
                unfinished,
                STOP_WAITS_FOR_SNAPSHOTS_S,
            )
        await self.reads.close()

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """The states of inbox partitions another worker now owns are dropped: memory follows the assignment."""
        revoked = args[0] if args else kwargs.get("revoked", ())
        self.assigned -= {(tp.topic, tp.partition) for tp in revoked}
        mine = [tp.partition for tp in revoked if tp.topic == self.inbox.name]
        dropped = [partition for partition in mine if self.core.forget(self.inbox.name, partition)]
        if dropped:
            log.info("%s dropped the state of %s partitions %s (revoked)", self.service, self.inbox.name, dropped)

    async def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> object:
        """Every send of the worker goes through here (services.common.publishing says what a failure means)."""
        return await self.publisher.send(topic, key, value, headers, partition)

    async def _send_all(self, outgoing: list[Outgoing]) -> list[object | RecordRefusedError]:
        """Every batch of the worker's events and copies goes through here (Publisher.send_all)."""
        return await self.publisher.send_all(outgoing)

    async def _send_letter(self, letter: DeadLetter) -> object:
        return await self._send(letter.topic, letter.key, letter.value, letter.headers)

    async def _reject(self, record: Record, error: ContractError) -> None:
        await self.dead_letters.reject(record, error, datetime.now(UTC))

    async def _decide(self, stream: Any) -> None:
        # Records come in batches of what has arrived (up to batch_max, waiting at most batch_within_s for more):
        # one journal write and one round of sends per batch. take_events (services.common.batches, not faust's, which
        # wakes every batch_within_s even with nothing to read) acknowledges a batch's records only once
        # this body is done with them, so the offsets committed are past records whose outputs are acknowledged.
        async for events in take_events(stream, self.batch_max, self.batch_within_s):
            await self.decide_all([from_faust(event.message) for event in events])

    async def decide(self, record: Record) -> None:
        await self.decide_all([record])

    async def decide_all(self, records: list[Record]) -> None:
        """Inbox records, in order: decided and their events sent, or dead-lettered; counted either way."""
        await self._finish(records, self._decide_on(records))
        self.decided += len(records)

    async def _decide_on(self, records: list[Record]) -> None:
        outcomes = await self.core.handle_all(records)
        outgoing: list[Outgoing] = []
        behind: list[tuple[Record, str]] = []
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.rejected is not None:
                await self._reject(record, outcome.rejected)
            decided_by = [(DECIDED_BY, (outcome.decided_by or self.core.version).encode())]
            for envelope in outcome.outputs:
                key, value = envelope.key.encode(), encode(envelope)
                for topic, partition in self.destinations(record, envelope):
                    outgoing.append((topic, key, value, decided_by, partition))
                    behind.append((record, envelope.type))
        # Every event of the batch in flight at once, in the order decided; all acknowledged before the batch's
        # records may be committed.
        sent = await self._send_all(outgoing) if outgoing else []
        for (record, kind), result in zip(behind, sent, strict=True):
            if isinstance(result, RecordRefusedError):
                # Our own event is too large for the cluster: a defect to fix, reported with the input behind it.
                await self._reject(record, ContractError("processing_failed", f"{kind}: {result}"))
        for record, outcome in zip(records, outcomes, strict=True):
            log_decision(self.service, (record.topic, record.partition, record.offset), outcome.outputs)

    def destinations(self, record: Record, envelope: Envelope[Message]) -> list[tuple[str, int | None]]:
        """Where an event decided on `record` is sent: its home topic (and the partition it names, if any)."""
        return [(home_topic(envelope.payload).name, explicit_partition(envelope.payload))]

    def _router(self, route: Route) -> Callable[[Any], Coroutine[Any, Any, None]]:
        async def forward(stream: Any) -> None:
            async for events in take_events(stream, self.batch_max, self.batch_within_s):
                records = [from_faust(event.message) for event in events]
                await self._finish(records, self._route(route, records))

        return forward

    async def _route(self, route: Route, records: list[Record]) -> None:
        outgoing: list[Outgoing] = []
        behind: list[Record] = []
        for record in records:
            try:
                envelope = decode_record(record, self._max_bytes)
            except ContractError as error:
                await self._reject(record, error)
                continue
            if isinstance(envelope.payload, route.types):
                copies = await self._forward(record, envelope)
                outgoing.extend(copies)
                behind.extend([record] * len(copies))
        sent = await self._send_all(outgoing) if outgoing else []
        refused_records: dict[int, tuple[Record, RecordRefusedError]] = {}
        for record, result in zip(behind, sent, strict=True):
            if isinstance(result, RecordRefusedError):
                refused_records.setdefault(record.offset, (record, result))
        for record, refused in refused_records.values():
            await self._reject(record, ContractError("oversized", f"valid, but its copy was refused: {refused}"))

    async def _forward(self, record: Record, envelope: Envelope[Message]) -> list[Outgoing]:
        """The copies of a routed record to send: its original bytes, unchanged, under the inbox's key (to every
        partition for broadcast rules, to its own lane's for a lane-only marker). A subclass may refuse the record
        instead (and return none)."""
        payload = envelope.payload
        targets = copy_partitions(payload, self.inbox)
        if targets is not None:
            return [(self.inbox.name, record.key, record.value, None, partition) for partition in targets]
        return [(self.inbox.name, record_key(payload, self.inbox).encode(), record.value, None, None)]

    async def _finish(self, records: list[Record], work: Awaitable[None]) -> None:
        """Do the work on a batch of records, or end the process without committing any of them.

        An exception out of an agent would make faust acknowledge the record and commit past it (faust #315),
        and a stop would wait for the record forever (faust's Consumer.wait_empty). Exiting at once leaves its
        offset uncommitted: the partition's next owner processes it again, and every reader skips repeats by id.
        """
        where = records[0].where if len(records) == 1 else f"{records[0].where} and {len(records) - 1} more records"
        try:
            await work
        except StopRequestedError as stop:
            log.warning("stopping with %s unfinished (%s): exiting without committing it", where, stop)
            halt(EXIT_UNFINISHED)
        except Exception:
            log.critical(
                "%s cannot go on at %s; exiting without committing it, so that nothing is skipped. "
                "Fix the cause logged here (permissions, topics, H200_BOOTSTRAP_SERVERS) and restart",
                self.service,
                where,
                exc_info=True,
            )
            halt(EXIT_FAILED)

    @staticmethod
    def page(figures: Callable[[], dict[str, Any]]) -> Any:
        """A faust view handler answering `figures()` as JSON. faust makes the handler the view's `get`, so it must
        be a plain function of (view, request): a bound method would get the request alone (the old 500)."""

        async def handler(view: Any, request: Any) -> Any:
            return view.json(figures())

        return handler

    def metrics_page(self) -> Any:
        """`/metrics`: the worker's registry in Prometheus' text format."""

        async def handler(view: Any, request: Any) -> Any:
            # aiohttp refuses a content_type argument with a charset in it; the header is taken as it is.
            return view.bytes(render(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE})

        return handler

    def readiness_page(self) -> Any:
        """`/ready`: 200 once partitions are assigned and none is being rebuilt, else 503; with the reason."""

        async def handler(view: Any, request: Any) -> Any:
            readiness = self.readiness()
            return view.json(readiness.body(), status=readiness.status)

        return handler

    def health(self) -> dict[str, Any]:
        """Answered from the event loop: an answer means the loop runs."""
        return {"service": self.service, "status": "running"}

    def readiness(self) -> Readiness:
        if not self.assigned:
            return Readiness(False, "no partitions assigned (starting, or in a rebalance)")
        if self.core.rebuilding:
            rebuilding = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(self.core.rebuilding))
            return Readiness(False, f"rebuilding the state of {rebuilding}")
        return Readiness(True, f"{len(self.assigned)} partitions assigned")

    def inbox_lag(self) -> Lag:
        """Per assigned inbox partition: its high watermark less the next offset read, as faust's consumer last
        saw them (no request is made). Partitions not fetched from yet are left out."""
        if not self.assigned:
            return {}
        consumer = self.app.consumer
        read: dict[Any, int | None] = getattr(consumer, "_read_offset", {})  # faust's own record of what it read
        lag: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            if tp.topic != self.inbox.name:
                continue
            highwater = consumer.highwater(tp)
            last_read = read.get(tp)
            if highwater is not None and last_read is not None:
                lag[(tp.topic, tp.partition)] = highwater - (last_read + 1)
        return lag

    def figures(self) -> WorkerFigures:
        try:
            lag = self.inbox_lag()
        except Exception:  # the consumer is starting or stopping: no lag to report at this scrape
            lag = {}
        return WorkerFigures(
            decided=self.decided,
            rebuilds=self.core.rebuilds,
            sends_retried=self.publisher.retried,
            dead_letters_unsent=self.dead_letters.unsent,
            dead_letters=dict(self.dead_letters.counts),
            rebuilding=len(self.core.rebuilding),
            lag=lag,
            recovery=vars(self.core.figures),
        )

    def stats(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "decided": self.decided,
            "rebuilds": self.core.rebuilds,
            "dead_letters": dict(self.dead_letters.counts),
            "dead_letters_unsent": self.dead_letters.unsent,
            "dead_letter_topic": dead_letter_topic(self.service),
        }
