"""The topic catalogue on a real broker: created once, kept forever, drift restored, mismatches reported."""

from __future__ import annotations

import uuid
from dataclasses import replace

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from schemas.topics import CATALOGUE, Topic
from services.ops.topics import ensure_topics


def private_catalogue() -> tuple[Topic, ...]:
    suffix = uuid.uuid4().hex[:8]
    return tuple(replace(topic, name=f"{topic.name}.{suffix}") for topic in CATALOGUE[:3])


def retention_of(admin: KafkaAdminClient, name: str) -> str:
    found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    return str(found["topic"][name]["retention.ms"]["value"])


def test_the_catalogue_is_created_with_its_partitions_and_unlimited_retention(kafka_admin: KafkaAdminClient) -> None:
    catalogue = private_catalogue()
    report = ensure_topics(kafka_admin, catalogue)
    assert report.created == [t.name for t in catalogue] and report.problems == []
    described = {d["name"]: len(d["partitions"]) for d in kafka_admin.describe_topics([t.name for t in catalogue])}
    assert described == {t.name: t.partitions for t in catalogue}
    assert all(retention_of(kafka_admin, t.name) == "-1" for t in catalogue)


def test_creating_the_catalogue_again_changes_nothing(kafka_admin: KafkaAdminClient) -> None:
    catalogue = private_catalogue()
    ensure_topics(kafka_admin, catalogue)
    again = ensure_topics(kafka_admin, catalogue)
    assert again.created == [] and again.reconfigured == [] and again.existing == [t.name for t in catalogue]


def test_a_retention_changed_by_hand_is_restored(kafka_admin: KafkaAdminClient) -> None:
    catalogue = private_catalogue()
    ensure_topics(kafka_admin, catalogue)
    name = catalogue[0].name
    kafka_admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "3600000"})])
    report = ensure_topics(kafka_admin, catalogue)
    assert report.reconfigured == [f"{name} (retention.ms)"]
    assert retention_of(kafka_admin, name) == "-1"


def test_a_topic_with_other_partitions_is_reported_not_changed(kafka_admin: KafkaAdminClient) -> None:
    catalogue = private_catalogue()
    ensure_topics(kafka_admin, catalogue)
    wider = (replace(catalogue[0], partitions=catalogue[0].partitions + 2),)
    report = ensure_topics(kafka_admin, wider)
    assert len(report.problems) == 1
    assert (
        f"has {catalogue[0].partitions} partitions, the catalogue says {catalogue[0].partitions + 2}"
        in (report.problems[0])
    )
