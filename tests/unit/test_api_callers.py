"""Who may call the HTTP API for which buyer (issue 10): no token and unknown tokens are refused, a buyer's system
acts and reads only for its own buyer, the ledger is the auditor's, and nothing refused reaches the services."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api import CALLERS, FakeGateway, submission

from schemas.envelope import order_id_for
from services.api.app import create_app
from services.api.callers import Callers

CANCEL = {"reason": "plan changed", "requested_at": "2026-01-28T10:00:00Z"}


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def api(gateway: FakeGateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway, CALLERS, poll_s=0.01)) as client:
        yield client


def _as(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Basic Ynl0ZWRhbmNlOnB3"}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        (_as("bytedance-token-guessed"), "unknown_token"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/orders", submission()),
        ("POST", "/v1/orders/bytedance/BD-PO-2026-0001/cancellation", CANCEL),
        ("GET", "/v1/orders/bytedance/BD-PO-2026-0001", None),
        ("GET", "/v1/buyers/bytedance/orders", None),
        ("GET", "/v1/ledger", None),
    ],
)
def test_a_request_without_a_known_token_is_401_and_publishes_nothing(
    api: TestClient, gateway: FakeGateway, headers: dict[str, str], code: str, method: str, path: str, body: Any
) -> None:
    answer = api.request(method, path, json=body, headers=headers)

    assert (answer.status_code, answer.json()["code"]) == (401, code)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert gateway.published == []


def test_a_buyer_system_cannot_submit_for_another_buyer(api: TestClient, gateway: FakeGateway) -> None:
    answer = api.post("/v1/orders", json=submission(), headers=_as("tencent-token"))  # the sample is ByteDance's

    assert (answer.status_code, answer.json()["code"]) == (403, "sender_not_buyer")
    assert "buyer:tencent" in answer.json()["detail"] and "bytedance" in answer.json()["detail"]
    assert gateway.published == []


@pytest.mark.parametrize("action", ["cancellation", "documents"])
def test_a_buyer_system_cannot_cancel_or_file_documents_for_another_buyer(
    api: TestClient, gateway: FakeGateway, action: str
) -> None:
    body = CANCEL if action == "cancellation" else {"documents": [], "requested_at": CANCEL["requested_at"]}
    answer = api.post(f"/v1/orders/bytedance/BD-PO-2026-0001/{action}", json=body, headers=_as("tencent-token"))

    assert (answer.status_code, answer.json()["code"]) == (403, "sender_not_buyer")
    assert gateway.published == []


@pytest.mark.parametrize("path", ["/v1/orders/bytedance/BD-PO-2026-0001", "/v1/buyers/bytedance/orders"])
def test_a_buyer_system_cannot_read_another_buyer_s_orders_and_the_auditor_can(
    api: TestClient, gateway: FakeGateway, path: str
) -> None:
    gateway.orders[str(order_id_for("bytedance", "BD-PO-2026-0001"))] = [{"status": "approved"}]

    assert api.get(path, headers=_as("tencent-token")).json()["code"] == "sender_not_buyer"
    assert api.get(path, headers=_as("tencent-token")).status_code == 403
    assert api.get(path, headers=_as("bytedance-token")).status_code == 200
    assert api.get(path, headers=_as("auditor-token")).status_code == 200


def test_the_ledger_is_the_auditor_s_alone(api: TestClient) -> None:
    refused = api.get("/v1/ledger", headers=_as("bytedance-token"))

    assert (refused.status_code, refused.json()["code"]) == (403, "auditor_only")
    assert api.get("/v1/ledger", headers=_as("auditor-token")).status_code == 200


def test_the_auditor_writes_nothing(api: TestClient, gateway: FakeGateway) -> None:
    answer = api.post("/v1/orders", json=submission(), headers=_as("auditor-token"))

    assert (answer.status_code, answer.json()["code"]) == (403, "sender_not_buyer")
    assert gateway.published == []


def test_the_buyer_s_own_token_submits(api: TestClient, gateway: FakeGateway) -> None:
    assert api.post("/v1/orders", json=submission(), headers=_as("bytedance-token")).status_code == 202
    assert len(gateway.published) == 1


def test_health_ready_and_metrics_need_no_token(api: TestClient) -> None:
    assert [api.get(path).status_code for path in ("/health", "/ready", "/metrics")] == [200, 200, 200]


def test_refusals_are_counted_by_code(api: TestClient) -> None:
    api.get("/v1/ledger")
    api.post("/v1/orders", json=submission(), headers=_as("tencent-token"))

    metrics = api.get("/metrics").text
    assert 'h200_api_requests_total{outcome="unauthenticated",route="ledger"} 1.0' in metrics
    assert 'h200_api_requests_total{outcome="sender_not_buyer",route="orders"} 1.0' in metrics


def test_tokens_are_read_from_the_secrets_directory_and_an_api_without_any_refuses_everyone(tmp_path: Path) -> None:
    (tmp_path / "buyers").mkdir()
    for path, token in ((tmp_path / "buyers" / "tencent", "t0ken-tc"), (tmp_path / "auditor", "t0ken-au")):
        path.write_text(token + "\n")
        os.chmod(path, 0o600)
    callers = Callers.from_directory(tmp_path)

    assert callers.identify("Bearer t0ken-tc").buyer_id == "tencent"
    assert callers.identify("bearer t0ken-au").name == "auditor"
    with TestClient(create_app(FakeGateway(), Callers.from_directory(tmp_path / "none"))) as api:
        answer = api.get("/v1/ledger", headers=_as("t0ken-au"))
    assert answer.status_code == 401 and "h200 access secrets" in json.dumps(answer.json())


def test_a_container_takes_its_tokens_from_the_environment_that_access_secrets_exports(tmp_path: Path) -> None:
    environ = {"H200_API_SECRET_AUDITOR": "au-env", "H200_API_SECRET_BUYERS": json.dumps({"tencent": "tc-env"})}
    callers = Callers.from_directory(tmp_path / "none", environ)

    assert (callers.identify("Bearer tc-env").buyer_id, callers.identify("Bearer au-env").buyer_id) == ("tencent", None)
    assert len(Callers.from_directory(tmp_path / "none", {"H200_API_SECRET_BUYERS": ""})) == 0


def test_access_secrets_writes_each_buyer_system_a_token_once_and_exports_what_the_api_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.ops.cli import main

    for variable, folder in (("KAFKA", "kafka"), ("REDIS", "redis"), ("API", "api")):
        monkeypatch.setenv(f"H200_{variable}_SECRETS_DIR", str(tmp_path / folder))
    monkeypatch.setenv("H200_BUYER_SYSTEMS", '["tencent"]')
    assert main(["access", "secrets"]) == 0
    assert "api token of buyer tencent" in capsys.readouterr().out
    token = (tmp_path / "api" / "buyers" / "tencent").read_text().strip()
    assert oct((tmp_path / "api" / "buyers" / "tencent").stat().st_mode & 0o777) == "0o600"
    assert main(["access", "secrets"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert (tmp_path / "api" / "buyers" / "tencent").read_text().strip() == token

    assert main(["access", "secrets", "--export"]) == 0
    exported = dict(line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines() if line)
    environ = {name: value.strip("'") for name, value in exported.items() if name.startswith("H200_API_SECRET")}
    callers = Callers.from_directory(tmp_path / "elsewhere", environ)
    assert callers.identify(f"Bearer {token}").buyer_id == "tencent"
    assert callers.identify(f"Bearer {(tmp_path / 'api' / 'auditor').read_text().strip()}").name == "auditor"
