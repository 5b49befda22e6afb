"""Creates the topic catalogue on a cluster, idempotently, and reports what differs from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from schemas.topics import CATALOGUE, Topic

log = logging.getLogger(__name__)


@dataclass
class TopicsReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    return {
        description["name"]: len(description["partitions"])
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


def ensure_topics(admin: KafkaAdminClient, catalogue: tuple[Topic, ...] = CATALOGUE) -> TopicsReport:
    """Create missing topics, restore drifted retention settings, and report partition mismatches."""
    report = TopicsReport()
    present = set(admin.list_topics())
    for topic in catalogue:
        if topic.name in present:
            report.existing.append(topic.name)
            continue
        try:
            admin.create_topics(
                [NewTopic(topic.name, topic.partitions, 1, topic_configs=dict(topic.config))],
                timeout_ms=30_000,
                wait_for_metadata=True,
            )
            report.created.append(topic.name)
        except TopicAlreadyExistsError:
            # Another process created it between our listing and our request: the same outcome.
            report.existing.append(topic.name)
    names = [topic.name for topic in catalogue]
    counts = _partition_counts(admin, names)
    configs = _configs(admin, names)
    for topic in catalogue:
        if counts.get(topic.name, topic.partitions) != topic.partitions:
            # Changing the count would move keys to other partitions and break per-key order: never automatic.
            report.problems.append(
                f"{topic.name} has {counts[topic.name]} partitions, the catalogue says {topic.partitions}; "
                "recreate it on an empty cluster or change schemas/topics.py"
            )
        drift = {k: v for k, v in topic.config.items() if configs.get(topic.name, {}).get(k, v) != v}
        if drift:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name, configs=drift)])
            report.reconfigured.append(f"{topic.name} ({', '.join(sorted(drift))})")
    log.info("topics created=%s existing=%s reconfigured=%s", report.created, report.existing, report.reconfigured)
    return report
