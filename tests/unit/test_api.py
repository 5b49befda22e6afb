"""The HTTP API against an in-memory gateway: what it publishes, what it refuses and why, what it answers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fake_read_model import FakeReadModel
from fastapi.testclient import TestClient

from schemas.base import Message
from schemas.codec import decode, encode
from schemas.envelope import Envelope, order_id_for
from schemas.intake import CancelOrder, SubmitOrder
from schemas.routing import home_topic
from schemas.samples import sample_payloads
from services.api.app import create_app
from services.api.callers import Caller, Callers
from services.ops.redrive import Letter, Resend


class FakeGateway:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, bytes]] = []
        self.orders: dict[str, list[dict[str, Any]]] = {}
        """order_id -> the answers order() gives, one per call (the last one repeats)."""
        self.is_ready = (True, "fine")
        self.model = FakeReadModel()
        self.letters: list[Letter] = []
        self.resent: list[Resend] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def publish(self, envelope: Envelope[Message]) -> None:
        self.published.append((home_topic(envelope.payload).name, envelope.key.encode(), encode(envelope)))

    def order(self, order_id: str) -> dict[str, Any] | None:
        answers = self.orders.get(order_id)
        if not answers:
            return None
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def buyer_orders(self, buyer_id: str) -> list[dict[str, Any]]:
        return []

    def ready(self) -> tuple[bool, str]:
        return self.is_ready

    def read_model(self) -> FakeReadModel:
        return self.model

    def dead_letters(self, services: Iterable[str]) -> list[Letter]:
        return [letter for letter in self.letters if letter.service in services]

    def sent_before(self, record: Resend) -> str | None:
        earlier = [i for i, sent in enumerate(self.resent) if sent.envelope.id == record.envelope.id]
        return f"{record.topic}[0]@{earlier[0]}" if earlier else None

    def send(self, record: Resend) -> tuple[int, int]:
        self.resent.append(record)
        return 0, len(self.resent) - 1


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


CALLERS = Callers(
    {
        "bytedance-token": Caller("buyer:bytedance", "bytedance"),
        "tencent-token": Caller("buyer:tencent", "tencent"),
        "auditor-token": Caller("auditor", None),
    }
)


@pytest.fixture
def client(gateway: FakeGateway) -> Iterator[TestClient]:
    """The API as ByteDance's system calls it (the samples are ByteDance's orders)."""
    app = create_app(gateway, CALLERS, poll_s=0.01)
    with TestClient(app, headers={"Authorization": "Bearer bytedance-token"}) as test_client:
        yield test_client


def submission() -> dict[str, Any]:
    sample = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
    return json.loads(sample.model_dump_json())


def test_a_valid_submission_is_published_to_intake_keyed_by_its_buyer(client: TestClient, gateway: FakeGateway) -> None:
    answer = client.post("/v1/orders", json=submission())

    assert answer.status_code == 202
    body = answer.json()
    assert body["order_id"] == str(order_id_for("bytedance", "BD-PO-2026-0001"))
    assert body["status_url"] == "/v1/orders/bytedance/BD-PO-2026-0001"
    [(topic, key, value)] = gateway.published
    envelope = decode(value)
    assert (topic, key, envelope.type, str(envelope.id)) == (
        "h200.intake.commands",
        b"bytedance",
        "SubmitOrder",
        body["command_id"],
    )
    assert envelope.producer == "api"


def test_the_same_submission_twice_is_one_command_id(client: TestClient, gateway: FakeGateway) -> None:
    first = client.post("/v1/orders", json=submission()).json()
    second = client.post("/v1/orders", json=submission()).json()

    assert first["command_id"] == second["command_id"]


@pytest.mark.parametrize(
    ("mutate", "status", "code", "names"),
    [
        (lambda s: s.update(quantity="1000"), 422, "invalid_payload", "quantity"),
        (lambda s: s.update(submitted_at=1769590800), 422, "invalid_payload", "submitted_at"),
        (lambda s: s.update(declared_uses=[{"use": "inference", "share_pct": 50}]), 422, "invalid_payload", "100"),
        (lambda s: s.update(is_fast=True), 422, "invalid_payload", "is_fast"),
    ],
)
def test_an_invalid_submission_is_refused_naming_the_field_and_nothing_is_published(
    client: TestClient, gateway: FakeGateway, mutate: Any, status: int, code: str, names: str
) -> None:
    body = submission()
    mutate(body)

    answer = client.post("/v1/orders", json=body)

    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert names in answer.json()["detail"]
    assert gateway.published == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, "too_deep"),
        (b'{"buyer_id": "a", "buyer_id": "b"}', "duplicate_key"),
        (b"not json", "malformed_json"),
        (b'{"quantity": ' + b"9" * 5000 + b"}", "number_too_long"),
    ],
)
def test_a_body_that_is_not_a_message_is_refused_with_the_codec_reason(
    client: TestClient, gateway: FakeGateway, raw: bytes, code: str
) -> None:
    answer = client.post("/v1/orders", content=raw, headers={"content-type": "application/json"})

    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert gateway.published == []


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient, gateway: FakeGateway) -> None:
    answer = client.post("/v1/orders", content=b" " * 1_000_001)

    assert answer.status_code == 413
    assert gateway.published == []


def test_wait_answers_with_the_outcome_once_the_order_is_decided(client: TestClient, gateway: FakeGateway) -> None:
    order_id = str(order_id_for("bytedance", "BD-PO-2026-0001"))
    gateway.orders[order_id] = [{"status": "placed"}, {"status": "placed"}, {"status": "held", "reasons": "x"}]

    answer = client.post("/v1/orders?wait=5", json=submission())

    assert answer.status_code == 200
    assert answer.json()["outcome"] == {"status": "held", "reasons": "x"}


def test_wait_that_runs_out_answers_accepted_without_an_outcome(client: TestClient, gateway: FakeGateway) -> None:
    answer = client.post("/v1/orders?wait=0.05", json=submission())

    assert answer.status_code == 202
    assert "outcome" not in answer.json()


def test_an_unknown_order_is_404_saying_what_to_do(client: TestClient) -> None:
    answer = client.get("/v1/orders/bytedance/NOPE")

    assert answer.status_code == 404
    assert answer.json()["detail"]["code"] == "unknown_order"
    assert "ask again" in answer.json()["detail"]["detail"]


def test_a_cancellation_takes_the_order_from_the_path(client: TestClient, gateway: FakeGateway) -> None:
    answer = client.post(
        "/v1/orders/bytedance/BD-PO-2026-0001/cancellation",
        json={"reason": "plan changed", "requested_at": "2026-01-28T10:00:00Z"},
    )

    assert answer.status_code == 202
    [(_, key, value)] = gateway.published
    payload = decode(value).payload
    assert isinstance(payload, CancelOrder)
    assert (key, payload.buyer_id, payload.upstream_ref) == (b"bytedance", "bytedance", "BD-PO-2026-0001")


def test_a_cancellation_naming_another_buyer_than_its_path_is_refused(client: TestClient, gateway: FakeGateway) -> None:
    answer = client.post(
        "/v1/orders/bytedance/BD-PO-2026-0001/cancellation",
        json={"buyer_id": "tencent", "reason": "x", "requested_at": "2026-01-28T10:00:00Z"},
    )

    assert answer.status_code == 422
    assert "differ from the order in the path" in answer.json()["detail"]
    assert gateway.published == []


def test_ready_is_503_with_the_reason_when_a_dependency_is_away(client: TestClient, gateway: FakeGateway) -> None:
    gateway.is_ready = (False, "Redis does not answer: refused")

    answer = client.get("/ready")

    assert (answer.status_code, answer.json()["reason"]) == (503, "Redis does not answer: refused")


def test_metrics_count_requests_by_outcome(client: TestClient) -> None:
    client.post("/v1/orders", json=submission())
    client.post("/v1/orders", content=b"not json")

    text = client.get("/metrics").text

    assert 'h200_api_requests_total{outcome="accepted",route="submit"} 1.0' in text
    assert 'h200_api_requests_total{outcome="malformed_json",route="submit"} 1.0' in text
