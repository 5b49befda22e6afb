"""The projector process: reads the event topics and keeps the Redis read models, resuming where it stopped.

Positions live in Redis with the data (not in a consumer group), so the read model and its position can
never disagree; records it cannot apply go to h200.dlq.projector and are counted (services.projector.letters).
The namespace written is the one the alias `<namespace>:current` names (services.projector.namespace), resolved
again before every batch: when a rebuild moves it, the projector goes on in the new namespace from that
namespace's own positions.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.codec import ContractError
from schemas.topics import EVENT_TOPICS
from services.common.dead_letters import dead_letter_topic
from services.common.records import Record, decode_record
from services.common.settings import ClusterSettings
from services.projector.letters import ProjectorLetters, source_of
from services.projector.merge import TimeOrderedReader
from services.projector.namespace import current_namespace
from services.projector.projection import project
from services.projector.store import NamespaceMovedError, Pending, ReadModelStore

log = logging.getLogger("h200.projector")

DEAD_LETTER_TOPICS = tuple(dead_letter_topic(s) for s in ("intake", "approval", "allocation", "fulfilment"))


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_PROJECTOR_", extra="ignore", frozen=True)

    namespace: str = Field("h200", description="the alias base: the namespace is what `<namespace>:current` names")
    batch_size: int = Field(500, gt=0)
    poll_ms: int = Field(500, gt=0)


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


class Projector:
    def __init__(self, cluster: ClusterSettings, settings: ProjectorSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
        # The namespace the alias names is resolved when projecting starts (_assign) and before every batch.
        self.store = ReadModelStore(self.client, settings.namespace, settings.namespace)
        self.consumer = KafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self.reader: TimeOrderedReader | None = None
        self.producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", enable_idempotence=True)
        # A dead letter must fit both what the producer sends and what the cluster takes.
        letter_bytes = min(cluster.max_message_bytes, self.producer.config["max_request_size"])
        self.letters = ProjectorLetters(self.producer, letter_bytes, lambda: self.running)
        self.running = True
        self.applied = 0

    def _assign(self) -> TimeOrderedReader:
        self.reader = TimeOrderedReader(self.consumer, projected_partitions(self.consumer))
        self._follow_alias(starting=True)
        return self.reader

    def _follow_alias(self, starting: bool = False) -> None:
        """Between batches: if a rebuild moved the alias, go on in the new namespace from its own positions."""
        namespace = current_namespace(self.client, self.settings.namespace)
        if namespace == self.store.ns and not starting:
            return
        if namespace != self.store.ns:
            log.info("the read models are in namespace %s (was %s): following", namespace, self.store.ns)
        self.store = ReadModelStore(self.client, namespace, self.settings.namespace)
        if self.reader is not None:
            self.reader.seek(self.store.positions())

    def _pending(self, record: Record) -> Pending:
        pending, error = to_pending(record, self.store.ns, self.cluster.max_message_bytes)
        if error is not None:
            self.letters.add(record, error)
        return pending

    def run_once(self) -> int:
        reader = self.reader or self._assign()
        self._follow_alias()
        records = reader.read(self.settings.batch_size, self.settings.poll_ms)
        batch = [self._pending(record) for record in records]
        # Dead letters must be durable before the read model says they were counted. Stopped before they were:
        # the batch is not applied, and read again at the next start.
        if not self.letters.flush():
            return 0
        try:
            self.applied += self.store.apply(batch)
        except NamespaceMovedError as moved:
            # The rest of the batch was refused; the next batch reads it again in the new namespace.
            self.applied += moved.applied
        return len(batch)

    def run(self) -> None:
        self._assign()
        log.info("projecting into namespace %s from %s", self.store.ns, self.cluster.bootstrap_servers)
        while self.running:
            self.run_once()
        self.consumer.close()
        self.producer.close()

    def stop(self, *_: object) -> None:
        self.running = False


def create_app(cluster: ClusterSettings | None = None, settings: ProjectorSettings | None = None) -> Projector:
    return Projector(cluster or ClusterSettings(), settings or ProjectorSettings())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    projector = create_app()

    def _stop(signum: int, frame: FrameType | None) -> None:
        projector.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    projector.run()
