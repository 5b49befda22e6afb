"""The topic catalogue on a real broker: created once, kept forever, drift restored, mismatches reported; the
inboxes stamped by the broker (LogAppendTime), so what is read from them carries its arrival."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from schemas.clock import ClockTicked
from schemas.codec import encode
from schemas.envelope import learned_at, make_envelope
from schemas.topics import BY_NAME, CATALOGUE, Topic
from services.common.records import Record, decode_record
from services.ops.kafka_clients import producer, reader
from services.ops.topics import await_configs, ensure_topics


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
    # A broker describes settings from its metadata image, which takes an alteration a moment after it returns: read
    # at once, the hand's change could still show the old value (seen on a slow machine) and leave nothing to
    # restore. Waited for as ensure_topics waits for its own changes (which is why its restore reads back at once).
    assert await_configs(kafka_admin, {name: {"retention.ms": "3600000"}}) == []
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


# --- time as data: the inboxes are stamped by the broker (docs/time.md) ----------------------------------------

INBOXES = ("h200.intake.inbox", "h200.approval.inbox", "h200.allocation.inbox", "h200.fulfilment.commands")


def private_inboxes() -> tuple[Topic, ...]:
    suffix = uuid.uuid4().hex[:8]
    return tuple(replace(BY_NAME[name], name=f"{name}.{suffix}") for name in INBOXES)


def timestamp_type_of(admin: KafkaAdminClient, name: str) -> str:
    found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    return str(found["topic"][name]["message.timestamp.type"]["value"])


def test_the_catalogue_has_the_clock_and_every_inbox_is_stamped_by_the_broker() -> None:
    assert BY_NAME["h200.clock"].partitions == 1
    assert {name: BY_NAME[name].config.get("message.timestamp.type") for name in INBOXES} == dict.fromkeys(
        INBOXES, "LogAppendTime"
    )


def test_inboxes_are_created_with_log_append_time_and_the_clock_topic_with_create_time(
    kafka_admin: KafkaAdminClient,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    catalogue = (*private_inboxes(), replace(BY_NAME["h200.clock"], name=f"h200.clock.{suffix}"))
    report = ensure_topics(kafka_admin, catalogue)
    assert report.created == [t.name for t in catalogue] and report.problems == []
    stamped = {t.name: timestamp_type_of(kafka_admin, t.name) for t in catalogue}
    assert stamped == {**{t.name: "LogAppendTime" for t in catalogue[:-1]}, catalogue[-1].name: "CreateTime"}


def test_an_inbox_created_with_the_senders_time_is_altered_to_the_brokers(
    kafka_admin: KafkaAdminClient, make_topic: Callable[..., str]
) -> None:
    name = make_topic("h200.approval.inbox", partitions=BY_NAME["h200.approval.inbox"].partitions)
    assert timestamp_type_of(kafka_admin, name) == "CreateTime"
    report = ensure_topics(kafka_admin, (replace(BY_NAME["h200.approval.inbox"], name=name),))
    assert len(report.reconfigured) == 1 and "message.timestamp.type" in report.reconfigured[0]
    assert timestamp_type_of(kafka_admin, name) == "LogAppendTime"
    assert ensure_topics(kafka_admin, (replace(BY_NAME["h200.approval.inbox"], name=name),)).reconfigured == []


def test_a_record_read_back_from_an_inbox_carries_its_arrival_not_the_senders_time(
    kafka_admin: KafkaAdminClient, kafka_bootstrap: str
) -> None:
    inbox = private_inboxes()[1]
    ensure_topics(kafka_admin, (inbox,))
    claimed = datetime(2000, 1, 1, tzinfo=UTC)
    tick = make_envelope(
        ClockTicked(at=claimed), key="h200", producer="approval", occurred_at=claimed, message_id=uuid.uuid4()
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    with producer(kafka_bootstrap) as client:
        sent = client.send(inbox.name, key=b"h200", value=encode(tick), partition=2, timestamp_ms=946_684_800_000)
        offset = sent.get(timeout=30).offset
    with reader(kafka_bootstrap) as consumer:
        tp = TopicPartition(inbox.name, 2)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        found = [r for batch in consumer.poll(timeout_ms=10_000).values() for r in batch]
    assert found, "the record was not read back"
    raw = found[0]
    record = Record(
        raw.topic,
        raw.partition,
        raw.offset,
        raw.key,
        raw.value,
        timestamp_ms=raw.timestamp,
        timestamp_type=raw.timestamp_type,
    )
    envelope = decode_record(record, 1_000_000)
    arrival = envelope.arrival
    assert arrival is not None, f"no arrival: timestamp type {raw.timestamp_type}"
    assert (arrival.topic, arrival.partition, arrival.offset) == (inbox.name, 2, offset)
    assert before <= arrival.at <= datetime.now(UTC) + timedelta(seconds=5)
    assert learned_at(envelope) == arrival.at != envelope.occurred_at == claimed
