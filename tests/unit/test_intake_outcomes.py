"""Every record of a submission topic gets exactly one answer on the outcome topic of its channel: the fact it
caused, SubmissionUnchanged, or SubmissionMalformed; a redelivered record the same answer under the same id."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from builders_intake import AT, BUYER, ORDER_ID, add_documents, cancel, document, submit

from schemas.codec import ContractError, decode, encode
from schemas.envelope import Envelope, command_id_for, derive_id, make_envelope
from schemas.intake import OrderPlaced, SubmitOrder
from schemas.outcomes import MALFORMED_KEY, SubmissionMalformed, SubmissionUnchanged
from schemas.samples import sample_payloads
from schemas.topics import outcome_topic_of
from services.common.decider import fold
from services.common.faust_app import make_faust_app
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.intake import app as intake_app
from services.intake import domain
from services.intake.domain.malformed import Refused, key_problem, malformed
from services.ops.publish import envelope_for

SHARED = "h200.intake.commands"
OWN = f"h200.submissions.{BUYER}"


# The core: one answer per command


def test_every_command_envelope_gets_exactly_one_answer_caused_by_it() -> None:
    commands = [
        submit(),
        submit(),  # an identical resend under a new id
        submit(quantity=1),  # a conflicting one
        add_documents(document(2)),
        add_documents(document(2)),  # already on file
        cancel(),
        cancel(),  # already cancelled
        cancel(upstream_ref="UNKNOWN-1"),
    ]
    _, events = fold(domain, commands)

    assert [event.causation_id for event in events] == [command.id for command in commands]
    assert [event.correlation_id for event in events] == [command.correlation_id for command in commands]
    assert [event.type for event in events] == [
        "OrderPlaced",
        "SubmissionUnchanged",
        "OrderSubmissionRejected",
        "OrderDocumentsAdded",
        "SubmissionUnchanged",
        "OrderCancelled",
        "SubmissionUnchanged",
        "CommandRejected",
    ]


def test_a_redelivered_command_envelope_gets_no_second_answer() -> None:
    command = submit()
    _, events = fold(domain, [command, command])
    assert [event.type for event in events] == ["OrderPlaced"]


def test_an_unchanged_answer_names_the_command_the_order_and_why() -> None:
    resend = submit()
    _, events = fold(domain, [submit(), resend])
    answer = events[-1].payload
    assert answer == SubmissionUnchanged(
        command_id=resend.id,
        command_type="SubmitOrder",
        buyer_id=BUYER,
        upstream_ref=answer.upstream_ref,
        order_id=ORDER_ID,
        reason=answer.reason,
        decided_at=AT,
    )
    assert answer.reason.code == "already_placed"


# A record that is not a command


def refused(value: bytes | None, *, topic: str = OWN, offset: int = 7, **fields: Any) -> Refused:
    return Refused(topic, 0, offset, fields.get("key"), value, fields.get("headers", ()), AT)


def test_a_malformed_record_is_answered_with_its_coordinates_digest_and_reason() -> None:
    value = b'{"type": "SubmitOrder", oops'
    answer = malformed(refused(value, key=b"bytedance\xff"), ContractError("malformed_json", "not valid JSON"))

    assert answer.payload == SubmissionMalformed(
        source_topic=OWN,
        source_partition=0,
        source_offset=7,
        record_key="bytedance\\xff",
        value_sha256=hashlib.sha256(value).hexdigest(),
        value_length=len(value),
        code="malformed_json",
        detail="not valid JSON",
        buyer_id=BUYER,
        command_id=None,
        correlation_id=None,
        refused_at=AT,
    )
    assert (answer.key, answer.producer, answer.causation_id, answer.occurred_at) == (BUYER, "intake", None, AT)
    assert answer.id == derive_id("SubmissionMalformed", OWN, 0, 7) == answer.correlation_id


def test_a_redelivered_malformed_record_gets_the_same_answer_and_id() -> None:
    error = ContractError("empty_value", "no value")
    assert encode(malformed(refused(None), error)) == encode(malformed(refused(None), error))
    assert malformed(refused(None, offset=8), error).id != malformed(refused(None), error).id


def test_the_correlation_id_is_recovered_from_a_header_else_the_envelope_else_its_id() -> None:
    command_id, correlation, header = uuid4(), uuid4(), uuid4()
    readable = {"id": str(command_id), "correlation_id": str(correlation), "payload": {"buyer_id": "tencent"}}
    value = json.dumps(readable).encode()
    error = ContractError("invalid_envelope", "type and version are required")

    from_header = malformed(refused(value, headers=(("correlation_id", str(header).encode()),)), error)
    from_value = malformed(refused(value, topic=SHARED), error)
    from_id = malformed(refused(json.dumps({"id": str(command_id)}).encode()), error)

    assert (from_header.correlation_id, from_header.payload.correlation_id) == (header, header)
    assert (from_value.correlation_id, from_value.causation_id, from_value.payload.command_id) == (
        correlation,
        command_id,
        command_id,
    )
    assert from_id.correlation_id == command_id
    # On the shared topic the buyer is the one the record names; on a buyer's own topic, that buyer.
    assert (from_value.key, from_value.payload.buyer_id, from_header.payload.buyer_id) == ("tencent", "tencent", BUYER)


def test_a_record_naming_no_readable_buyer_on_the_shared_topic_is_keyed_unattributed() -> None:
    answer = malformed(refused(b"\x00\x01", topic=SHARED), ContractError("malformed_json", "not valid UTF-8"))
    assert (answer.key, answer.payload.buyer_id) == (MALFORMED_KEY, None)


@pytest.mark.parametrize(("key", "problem"), [(None, None), (b"bytedance", None), (b"BYTEDANCE", "key_mismatch")])
def test_a_record_key_must_be_its_envelopes_key_or_absent(key: bytes | None, problem: str | None) -> None:
    found = key_problem(key, submit())
    assert (found.code if found else None) == problem
    if found:
        assert "'BYTEDANCE'" in found.detail and "'bytedance'" in found.detail


# Which channel answers


def test_a_buyers_own_topic_is_answered_on_its_own_outcome_topic_and_the_rest_on_the_shared_one() -> None:
    assert outcome_topic_of(OWN) == f"h200.outcomes.{BUYER}"
    assert outcome_topic_of(SHARED) == "h200.outcomes"
    assert outcome_topic_of(None) == "h200.outcomes"


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None, partition: int | None = None
    ) -> None:
        self.records.append((topic, key, value, dict(headers or ())))

    async def all(self, outgoing: list[tuple[str, bytes | None, bytes | None, Any, int | None]]) -> list[object]:
        for topic, key, value, headers, partition in outgoing:
            await self(topic, key, value, headers, partition)
        return ["acked"] * len(outgoing)

    def on(self, topic: str) -> list[Envelope[Any]]:
        return [decode(value) for name, _, value, _ in self.records if name == topic and value is not None]


@pytest.fixture
def worker(tmp_path: Path) -> tuple[intake_app.IntakeWorker, Sent]:
    cluster = ClusterSettings(buyer_systems=(BUYER,))
    settings = WorkerSettings(worker_id="unit", datadir=tmp_path)
    intake = intake_app.IntakeWorker(make_faust_app("intake", cluster, settings), cluster, settings)
    sent = Sent()
    intake._send = sent  # type: ignore[method-assign]
    intake._send_all = sent.all  # type: ignore[method-assign,assignment]
    return intake, sent


def record(topic: str, value: bytes | None, key: bytes | None = None, offset: int = 3) -> Record:
    stamp = round(datetime(2026, 1, 28, 9, 30, tzinfo=UTC).timestamp() * 1000)
    return Record(topic, 0, offset, key, value, (), stamp, 0)


def test_a_malformed_record_on_a_buyers_topic_is_dead_lettered_and_answered_to_that_buyer(
    worker: tuple[intake_app.IntakeWorker, Sent],
) -> None:
    intake, sent = worker
    asyncio.run(intake._route(intake.routes[-1], [record(OWN, b"not json", key=BUYER.encode())]))

    [letter] = [r for r in sent.records if r[0] == "h200.dlq.intake"]
    assert (letter[2], letter[3]["dlq.error_code"]) == (b"not json", b"malformed_json")
    [answer] = sent.on(f"h200.outcomes.{BUYER}")
    assert isinstance(answer.payload, SubmissionMalformed)
    assert (answer.payload.code, answer.payload.source_offset, answer.key) == ("malformed_json", 3, BUYER)
    assert [r[0] for r in sent.records] == ["h200.dlq.intake", f"h200.outcomes.{BUYER}"]


def test_a_record_keyed_otherwise_than_its_envelope_is_refused_with_that_reason(
    worker: tuple[intake_app.IntakeWorker, Sent],
) -> None:
    intake, sent = worker
    command = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
    envelope = make_envelope(command, key=command.buyer_id, producer="upstream", occurred_at=AT, message_id=uuid4())
    asyncio.run(intake._route(intake.routes[0], [record(SHARED, encode(envelope), key=b"someone-else")]))

    assert [r[0] for r in sent.records] == ["h200.dlq.intake", "h200.outcomes"]
    [answer] = sent.on("h200.outcomes")
    assert isinstance(answer.payload, SubmissionMalformed)
    assert (answer.payload.code, answer.causation_id, answer.key) == ("key_mismatch", envelope.id, command.buyer_id)


def test_an_inbox_copy_names_its_channel_and_its_decisions_go_home_and_back_to_that_channel(
    worker: tuple[intake_app.IntakeWorker, Sent],
) -> None:
    intake, sent = worker
    command = submit()
    asyncio.run(intake._route(intake.routes[-1], [record(OWN, encode(command), key=BUYER.encode())]))
    [(topic, key, value, headers)] = sent.records
    assert (topic, key, value, headers) == (
        intake_app.INBOX,
        BUYER.encode(),
        encode(command),
        {"h200.source_topic": OWN.encode()},
    )

    copy = Record(intake_app.INBOX, 0, 0, key, value, tuple(headers.items()))
    placed = make_envelope(
        OrderPlaced.model_validate({**sample_payloads()[0].model_dump(), "order_id": UUID(int=1), "placed_at": AT}),
        key=BUYER,
        producer="intake",
        occurred_at=AT,
        cause=command,
    )
    unchanged = make_envelope(
        SubmissionUnchanged.model_validate(
            {
                "command_id": command.id,
                "command_type": "SubmitOrder",
                "buyer_id": BUYER,
                "upstream_ref": "R",
                "order_id": ORDER_ID,
                "reason": {"code": "already_placed", "message": "placed"},
                "decided_at": AT,
            }
        ),
        key=BUYER,
        producer="intake",
        occurred_at=AT,
        cause=command,
    )
    assert intake.destinations(copy, placed) == [("h200.orders", None), (f"h200.outcomes.{BUYER}", None)]
    assert intake.destinations(copy, unchanged) == [(f"h200.outcomes.{BUYER}", None)]
    legacy = Record(intake_app.INBOX, 0, 1, key, value)  # copied before copies named their channel
    assert intake.destinations(legacy, placed) == [("h200.orders", None), ("h200.outcomes", None)]


# The id of a command without a cause


def test_a_command_id_follows_the_documented_rule_and_a_resend_keeps_it() -> None:
    command = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
    text = f"api/SubmitOrder/{hashlib.sha256(command.model_dump_json().encode()).hexdigest()}"
    by_hand = uuid5(UUID("5b0f4b9e-2f6c-4b6e-9d55-8f1f6f2d7a11"), text)

    assert command_id_for("api", command) == by_hand == envelope_for(command, "api").id
    assert envelope_for(command, "api").correlation_id == by_hand and envelope_for(command, "api").causation_id is None
    assert command_id_for("api", command.model_copy(update={"quantity": 1})) != by_hand


@pytest.mark.parametrize("stamp", [None, -1, 2**62])
def test_a_refused_record_without_a_usable_timestamp_is_answered_all_the_same(
    worker: tuple[intake_app.IntakeWorker, Sent], stamp: int | None
) -> None:
    intake, sent = worker
    asyncio.run(intake._reject(Record(OWN, 0, 9, None, b"x", (), stamp, 0), ContractError("malformed_json", "x")))
    [answer] = sent.on(f"h200.outcomes.{BUYER}")
    assert answer.payload.refused_at.tzinfo is not None
