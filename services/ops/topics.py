"""Creates the topic catalogue on a cluster, idempotently, and reports what differs from it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

from schemas.topics import MANAGED, Topic
from services.common.settings import ClusterSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replication:
    """How many brokers hold each partition, and how many must have a record before it is acknowledged."""

    factor: int = 1
    min_insync: int = 1

    @classmethod
    def from_settings(cls, cluster: ClusterSettings) -> Replication:
        return cls(cluster.replication_factor, cluster.min_insync_replicas)

    def topic_config(self, topic: Topic) -> dict[str, str]:
        return {**topic.config, "min.insync.replicas": str(self.min_insync)}


@dataclass
class TopicsReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    partitions: int
    replicas: frozenset[int]
    """The replica counts of its partitions (one value when they all agree)."""


def _layouts(admin: KafkaAdminClient, names: list[str]) -> dict[str, Layout]:
    return {
        description["name"]: Layout(
            len(description["partitions"]),
            frozenset(len(partition["replica_nodes"]) for partition in description["partitions"]),
        )
        for description in admin.describe_topics(names)
        if not description.get("error_code")
    }


def _configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found = admin.describe_configs(resources, config_filter="all")
    return {
        name: {key: str(entry["value"]) for key, entry in configs.items()}
        for name, configs in found.get("topic", {}).items()
    }


def ensure_topics(
    admin: KafkaAdminClient, catalogue: tuple[Topic, ...] = MANAGED, replication: Replication | None = None
) -> TopicsReport:
    """Create missing topics, restore drifted retention and min ISR settings, and report partition and
    replication mismatches. Without `replication`, H200_REPLICATION_FACTOR and H200_MIN_INSYNC_REPLICAS say it."""
    replication = replication or Replication.from_settings(ClusterSettings())
    report = TopicsReport()
    uncreatable: set[str] = set()
    present = set(admin.list_topics())
    for topic in catalogue:
        if topic.name in present:
            report.existing.append(topic.name)
            continue
        try:
            admin.create_topics(
                {
                    topic.name: {
                        "num_partitions": topic.partitions,
                        "replication_factor": replication.factor,
                        "configs": replication.topic_config(topic),
                    }
                },
                timeout_ms=30_000,
                wait_for_metadata=True,
            )
            report.created.append(topic.name)
        except TopicAlreadyExistsError:
            # Another process created it between our listing and our request: the same outcome.
            report.existing.append(topic.name)
        except InvalidReplicationFactorError as error:
            uncreatable.add(topic.name)
            report.problems.append(
                f"{topic.name} cannot be created with {replication.factor} replicas ({error}): the cluster has "
                "fewer brokers; set H200_REPLICATION_FACTOR to at most their number"
            )
    names = [topic.name for topic in catalogue if topic.name not in uncreatable]
    layouts = _layouts(admin, names)
    configs = _configs(admin, names)
    altered: dict[str, dict[str, str]] = {}
    for topic in catalogue:
        layout = layouts.get(topic.name)
        if layout is None:
            continue
        if layout.partitions != topic.partitions:
            # Changing the count would move keys to other partitions and break per-key order: never automatic.
            report.problems.append(
                f"{topic.name} has {layout.partitions} partitions, the catalogue says {topic.partitions}; "
                "recreate it on an empty cluster or change schemas/topics.py"
            )
        wanted = replication.topic_config(topic)
        if layout.replicas != {replication.factor}:
            # Adding replicas copies every partition between brokers: an operator's decision, never automatic.
            replicas = " to ".join(str(n) for n in sorted(layout.replicas))
            report.problems.append(
                f"{topic.name} has {replicas} replicas per partition, H200_REPLICATION_FACTOR says "
                f"{replication.factor}; reassign its partitions (kafka-reassign-partitions) or change the setting"
            )
            # Settings that do not describe this cluster must not lower (or raise) what a write needs.
            del wanted["min.insync.replicas"]
        drift = {k: v for k, v in wanted.items() if configs.get(topic.name, {}).get(k, v) != v}
        if drift:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name, configs=drift)])
            report.reconfigured.append(f"{topic.name} ({', '.join(sorted(drift))})")
            altered[topic.name] = drift
    report.problems.extend(await_configs(admin, altered))
    log.info("topics created=%s existing=%s reconfigured=%s", report.created, report.existing, report.reconfigured)
    return report


CONFIG_SETTLE_S = 30.0
"""How long a changed topic setting may take to show in what the broker describes. The broker answers an
alteration before its metadata is published, so a describe right after it can still show the old value (seen in
CI); the report says a setting was restored only once the cluster shows it."""


def await_configs(admin: KafkaAdminClient, altered: dict[str, dict[str, str]]) -> list[str]:
    """Wait until every altered setting reads back as set; the ones that never do are problems to report."""
    deadline = time.monotonic() + CONFIG_SETTLE_S
    pending = dict(altered)
    while pending:
        shown = _configs(admin, list(pending))
        pending = {
            name: wanted
            for name, wanted in pending.items()
            if any(shown.get(name, {}).get(key) != value for key, value in wanted.items())
        }
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [
        f"{name}: {', '.join(f'{key}={value}' for key, value in sorted(wanted.items()))} was set but the cluster "
        f"still shows the old value after {CONFIG_SETTLE_S:.0f} s; run `h200 topics create` again"
        for name, wanted in pending.items()
    ]
