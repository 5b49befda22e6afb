"""A buyer's system that is not written in Python (Kafka's own console producer, Java) submits over Kafka a valid
order and a malformed record: each gets exactly one answer on the buyer's own outcome topic, which that system may
read and another buyer's may not; the malformed record is dead-lettered with its original bytes too."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from harness import StartSystem, System

from schemas import builders as s
from schemas.codec import decode, encode
from schemas.intake import OrderPlaced
from schemas.outcomes import SubmissionMalformed
from schemas.principals import buyer_principal
from schemas.topics import buyer_topics
from services.common.kafka_auth import java_properties, kafka_python_options
from services.common.settings import ClusterSettings
from services.ops.access import apply_access
from services.ops.kafka_clients import admin_client
from services.ops.publish import envelope_for
from services.ops.topics import ensure_topics

BUYERS = ("tencent", "bytedance")
LIBS = Path(__file__).resolve().parents[2] / "infra/kafka/.cache/libs"
MALFORMED = b'{"type": "SubmitOrder", "version": 1, "payload": {"buyer_id": "tencent", oops'


@pytest.fixture
def buyer_systems(module_kafka_bootstrap: str) -> dict[str, str]:
    with admin_client(module_kafka_bootstrap) as admin:
        ensure_topics(admin, buyer_topics(BUYERS))
        apply_access(admin, Path(os.environ["H200_KAFKA_SECRETS_DIR"]), buyers=BUYERS)
    return {"H200_BUYER_SYSTEMS": json.dumps(BUYERS)}


def console_produce(bootstrap: str, principal: str, topic: str, lines: list[bytes]) -> None:
    """Kafka's ConsoleProducer (kafka-console-producer.sh) from the jars: one record per line, `headers TAB key TAB
    value`, headers as `name:value`."""
    command = [
        *("java", "-Xmx256m", "-cp", f"{LIBS}/*", "org.apache.kafka.tools.ConsoleProducer"),
        *("--bootstrap-server", bootstrap, "--topic", topic, "--request-required-acks", "all"),
        *("--reader-property", "parse.key=true", "--reader-property", "parse.headers=true"),
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as login:  # mode 0600: it holds a password
        login.write(java_properties(ClusterSettings(kafka_username=principal)))
        login.flush()
        done = subprocess.run(
            [*command, "--command-config", login.name],
            input=b"".join(line + b"\n" for line in lines),
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def answers(system: System, topic: str, principal: str) -> list[Any]:
    return [decode(record.value) for record in system.records(topic, partitions=1, as_principal=principal)]


def decisions_logged(system: System, service: str) -> dict[UUID, dict[str, Any]]:
    """The JSON decision lines of a service's workers (H200_LOG_FORMAT=json), by the id of each event they name."""
    found = {}
    for process in system.supervisor.processes.values():
        if process.name.startswith(service):
            for text in process.log_path.read_text().splitlines():
                line = json.loads(text) if text.startswith("{") else {}
                if line.get("logger") == "h200.decisions":
                    found.update((UUID(event_id), line) for event_id in line["event_ids"])
    return found


def test_a_java_client_gets_one_answer_for_a_valid_order_and_one_for_a_malformed_record(
    start_system: StartSystem, buyer_systems: dict[str, str], module_kafka_bootstrap: str
) -> None:
    from kafka import KafkaConsumer

    system = start_system(env={**buyer_systems, "H200_LOG_FORMAT": "json"})
    system.publish([s.use_rules(), *s.cleared_buyer("tencent", 1_000)])
    system.settle()

    # When tencent's system sends, with Kafka's console producer, a valid order and a record that is not JSON
    order = envelope_for(s.submit("tencent", "TC-JAVA", 100, minute=1), "upstream")
    flow = uuid4()
    console_produce(
        module_kafka_bootstrap,
        buyer_principal("tencent"),
        "h200.submissions.tencent",
        [
            b"correlation_id:" + str(order.correlation_id).encode() + b"\ttencent\t" + encode(order),
            b"correlation_id:" + str(flow).encode() + b"\ttencent\t" + MALFORMED,
        ],
    )
    system.settle()
    mine = "h200.outcomes.tencent"
    system.wait_until(
        "two answers on h200.outcomes.tencent",
        lambda: len(answers(system, mine, buyer_principal("tencent"))) >= 2,
        timeout_s=180,
    )

    # Then it reads one answer for each on its own outcome topic: the order placed, the record malformed
    found = answers(system, mine, buyer_principal("tencent"))
    assert len(found) == 2, found
    [placed] = [a for a in found if isinstance(a.payload, OrderPlaced)]
    [refused] = [a for a in found if isinstance(a.payload, SubmissionMalformed)]
    assert isinstance(placed.payload, OrderPlaced)
    assert (placed.causation_id, placed.correlation_id, placed.key) == (order.id, order.correlation_id, "tencent")
    assert placed.payload.upstream_ref == "TC-JAVA"
    assert isinstance(refused.payload, SubmissionMalformed)
    assert (refused.payload.code, refused.payload.source_topic, refused.payload.source_offset) == (
        "malformed_json",
        "h200.submissions.tencent",
        1,
    )
    assert refused.payload.value_sha256 == hashlib.sha256(MALFORMED).hexdigest()
    assert (refused.correlation_id, refused.payload.buyer_id, refused.payload.record_key) == (
        flow,
        "tencent",
        "tencent",
    )
    # the placed answer is the fact itself: the same event, same id, on h200.orders
    assert placed.id in {decode(r.value).id for r in system.records("h200.orders")}
    # and the malformed record went to the dead-letter topic with its original bytes
    [letter] = [r for r in system.records("h200.dlq.intake") if r.value == MALFORMED]
    assert dict(letter.headers)["dlq.error_code"] == b"malformed_json"

    # Intake logged each decision as one JSON line with its ids
    logged = decisions_logged(system, "intake")
    assert (logged[placed.id]["causation_id"], logged[placed.id]["correlation_id"]) == (
        str(order.id),
        str(order.correlation_id),
    )
    assert (logged[refused.id]["topic"], logged[refused.id]["offset"]) == ("h200.submissions.tencent", 1)

    # Another buyer's system may not read tencent's answers: it is not even told the topic exists
    spy = KafkaConsumer(
        **kafka_python_options(ClusterSettings(kafka_username=buyer_principal("bytedance"))),
        bootstrap_servers=module_kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
    )
    try:
        assert mine not in spy.topics()
        assert "h200.outcomes.bytedance" in spy.topics()
    finally:
        spy.close()
