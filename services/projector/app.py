"""The projector process: reads the event topics and keeps the Redis read models, resuming where it stopped.

Positions live in Redis with the data (not in a consumer group), so the read model and its position can
never disagree; records it cannot apply go to h200.dlq.projector and are counted (services.projector.letters).
The namespace written is the one the alias `<namespace>:current` names (services.projector.namespace), resolved
again before every batch: when a rebuild moves it, the projector goes on in the new namespace from that
namespace's own positions.

The projector keeps its read models whole by itself. Each namespace holds a generation marker written with its
positions (services.projector.store) and checked with every batch, even an empty one: when Redis loses the read
models (FLUSHALL, a restart without persistence, the namespace deleted), the batch is refused, and the projector
empties the namespace and projects it again from offset 0, logging that once and how long the rebuild took.
While Redis does not answer it waits, with capped back-off, logged once and then by how long the outage has
lasted, and resumes from the positions Redis holds: those are written with the data, so nothing is lost or
applied twice.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from types import FrameType

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.codec import ContractError
from schemas.topics import EVENT_TOPICS
from services.common.dead_letters import dead_letter_topic
from services.common.kafka_auth import kafka_python_options
from services.common.metrics import serve_pages
from services.common.outage_log import install_outage_log_filter_on_handlers
from services.common.records import Record, decode_record
from services.common.retry import Backoff, FailureLog
from services.common.settings import ClusterSettings
from services.projector.letters import ProjectorLetters, source_of
from services.projector.merge import Positions, TimeOrderedReader
from services.projector.metrics import LAG_EVERY_S, ProjectorFigures, ProjectorMetrics
from services.projector.namespace import current_namespace, delete_namespace
from services.projector.projection import project
from services.projector.store import NamespaceMovedError, Pending, ReadModelLostError, ReadModelStore

GROUP = "h200-projector"
"""The consumer group the projector reports its positions to (Kafka's tools then show its lag)."""
log = logging.getLogger("h200.projector")

DEAD_LETTER_TOPICS = tuple(dead_letter_topic(s) for s in ("intake", "approval", "allocation", "fulfilment"))
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError)
"""Failures that pass (Redis restarting, loading, unreachable for a while): waited out."""
REDIS_BACKOFF = Backoff(first_s=0.2, max_s=5.0)


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_PROJECTOR_", extra="ignore", frozen=True)

    namespace: str = Field("h200", description="the alias base: the namespace is what `<namespace>:current` names")
    batch_size: int = Field(500, gt=0)
    poll_ms: int = Field(500, gt=0)
    redis_timeout_s: float = Field(10.0, gt=0, description="a Redis that accepts but does not answer is away")
    metrics_port: int = Field(0, ge=0, le=65535, description="/metrics, /health, /ready on 127.0.0.1; 0: none")


def to_pending(record: Record, ns: str, max_bytes: int) -> tuple[Pending, ContractError | None]:
    """What applying a record to namespace `ns` writes; a record it cannot apply is counted, with its error.

    Nothing a record holds makes the projector stop: it would stop the read models for every buyer."""
    if record.topic.startswith("h200.dlq."):
        field, stands_for = source_of(record)
        ops = [["HINCRBY", f"{ns}:dead_letters", field, "1"]]
        return Pending(record.topic, record.partition, record.offset, stands_for, ops), None
    try:
        envelope = decode_record(record, max_bytes)
        ops = project(ns, envelope)
    except ContractError as error:
        return _refused(record, ns, error), error
    except Exception as exc:
        # A defect in a projection, not in the log: counted and dead-lettered, as the services do.
        log.exception("projecting %s failed", record.where)
        failed = ContractError("processing_failed", f"{type(exc).__name__}: {exc}")
        return _refused(record, ns, failed), failed
    return Pending(record.topic, record.partition, record.offset, str(envelope.id), ops), None


def _refused(record: Record, ns: str, error: ContractError) -> Pending:
    ops = [["HINCRBY", f"{ns}:dead_letters", f"projector:{error.code}", "1"]]
    return Pending(record.topic, record.partition, record.offset, "", ops)


def projected_partitions(consumer: KafkaConsumer) -> list[TopicPartition]:
    return [
        TopicPartition(topic, p)
        for topic in (*EVENT_TOPICS, *DEAD_LETTER_TOPICS)
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]


@dataclass
class Rebuilding:
    """A namespace projected again from offset 0 after its read models were lost."""

    namespace: str
    until: Positions
    """The log ends when the loss was found: the rebuild is done once they are applied."""
    started: float
    applied: int = 0


class Projector:
    def __init__(self, cluster: ClusterSettings, settings: ProjectorSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.client = redis.Redis.from_url(
            cluster.redis_url,
            decode_responses=True,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        # The namespace the alias names is resolved when projecting starts (_assign) and before every batch.
        self.store = ReadModelStore(self.client, settings.namespace, settings.namespace)
        self.consumer = KafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            **kafka_python_options(cluster),
        )
        self.reader: TimeOrderedReader | None = None
        # Never assigned any partition: it only commits copies of the Redis positions (_report_positions).
        self.reporter: KafkaConsumer | None = KafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=GROUP,
            enable_auto_commit=False,
            **kafka_python_options(cluster),
        )
        self.producer = KafkaProducer(
            bootstrap_servers=cluster.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            **kafka_python_options(cluster),
        )
        # A dead letter must fit both what the producer sends and what the cluster takes.
        letter_bytes = min(cluster.max_message_bytes, self.producer.config["max_request_size"])
        self.letters = ProjectorLetters(self.producer, letter_bytes, lambda: self.running)
        self.running = True
        self.applied = 0
        self.resync = True
        """Positions must be read from Redis again (at the start, after Redis was away) before the next batch."""
        self.lettered: Positions = {}
        """Per partition, the offset below which every record's dead letter (if it needed one) was sent: a
        record read again (after an outage, in a rebuild) is not dead-lettered twice."""
        self.rebuilding: Rebuilding | None = None
        self.outage = FailureLog(f"writing the read models to Redis at {_where(cluster.redis_url)}", log)
        self.rebuilds = 0
        self.lag: Positions = {}
        self._lag_at = 0.0
        self._beat = time.monotonic()
        self.metrics = ProjectorMetrics(self.figures)

    def _assign(self) -> TimeOrderedReader:
        self.reader = TimeOrderedReader(self.consumer, projected_partitions(self.consumer))
        return self.reader

    def _follow_alias(self) -> None:
        """Between batches: if a rebuild moved the alias, go on in the new namespace from its own positions."""
        namespace = current_namespace(self.client, self.settings.namespace)
        if namespace == self.store.ns and not self.resync:
            return
        if namespace != self.store.ns:
            if namespace == self.settings.namespace and self.store.generation is not None:
                # A rebuild moves the alias, never removes it: Redis lost it with the read models.
                self._rebuild_lost(f"the alias {self.settings.namespace}:current naming {self.store.ns} is gone")
                return
            log.info("the read models are in namespace %s (was %s): following", namespace, self.store.ns)
            self.store = ReadModelStore(self.client, namespace, self.settings.namespace)
        # The same namespace after an outage keeps its store, and so its generation: a Redis that came back
        # empty is then found out at the next batch. The generation is adopted before the positions are read,
        # so a loss between the two is found out as well.
        self.store.adopt_generation()
        positions = self.store.positions()
        for where, offset in positions.items():  # processed, so dead-lettered where needed
            self.lettered[where] = max(self.lettered.get(where, 0), offset)
        if self.reader is not None:
            self.reader.seek(positions)
        self.resync = False

    def _rebuild_lost(self, why: str) -> None:
        """Empty the namespace (nothing half-lost may be counted twice) and project it again from offset 0."""
        namespace, reader = current_namespace(self.client, self.settings.namespace), self.reader
        assert reader is not None
        log.warning(
            "the read models of namespace %s were lost (%s): Redis was flushed or reset. "
            "Rebuilding them from the log, from offset 0",
            namespace,
            why,
        )
        delete_namespace(self.client, namespace, self.settings.namespace)
        self.store = ReadModelStore(self.client, namespace, self.settings.namespace)
        self.store.adopt_generation()
        reader.seek({})
        self.rebuilding = Rebuilding(namespace, reader.end_offsets(), time.monotonic())
        self.resync = False

    def _pending(self, record: Record) -> Pending:
        pending, error = to_pending(record, self.store.ns, self.cluster.max_message_bytes)
        where = (record.topic, record.partition)
        if error is not None and record.offset >= self.lettered.get(where, 0):
            self.letters.add(record, error)
        return pending

    def _lettered(self, records: list[Record]) -> None:
        for record in records:
            where = (record.topic, record.partition)
            self.lettered[where] = max(self.lettered.get(where, 0), record.offset + 1)

    def run_once(self) -> int:
        reader = self.reader or self._assign()
        self._follow_alias()
        records = reader.read(self.settings.batch_size, self.settings.poll_ms)
        batch = [self._pending(record) for record in records]
        # Dead letters must be durable before the read model says they were counted. Stopped before they were:
        # the batch is not applied, and read again at the next start.
        if not self.letters.flush():
            return 0
        self._lettered(records)
        try:
            applied = self.store.apply(batch)
        except NamespaceMovedError as moved:
            # The rest of the batch was refused; the next batch reads it again in the new namespace.
            applied = moved.applied
        except ReadModelLostError as lost:
            self.applied += lost.applied
            self._rebuild_lost(f"its generation marker {self.store.generation} is gone")
            return len(batch)
        self.applied += applied
        self._rebuilt(reader, applied)
        return len(batch)

    def _rebuilt(self, reader: TimeOrderedReader, applied: int) -> None:
        if self.rebuilding is None:
            return
        self.rebuilding.applied += applied
        if reader.reached(self.rebuilding.until):
            done, self.rebuilding = self.rebuilding, None
            self.rebuilds += 1
            self.metrics.rebuilt(time.monotonic() - done.started)
            log.warning(
                "rebuilt the read models of namespace %s from the log: %s records applied in %.1f s",
                done.namespace,
                done.applied,
                time.monotonic() - done.started,
            )

    def run(self) -> None:
        server = None
        if self.settings.metrics_port:
            server = serve_pages(self.settings.metrics_port, self.metrics.pages(), "projector")
            log.info("metrics, health and readiness on http://127.0.0.1:%s/", self.settings.metrics_port)
        self._assign()
        log.info("projecting into namespace %s from %s", self.settings.namespace, self.cluster.bootstrap_servers)
        while self.running:
            self._beat = time.monotonic()
            try:
                self.run_once()
                self._measure_lag()
            except REDIS_AWAY as error:
                self._wait_out(error)
            else:
                self.outage.succeeded()
        if server is not None:
            server.shutdown()
            server.server_close()
        self.consumer.close()
        if self.reporter is not None:
            self.reporter.close()
        self.producer.close()

    def _measure_lag(self) -> None:
        """Every LAG_EVERY_S: per partition, the log end less the position stored with the read models."""
        if self.reader is None or time.monotonic() - self._lag_at < LAG_EVERY_S:
            return
        try:
            ends = self.reader.end_offsets()
        except KafkaError as error:  # a broker away: the last lag measured stands until the next try
            log.debug("could not read the log ends for the lag: %s", error)
            return
        positions = self.store.positions()
        self.lag = {where: end - positions.get(where, 0) for where, end in ends.items()}
        self._lag_at = time.monotonic()
        self._report_positions({where: positions.get(where, 0) for where in ends})

    def _report_positions(self, positions: Positions) -> None:
        """Copy the positions held in Redis to the consumer group h200-projector, so Kafka's own tools
        (kafka-consumer-groups.sh --describe) show the projector's lag like any group's. Only a report: the
        projector never reads its positions back from the group."""
        if self.reporter is None:
            return
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "a copy of the position held in Redis", -1)
            for (topic, partition), offset in positions.items()
        }
        try:
            self.reporter.commit(offsets)
        except Exception as error:
            log.debug("could not report the positions to the group %s: %s", GROUP, error)

    def figures(self) -> ProjectorFigures:
        """Read by the HTTP thread: only values the loop has already set, no client is used."""
        return ProjectorFigures(
            applied=self.applied,
            rebuilds=self.rebuilds,
            assigned=self.reader is not None,
            rebuilding=self.rebuilding is not None,
            redis_away=self.outage.failures > 0,
            loop_age_s=time.monotonic() - self._beat,
            dead_letters=dict(self.letters.counts),
            lag=self.lag,
        )

    def _wait_out(self, error: Exception) -> None:
        """Redis is away: wait (logged once, then by how long), then resume from the positions Redis holds."""
        delay = REDIS_BACKOFF.delay(self.outage.failures + 1)
        self.outage.failed(error, delay)
        self.resync = True  # the batch in hand may be applied in part: read again from the recorded positions
        deadline = time.monotonic() + delay
        while self.running and time.monotonic() < deadline:
            self._beat = time.monotonic()
            time.sleep(min(0.1, delay))  # the loop is synchronous: a stop request is seen within 0.1 s

    def stop(self, *_: object) -> None:
        self.running = False


def _where(url: str) -> str:
    """host:port/db of a Redis URL, without any password it may hold."""
    return url.rpartition("@")[2].removeprefix("redis://")


def create_app(cluster: ClusterSettings | None = None, settings: ProjectorSettings | None = None) -> Projector:
    return Projector(cluster or ClusterSettings(), settings or ProjectorSettings())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    install_outage_log_filter_on_handlers()  # a broker outage: one line, then how long it lasts
    projector = create_app()

    def _stop(signum: int, frame: FrameType | None) -> None:
        projector.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    projector.run()
