"""Input no service can accept goes, byte for byte, to that service's dead-letter topic with the reason, and
the good traffic behind it still flows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from checks import decisions_by_order
from harness import StartSystem, System

from schemas import builders as s
from schemas.codec import encode
from schemas.envelope import Envelope
from schemas.intake import OrderPlaced, OrderSubmissionRejected
from schemas.topics import DEAD_LETTER_HEADERS
from services.ops import audit
from services.ops.publish import envelope_for
from services.projector.app import DEAD_LETTER_TOPICS

MAX_MESSAGE_BYTES = 50_000


@dataclass(frozen=True)
class Sent:
    """A record sent as is, and the dead letter it must become."""

    topic: str
    key: bytes
    value: bytes | None
    code: str
    field: str | None = None
    """What dlq.error must name, e.g. the field at fault."""
    partition: int = -1
    offset: int = -1


def _envelope(payload: Any) -> dict[str, Any]:
    envelope: Envelope[Any] = envelope_for(payload, "upstream")
    return json.loads(encode(envelope))


def _with_payload(payload: Any, **fields: Any) -> bytes:
    raw = _envelope(payload)
    raw["payload"].update(fields)
    return json.dumps(raw).encode()


def garbage() -> list[Sent]:
    order = s.submit("bytedance", "BD-BAD", 100, minute=10)
    unknown = {**_envelope(order), "type": "BuyAllTheChips"}
    oversized = encode(envelope_for(s.submit("bytedance", "BD-BIG", 100, minute=10), "upstream")) + b" " * 100_000
    return [
        Sent("h200.intake.commands", b"bytedance", b'{"type": "SubmitOrder", "version": 1, oops', "malformed_json"),
        Sent(
            "h200.intake.commands",
            b"bytedance",
            _with_payload(order, quantity="lots"),
            "invalid_payload",
            "payload.quantity",
        ),
        Sent(
            "h200.intake.commands", b"alibaba", json.dumps(unknown).encode(), "unknown_message_type", "BuyAllTheChips"
        ),
        Sent("h200.intake.commands", b"tencent", oversized, "oversized"),
        Sent("h200.intake.commands", b"baidu", None, "empty_value"),
        Sent(
            "h200.policy",
            b"cn-quota/T1/bytedance",
            _with_payload(s.quota("bytedance", 9), quantity=-5),
            "invalid_payload",
            "payload.quantity",
        ),
        Sent(
            "h200.fulfilment.commands",
            b"00000000-0000-0000-0000-000000000001",
            _with_payload(s.step("00000000-0000-0000-0000-000000000001", "packed", minute=20), step="teleported"),
            "invalid_payload",
            "payload.step",
        ),
    ]


def send_as_is(system: System, records: list[Sent]) -> list[Sent]:
    producer = system.raw_producer()
    try:
        futures = [(r, producer.send(r.topic, key=r.key, value=r.value)) for r in records]
        placed = []
        for record, future in futures:
            meta = future.get(timeout=30)
            placed.append(Sent(**{**record.__dict__, "partition": meta.partition, "offset": meta.offset}))
        return placed
    finally:
        producer.close()


def dead_letters(system: System, service: str) -> dict[tuple[str, int, int], Any]:
    """Records of h200.dlq.<service> by the source position their headers name."""
    found = {}
    for record in system.records(f"h200.dlq.{service}"):
        headers = {k: v.decode() for k, v in record.headers}
        found[
            (headers["dlq.source_topic"], int(headers["dlq.source_partition"]), int(headers["dlq.source_offset"]))
        ] = (
            record,
            headers,
        )
    return found


def test_bad_input_is_dead_lettered_and_good_traffic_flows(start_system: StartSystem) -> None:
    system = start_system(env={"H200_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES)})
    system.publish([s.use_rules(), *s.cleared_buyer("bytedance", 1_000)])
    system.settle()

    # When upstream systems and ops send garbage, then a valid order
    sent = send_as_is(system, garbage())
    good = s.submit("bytedance", "BD-GOOD", 100, minute=30)
    system.publish([good])
    system.settle()
    system.wait_for_projector(DEAD_LETTER_TOPICS)

    # Then each bad record is on the dead-letter topic of every service that reads it, as it was sent
    readers = {
        "h200.intake.commands": ["intake"],
        "h200.policy": ["intake", "approval", "allocation"],  # each routes policies into its inbox
        "h200.fulfilment.commands": ["fulfilment"],
    }
    expected = {service: 0 for service in ("intake", "approval", "allocation", "fulfilment")}
    for record in sent:
        for service in readers[record.topic]:
            expected[service] += 1
            letters = dead_letters(system, service)
            source = (record.topic, record.partition, record.offset)
            assert source in letters, f"{record.code} record {source} is not on h200.dlq.{service}"
            letter, headers = letters[source]
            if record.code == "oversized":
                # Larger than the cluster takes (H200_MAX_MESSAGE_BYTES): its head, the length and a hash
                assert headers["dlq.truncated"] == "true"
                assert record.value is not None and letter.value == record.value[: len(letter.value)]
                assert len(letter.value) > MAX_MESSAGE_BYTES - 5_000
                assert headers["dlq.original_length"] == str(len(record.value))
                assert headers["dlq.original_sha256"] == hashlib.sha256(record.value).hexdigest()
            else:
                assert letter.value == record.value and headers["dlq.truncated"] == "false"
            assert letter.key == record.key
            assert set(DEAD_LETTER_HEADERS) <= set(headers)
            assert headers["dlq.error_code"] == record.code
            assert headers["dlq.service"] == service
            if record.field:
                assert record.field in headers["dlq.error"], headers["dlq.error"]
    assert {service: len(dead_letters(system, service)) for service in expected} == expected

    # The projector reads h200.policy too: it dead-letters the bad policy itself and counts every dead letter
    (projector_letter,) = system.records("h200.dlq.projector")
    assert projector_letter.value == sent[5].value
    assert system.store.dead_letters() == {
        "intake:malformed_json": 1,
        "intake:invalid_payload": 2,  # an order and the bad policy (intake reads the submission window there)
        "intake:unknown_message_type": 1,
        "intake:oversized": 1,
        "intake:empty_value": 1,
        "approval:invalid_payload": 1,
        "allocation:invalid_payload": 1,
        "fulfilment:invalid_payload": 1,
        "projector:invalid_payload": 1,
    }

    # And the valid order sent after the garbage is placed and approved; nothing else was recorded
    log = system.log()
    (decision,) = decisions_by_order(log)[str(s.order_id("bytedance", "BD-GOOD"))]
    assert decision.type == "OrderApproved"
    assert [e.payload.upstream_ref for e in log.of(OrderPlaced, OrderSubmissionRejected)] == ["BD-GOOD"]
    assert system.store.order(str(s.order_id("bytedance", "BD-GOOD")))["status"] == "approved"
    assert audit.check_invariants(log) == []
    assert log.undecodable == 1  # the bad policy record, which stays in h200.policy
