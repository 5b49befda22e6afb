"""Authentication and ACLs on a real broker: who may write and read what is what schemas.principals grants."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from schemas.approval import OrderApproved
from schemas.codec import encode
from schemas.envelope import make_envelope
from schemas.principals import PRINCIPALS, grants
from schemas.samples import sample_envelopes
from schemas.topics import CATALOGUE
from services.common.kafka_auth import kafka_python_options
from services.common.settings import ClusterSettings
from services.ops.kafka_clients import admin_client
from services.ops.topics import ensure_topics

WRITES = {(g.principal, g.resource) for g in grants() if g.operation == "WRITE" and g.resource_type == "topic"}
READS = {(g.principal, g.resource) for g in grants() if g.operation == "READ" and g.resource_type == "topic"}


@pytest.fixture(scope="module")
def cluster(module_kafka_bootstrap: str) -> Iterator[str]:
    with admin_client(module_kafka_bootstrap) as admin:
        ensure_topics(admin)
    yield module_kafka_bootstrap


def login(principal: str) -> dict[str, object]:
    return kafka_python_options(ClusterSettings(kafka_username=principal, kafka_password=None))


def producer_as(bootstrap: str, principal: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10_000, retries=0, **login(principal))


def write_outcome(client: KafkaProducer, topic: str) -> str:
    try:
        client.send(topic, key=b"k", value=b"{}").get(timeout=15)
    except TopicAuthorizationFailedError:
        return "refused"
    return "written"


def read_refused(consumer: KafkaConsumer, name: str) -> bool:
    """A topic the principal may not even describe is missing from the metadata it is given; one it may write (which
    implies describe) but not read is refused the fetch."""
    if name not in consumer.topics():
        return True
    partition = TopicPartition(name, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    try:
        consumer.poll(timeout_ms=10_000)
    except TopicAuthorizationFailedError:
        return True
    return False


def test_a_client_without_credentials_is_refused(cluster: str) -> None:
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(bootstrap_servers=cluster, security_protocol="PLAINTEXT", bootstrap_timeout_ms=3000)


def test_a_client_with_a_wrong_password_is_refused(cluster: str) -> None:
    wrong = {**login("upstream"), "sasl_plain_password": "not-the-password"}
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(bootstrap_servers=cluster, bootstrap_timeout_ms=3000, **wrong)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_principal_writes_only_the_topics_the_catalogue_grants_it(cluster: str, principal: str) -> None:
    client = producer_as(cluster, principal)
    try:
        outcomes = {topic.name: write_outcome(client, topic.name) for topic in CATALOGUE}
    finally:
        client.close()
    expected = {t.name: "written" if (principal, t.name) in WRITES else "refused" for t in CATALOGUE}
    assert outcomes == expected


@pytest.mark.parametrize("principal", ["upstream", "api", "logistics", "authority", "clock"])
def test_a_principal_cannot_read_what_it_is_not_granted(cluster: str, principal: str) -> None:
    forbidden = [t.name for t in CATALOGUE if (principal, t.name) not in READS]
    consumer = KafkaConsumer(bootstrap_servers=cluster, group_id=None, **login(principal))
    try:
        refused = {name: read_refused(consumer, name) for name in forbidden}
    finally:
        consumer.close()
    assert refused == dict.fromkeys(forbidden, True)


def test_the_auditor_reads_every_topic(cluster: str) -> None:
    consumer = KafkaConsumer(bootstrap_servers=cluster, group_id=None, **login("auditor"))
    try:
        partitions = [TopicPartition(t.name, 0) for t in CATALOGUE]
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, 0)
        consumer.poll(timeout_ms=2000)  # raises TopicAuthorizationFailedError on any topic it may not read
        positions = {partition.topic: consumer.position(partition) for partition in partitions}
    finally:
        consumer.close()
    assert set(positions) == {t.name for t in CATALOGUE}


def test_a_service_cannot_use_another_services_consumer_group(cluster: str) -> None:
    consumer = KafkaConsumer(
        "h200.policy", bootstrap_servers=cluster, group_id="h200-approval", consumer_timeout_ms=5000, **login("intake")
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()


@pytest.mark.parametrize("principal", ["upstream", "intake", "fulfilment", "ops", "authority", "api"])
@pytest.mark.parametrize("topic", ["h200.approvals", "h200.allocation.inbox"])
def test_a_forged_order_approval_cannot_be_written_by_anyone_but_approval(
    cluster: str, principal: str, topic: str
) -> None:
    at = datetime.now(UTC)
    forged = _sample_approval()  # a well-formed approval of an order nobody placed
    envelope = make_envelope(forged, key="pool-1", producer="approval", occurred_at=at, message_id=uuid.uuid4())
    client = producer_as(cluster, principal)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            client.send(topic, key=b"pool-1", value=encode(envelope)).get(timeout=15)
    finally:
        client.close()


@pytest.mark.parametrize("principal", ["ops", "auditor", "intake", "upstream"])
def test_only_the_admin_creates_topics_or_deletes_records(cluster: str, principal: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=cluster, **login(principal))
    try:
        with pytest.raises(KafkaError):
            admin.create_topics([NewTopic(f"h200.rogue-{uuid.uuid4().hex[:6]}", 1, 1)], raise_errors=True)
        with pytest.raises(KafkaError):
            admin.delete_records({TopicPartition("h200.allocations", 0): 0})
    finally:
        admin.close()


@pytest.mark.parametrize("principal", ["ops", "auditor", "intake", "upstream"])
def test_no_one_but_the_admin_deletes_a_keep_forever_topic_or_shortens_its_retention(
    cluster: str, principal: str
) -> None:
    """The attacks of issue 10 on the log itself: delete h200.allocations, or set retention.ms=1000 on it."""
    admin = KafkaAdminClient(bootstrap_servers=cluster, **login(principal))
    try:
        with pytest.raises(KafkaError):
            admin.delete_topics(["h200.allocations"], raise_errors=True)
        with contextlib.suppress(KafkaError):  # refused by a raise or by an error code: what counts is below
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, "h200.allocations", configs={"retention.ms": "1000"})],
                raise_on_unknown=False,  # it cannot describe the topic's settings either: send the change anyway
            )
    finally:
        admin.close()
    with admin_client(cluster) as own:
        assert "h200.allocations" in own.list_topics()
        described = own.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "h200.allocations")])
        retention = described["topic"]["h200.allocations"].get("retention.ms", {}).get("value")
        assert retention == "-1", f"the keep-forever h200.allocations now keeps records for {retention} ms"


def _sample_approval() -> OrderApproved:
    return next(e.payload for e in sample_envelopes() if isinstance(e.payload, OrderApproved))
