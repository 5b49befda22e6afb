"""The projector counts every dead letter once per record it stands for, and no record in any topic it reads
makes it stop: what it cannot apply it counts as a dead letter of its own and goes on."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from schemas.codec import ContractError, encode
from schemas.samples import sample_envelopes
from services.common.records import Record
from services.projector import app
from services.projector.app import to_pending
from services.projector.letters import ProjectorLetters
from services.projector.store import Pending

POLICY = next(e for e in sample_envelopes() if e.type == "TrancheQuotaSet")


class Applied:
    """The store's script in a dict: each position once, each id once (services.projector.store.APPLY)."""

    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}
        self.ids: set[str] = set()
        self.dead_letters: Counter[str] = Counter()

    def apply(self, item: Pending) -> None:
        if item.offset < self.next.get((item.topic, item.partition), 0):
            return
        self.next[(item.topic, item.partition)] = item.offset + 1
        if item.event_id and item.event_id in self.ids:
            return
        self.ids.add(item.event_id)
        for command, _key, *args in item.ops:
            if command == "HINCRBY" and _key.endswith(":dead_letters"):
                self.dead_letters[args[0]] += int(args[1])


def letter(offset: int, source_offset: int, service: str = "intake", code: str = "malformed_json") -> Record:
    headers = {
        "dlq.service": service,
        "dlq.error_code": code,
        "dlq.source_topic": "h200.intake.commands",
        "dlq.source_partition": "2",
        "dlq.source_offset": str(source_offset),
    }
    return Record(f"h200.dlq.{service}", 0, offset, b"k", b"{oops", tuple((k, v.encode()) for k, v in headers.items()))


def project(records: list[Record]) -> tuple[Applied, list[Any]]:
    store, errors = Applied(), []
    for record in records:
        pending, error = to_pending(record, "t", 1_048_576)
        store.apply(pending)
        errors.append(error)
    return store, errors


def test_a_dead_letter_sent_again_after_a_crash_is_counted_once() -> None:
    store, _ = project([letter(0, 17), letter(1, 17), letter(2, 18)])
    assert store.dead_letters == {"intake:malformed_json": 2}


def test_dead_letters_of_two_services_for_one_record_count_for_each() -> None:
    store, _ = project([letter(0, 17), letter(0, 17, service="approval")])
    assert store.dead_letters == {"intake:malformed_json": 1, "approval:malformed_json": 1}


def test_a_record_in_a_dead_letter_topic_with_garbage_headers_is_counted_by_its_position() -> None:
    odd = Record("h200.dlq.intake", 0, 5, None, None, (("dlq.service", b"\xff" * 500),))
    store, errors = project([odd, odd])
    assert errors == [None, None]
    assert store.dead_letters == {"\ufffd" * 64 + ":?": 1}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b'{"a":' * 2_000 + b"1" + b"}" * 2_000, "too_deep"),
        (encode(POLICY).replace(b'"quantity":', b'"quantity":' + b"9" * 5_000 + b",", 1), "number_too_long"),
        (b"\x00\xff not json", "malformed_json"),
        (None, "empty_value"),
    ],
)
def test_a_poison_record_in_an_event_topic_is_its_own_dead_letter(value: bytes | None, code: str) -> None:
    poison = Record("h200.policy", 0, 0, b"k", value)
    good = Record("h200.policy", 0, 1, b"k", encode(POLICY))
    store, errors = project([poison, good])
    assert [getattr(e, "code", None) for e in errors] == [code, None]
    assert store.dead_letters == {f"projector:{code}": 1}
    assert str(POLICY.id) in store.ids


def test_a_defect_in_a_projection_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ns: str, envelope: Any) -> list[list[str]]:
        raise KeyError("defect")

    monkeypatch.setattr(app, "project", broken)
    store, errors = project([Record("h200.policy", 0, 0, b"k", encode(POLICY))])
    assert errors[0].code == "processing_failed"
    assert store.dead_letters == {"projector:processing_failed": 1}


class FakeProducer:
    """kafka-python's send(): refuses records above `limit` at once, as it does for max_request_size."""

    def __init__(self, limit: int, outage: int = 0) -> None:
        self.limit, self.outage, self.sent = limit, outage, []

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: list[Any]) -> Any:
        if self.outage:
            self.outage -= 1
            raise KafkaTimeoutError("broker away")
        size = len(value or b"") + sum(len(v) for _, v in headers)
        if size > self.limit:
            raise MessageSizeTooLargeError(f"{size} bytes")
        self.sent.append((topic, key, value, dict(headers)))
        return self

    def get(self, timeout: float) -> None:
        return None


def test_the_projectors_dead_letter_refused_for_its_size_is_sent_shortened() -> None:
    producer = FakeProducer(limit=100_000)
    letters = ProjectorLetters(producer, max_bytes=1_048_576, running=lambda: True)
    letters.add(Record("h200.policy", 0, 9, b"k", b"x" * 1_010_000), ContractError("malformed_json", "not JSON"))
    assert letters.flush()
    ((topic, _, value, headers),) = producer.sent
    assert topic == "h200.dlq.projector" and headers["dlq.truncated"] == b"true" and value == b"x" * 65_536


def test_the_projector_asked_to_stop_during_an_outage_does_not_apply_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.projector.letters.time.sleep", lambda s: None)
    running = iter([True, True, False])
    letters = ProjectorLetters(FakeProducer(limit=10**7, outage=10), 1_048_576, running=lambda: next(running))
    letters.add(Record("h200.policy", 0, 9, b"k", b"{oops"), ContractError("malformed_json", "not JSON"))
    assert letters.flush() is False
