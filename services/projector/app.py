"""The projector process: reads the event topics and keeps the Redis read models, resuming where it stopped.

Positions live in Redis with the data (not in a consumer group), so the read model and its position can
never disagree; undecodable records go to h200.dlq.projector and are counted.
"""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime
from types import FrameType

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.codec import ContractError
from services.common.dead_letters import dead_letter_headers, dead_letter_topic
from services.common.records import Record, decode_record
from services.common.settings import ClusterSettings
from services.projector.projection import project
from services.projector.store import Pending, ReadModelStore

log = logging.getLogger("h200.projector")

EVENT_TOPICS = ("h200.orders", "h200.policy", "h200.supply", "h200.approvals", "h200.allocations", "h200.fulfilment")
DEAD_LETTER_TOPICS = tuple(dead_letter_topic(s) for s in ("intake", "approval", "allocation", "fulfilment"))


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="H200_PROJECTOR_", extra="ignore", frozen=True)

    namespace: str = "h200"
    batch_size: int = Field(500, gt=0)
    poll_ms: int = Field(500, gt=0)


class Projector:
    def __init__(self, cluster: ClusterSettings, settings: ProjectorSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.store = ReadModelStore(redis.Redis.from_url(cluster.redis_url, decode_responses=True), settings.namespace)
        self.consumer = KafkaConsumer(
            bootstrap_servers=cluster.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self.producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, acks="all", enable_idempotence=True)
        self.running = True
        self.applied = 0

    def _assign(self) -> None:
        partitions = [
            TopicPartition(topic, p)
            for topic in (*EVENT_TOPICS, *DEAD_LETTER_TOPICS)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        positions = self.store.positions()
        for tp in partitions:
            self.consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))

    def _pending(self, record: Record) -> Pending | None:
        if record.topic.startswith("h200.dlq."):
            found = dict(record.headers)
            field = f"{found.get('dlq.service', b'?').decode()}:{found.get('dlq.error_code', b'?').decode()}"
            ops = [["HINCRBY", f"{self.store.ns}:dead_letters", field, "1"]]
            return Pending(record.topic, record.partition, record.offset, "", ops)
        try:
            envelope = decode_record(record, self.cluster.max_message_bytes)
        except ContractError as error:
            headers = dead_letter_headers("projector", record, error, datetime.now(UTC))
            self.producer.send(dead_letter_topic("projector"), key=record.key, value=record.value, headers=headers)
            log.warning("dead-lettered %s: %s", record.where, error)
            ops = [["HINCRBY", f"{self.store.ns}:dead_letters", f"projector:{error.code}", "1"]]
            return Pending(record.topic, record.partition, record.offset, "", ops)
        return Pending(
            record.topic, record.partition, record.offset, str(envelope.id), project(self.store.ns, envelope)
        )

    def run_once(self) -> int:
        polled = self.consumer.poll(timeout_ms=self.settings.poll_ms, max_records=self.settings.batch_size)
        batch = []
        for tp, messages in polled.items():
            for m in messages:
                record = Record(tp.topic, tp.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                pending = self._pending(record)
                if pending:
                    batch.append(pending)
        # Dead letters must be durable before the read model says they were counted.
        self.producer.flush()
        self.applied += self.store.apply(batch)
        return len(batch)

    def run(self) -> None:
        self._assign()
        log.info("projecting into namespace %s from %s", self.settings.namespace, self.cluster.bootstrap_servers)
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
