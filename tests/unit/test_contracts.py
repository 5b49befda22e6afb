"""The message contracts: what they accept, what they refuse and how they say why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.base import Message
from schemas.codec import ContractError, decode, encode
from schemas.envelope import derive_id, make_envelope, order_id_for
from schemas.generate import drifted, message_schema
from schemas.registry import ALL_MESSAGES, CURRENT
from schemas.samples import AT, sample_envelopes
from schemas.supply import BatchManufactured, BatchManufacturedV1
from schemas.topics import CATALOGUE

SAMPLES = {envelope.type: envelope for envelope in sample_envelopes()}


def raw(type_: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode(SAMPLES[type_]))
    return result


def test_every_current_message_has_a_sample() -> None:
    assert set(SAMPLES) == set(CURRENT)


@pytest.mark.parametrize("type_", sorted(SAMPLES))
def test_every_message_survives_a_round_trip_through_the_codec(type_: str) -> None:
    envelope = SAMPLES[type_]
    decoded = decode(encode(envelope))
    assert decoded == envelope
    assert type(decoded.payload) is CURRENT[type_]


def test_an_unknown_payload_field_is_refused_by_name() -> None:
    record = raw("OrderPlaced")
    record["payload"]["discount"] = 5
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(record).encode())
    assert caught.value.code == "invalid_payload"
    assert "payload.discount: Extra inputs are not permitted" in caught.value.detail


def test_an_unknown_envelope_field_is_refused_by_name() -> None:
    record = raw("OrderPlaced")
    record["priority"] = "high"
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(record).encode())
    assert caught.value.code == "invalid_envelope"
    assert "priority" in caught.value.detail


def test_a_wrong_type_is_refused_naming_the_field() -> None:
    record = raw("SubmitOrder")
    record["payload"]["quantity"] = "lots"
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(record).encode())
    assert caught.value.detail.startswith("payload.quantity: Input should be a valid integer")


def test_a_negative_quantity_is_refused() -> None:
    record = raw("SubmitOrder")
    record["payload"]["quantity"] = -3
    with pytest.raises(ContractError, match=r"payload\.quantity: Input should be greater than 0"):
        decode(json.dumps(record).encode())


def test_declared_use_shares_must_cover_the_whole_order() -> None:
    record = raw("SubmitOrder")
    record["payload"]["declared_uses"] = [{"use": "ai_research", "share_pct": 60}]
    with pytest.raises(ContractError, match="shares must add up to 100 percent, got 60"):
        decode(json.dumps(record).encode())


def test_a_naive_time_is_refused() -> None:
    record = raw("BatchManufactured")
    record["payload"]["ready_at"] = "2026-01-28T09:00:00"
    with pytest.raises(ContractError, match=r"payload\.ready_at: Value error, a time is written in RFC 3339"):
        decode(json.dumps(record).encode())


def test_every_error_of_a_message_is_reported_at_once() -> None:
    record = raw("SubmitOrder")
    record["payload"]["quantity"] = 0
    record["payload"]["buyer_id"] = "Not A Slug"
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(record).encode())
    assert "payload.quantity" in caught.value.detail
    assert "payload.buyer_id" in caught.value.detail


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'{"type": "OrderPlaced"}', "invalid_envelope"),
        (b'{"type": "OrderPlaced", "version": true}', "invalid_envelope"),
        (b'{"type": "ChipsStolen", "version": 1, "payload": {}}', "unknown_message_type"),
        (b'{"type": "OrderPlaced", "version": 9, "payload": {}}', "unsupported_version"),
    ],
)
def test_bytes_that_are_not_a_message_are_refused_with_a_stable_code(data: bytes, code: str) -> None:
    with pytest.raises(ContractError) as caught:
        decode(data)
    assert caught.value.code == code


def test_an_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(ContractError) as caught:
        decode(b" " * 2_000, max_bytes=1_000)
    assert caught.value.code == "oversized"
    assert "2000 bytes exceeds the limit of 1000" in caught.value.detail


def test_a_version_1_batch_is_lifted_to_version_2_in_the_default_pool() -> None:
    old = BatchManufacturedV1(batch_id="TSMC-B000", quantity=1_000, site="Tainan", ready_at=AT)
    envelope = make_envelope(old, key="TSMC-B000", producer="legacy", occurred_at=AT, message_id=derive_id("v1"))
    decoded = decode(encode(envelope))
    assert decoded.version == 2
    assert decoded.payload == BatchManufactured(
        batch_id="TSMC-B000", pool_id="h200", quantity=1_000, site="Tainan", ready_at=AT
    )


def test_the_superseded_version_keeps_its_schema_marked_deprecated() -> None:
    assert message_schema(BatchManufacturedV1).get("deprecated") is True
    assert "deprecated" not in message_schema(BatchManufactured)


def test_ids_derived_from_the_same_cause_are_equal_and_from_another_differ() -> None:
    cause = SAMPLES["OrderPlaced"]
    payload = SAMPLES["OrderApproved"].payload
    first = make_envelope(payload, key="bytedance", producer="approval", occurred_at=AT, cause=cause)
    again = make_envelope(payload, key="bytedance", producer="approval", occurred_at=AT, cause=cause)
    other = make_envelope(payload, key="bytedance", producer="approval", occurred_at=AT, cause=SAMPLES["OrderHeld"])
    assert first.id == again.id != other.id
    assert first.causation_id == cause.id
    assert first.correlation_id == cause.correlation_id


def test_an_order_id_is_named_by_buyer_and_upstream_reference() -> None:
    assert order_id_for("alibaba", "PO-1") == order_id_for("alibaba", "PO-1")
    assert order_id_for("alibaba", "PO-1") != order_id_for("tencent", "PO-1")


def test_a_message_without_cause_needs_an_explicit_id() -> None:
    with pytest.raises(ValueError, match="give message_id"):
        make_envelope(SAMPLES["SubmitOrder"].payload, key="bytedance", producer="x", occurred_at=AT)


def test_generated_schemas_and_asyncapi_match_the_models() -> None:
    assert drifted() == [], "run `make schemas` and commit the result"


def test_every_current_message_travels_on_a_topic_keyed_by_one_of_its_fields() -> None:
    carried: set[type[Message]] = set()
    for topic in CATALOGUE:
        for message in topic.messages:
            carried.add(message)
            if message in topic.broadcast:
                continue
            assert topic.key in message.model_fields, f"{message.TYPE} lacks {topic.key}, key of {topic.name}"
    assert carried == set(CURRENT.values())


def test_topic_names_are_unique_and_every_service_has_a_dead_letter_topic() -> None:
    names = [topic.name for topic in CATALOGUE]
    assert len(names) == len(set(names))
    assert {"h200.dlq.intake", "h200.dlq.approval", "h200.dlq.allocation", "h200.dlq.fulfilment"} <= set(names)


def test_event_topics_keep_history_forever() -> None:
    for topic in CATALOGUE:
        assert topic.config["retention.ms"] == "-1" and topic.config["retention.bytes"] == "-1", topic.name


def test_all_messages_are_frozen() -> None:
    payload = SAMPLES["OrderPlaced"].payload
    with pytest.raises(ValueError, match="frozen"):
        payload.quantity = 1  # type: ignore[misc]
    assert all(m.model_config.get("frozen") for m in ALL_MESSAGES)


@pytest.mark.parametrize("type_", sorted(SAMPLES))
def test_the_fast_path_and_the_general_path_decode_alike(type_: str) -> None:
    as_written = encode(SAMPLES[type_])
    reordered = json.dumps(json.loads(as_written), sort_keys=True).encode()  # no longer starts as encode writes
    assert not reordered.startswith(b'{"id"')
    assert decode(as_written) == decode(reordered) == SAMPLES[type_]


def test_a_record_as_encode_writes_it_but_invalid_gets_the_general_error() -> None:
    record = raw("SubmitOrder")
    record["payload"]["quantity"] = "lots"
    data = json.dumps(record, separators=(",", ":")).encode()
    assert data.startswith(b'{"id"')
    with pytest.raises(ContractError) as caught:
        decode(data)
    assert caught.value.code == "invalid_payload"
    assert caught.value.detail.startswith("payload.quantity: Input should be a valid integer")
