"""A buyer's system may place and cancel its own buyer's orders only: its principal writes nothing but its own
submission topic (ACL), and intake dead-letters a command there that names another buyer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import StartSystem

from schemas import builders as s
from schemas.codec import encode
from schemas.intake import OrderCancelled, OrderPlaced
from schemas.principals import buyer_principal
from schemas.topics import buyer_topics
from services.common.kafka_auth import kafka_python_options
from services.common.settings import ClusterSettings
from services.ops.access import apply_access
from services.ops.kafka_clients import admin_client
from services.ops.publish import envelope_for
from services.ops.topics import ensure_topics

BUYERS = ("tencent", "bytedance")


@pytest.fixture
def buyer_systems(module_kafka_bootstrap: str) -> dict[str, str]:
    """The buyers' principals, submission and outcome topics and ACLs, as `h200 access apply` gives them."""
    with admin_client(module_kafka_bootstrap) as admin:
        ensure_topics(admin, buyer_topics(BUYERS))
        apply_access(admin, Path(os.environ["H200_KAFKA_SECRETS_DIR"]), buyers=BUYERS)
    return {"H200_BUYER_SYSTEMS": json.dumps(BUYERS)}


def send_as(bootstrap: str, buyer_system: str, topic: str, payload: object) -> None:
    from kafka import KafkaProducer

    login = kafka_python_options(ClusterSettings(kafka_username=buyer_principal(buyer_system)))
    producer = KafkaProducer(bootstrap_servers=bootstrap, retries=0, max_block_ms=10_000, **login)
    try:
        envelope = envelope_for(payload, "upstream")  # type: ignore[arg-type]
        producer.send(topic, key=envelope.key.encode(), value=encode(envelope)).get(timeout=30)
    finally:
        producer.close()


def test_a_buyers_system_places_and_cancels_only_its_own_buyers_orders(
    start_system: StartSystem, buyer_systems: dict[str, str], module_kafka_bootstrap: str
) -> None:
    from kafka.errors import TopicAuthorizationFailedError

    system = start_system(env=buyer_systems)
    system.publish([s.use_rules(), *s.cleared_buyer("tencent", 1_000), *s.cleared_buyer("bytedance", 1_000)])
    system.settle()
    bootstrap = module_kafka_bootstrap
    mine = "h200.submissions.tencent"

    # Given bytedance's own order, placed by bytedance's system
    send_as(bootstrap, "bytedance", "h200.submissions.bytedance", s.submit("bytedance", "BD-OWN", 100, minute=1))
    # When tencent's system places its own order, one for bytedance on its own topic, and cancels bytedance's
    send_as(bootstrap, "tencent", mine, s.submit("tencent", "TC-OWN", 100, minute=2))
    send_as(bootstrap, "tencent", mine, s.submit("bytedance", "BD-FORGED", 100, minute=3))
    send_as(bootstrap, "tencent", mine, s.cancel("bytedance", "BD-OWN", minute=4))
    # and tries to write to bytedance's topic or the shared one
    for topic in ("h200.submissions.bytedance", "h200.intake.commands", "h200.policy"):
        with pytest.raises(TopicAuthorizationFailedError):
            send_as(bootstrap, "tencent", topic, s.submit("bytedance", "BD-FORGED-2", 100, minute=5))
    system.settle()

    # Then only the two own orders are placed, bytedance's order stands, and both forgeries are dead-lettered
    placed = {(r.payload.buyer_id, r.payload.upstream_ref) for r in _events(system, OrderPlaced)}
    assert placed == {("bytedance", "BD-OWN"), ("tencent", "TC-OWN")}
    assert _events(system, OrderCancelled) == []
    refused = sorted(dict(record.headers)["dlq.error_code"].decode() for record in system.records("h200.dlq.intake"))
    assert refused == ["sender_not_buyer", "sender_not_buyer"]


def _events(system: object, kind: type) -> list[object]:
    from schemas.codec import decode

    return [
        envelope
        for envelope in (decode(record.value) for record in system.records("h200.orders"))  # type: ignore[attr-defined]
        if isinstance(envelope.payload, kind)
    ]
