"""The read routes, live changes and console of the API against an in-memory gateway: who may read the ledger,
totals, trails and dead letters, who may re-drive one (the operator alone), what each refusal says, and that the
console page is served whole from the API with no secret and nothing from elsewhere."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from builders_replay import story
from fake_read_model import FakeReadModel
from fastapi.testclient import TestClient
from test_api import FakeGateway

from schemas.codec import ContractError, encode
from schemas.samples import sample_payloads
from services.api.app import create_app
from services.api.callers import Caller, Callers
from services.common.dead_letters import dead_letter
from services.common.records import Record
from services.ops.publish import envelope_for
from services.ops.redrive import Letter
from services.replay.records import LogRecord

CALLERS = Callers(
    {
        "bytedance-token": Caller("buyer:bytedance", "bytedance"),
        "auditor-token": Caller("auditor", None),
        "ops-token": Caller("ops", None),
    }
)
AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
EVERYTHING = ["/v1/ledger", "/v1/totals", "/v1/dead-letters", "/v1/dead-letters/intake/0", "/v1/events?max_events=1"]


def _as(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _letter(
    offset: int,
    value: bytes | None,
    error: ContractError,
    source_offset: int = 17,
    service: str = "intake",
    source: str = "h200.intake.commands",
) -> Letter:
    record = Record(source, 2, source_offset, b"bytedance", value, (("traceparent", b"00-abc-01"),))
    sent = dead_letter(service, record, error, AT, 1_000_000)
    return Letter(service, LogRecord(sent.topic, 0, offset, sent.key, sent.value, 0, tuple(sent.headers)))


def _submission_bytes() -> bytes:
    return encode(envelope_for(next(p for p in sample_payloads() if p.TYPE == "SubmitOrder"), "upstream"))


@pytest.fixture
def gateway() -> FakeGateway:
    fake = FakeGateway()
    fake.model = FakeReadModel().apply(story().log().events)
    fake.letters = [
        _letter(0, b"{not json", ContractError("malformed_json", "not valid JSON")),
        _letter(1, _submission_bytes(), ContractError("processing_failed", "the store did not answer"), 18),
    ]
    return fake


@pytest.fixture
def api(gateway: FakeGateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway, CALLERS, poll_s=0.01)) as client:
        yield client


@pytest.mark.parametrize("path", EVERYTHING)
def test_a_buyer_s_system_reads_neither_the_ledger_nor_totals_nor_dead_letters_nor_live_changes(
    api: TestClient, path: str
) -> None:
    answer = api.get(path, headers=_as("bytedance-token"))

    assert (answer.status_code, answer.json()["code"]) == (403, "auditor_only")


@pytest.mark.parametrize("path", EVERYTHING)
def test_no_token_reads_nothing(api: TestClient, path: str) -> None:
    answer = api.get(path)

    assert (answer.status_code, answer.json()["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize("token", ["auditor-token", "ops-token"])
@pytest.mark.parametrize("path", EVERYTHING)
def test_the_auditor_and_the_operator_read_everything(api: TestClient, path: str, token: str) -> None:
    assert api.get(path, headers=_as(token)).status_code == 200


def test_the_ledger_as_of_a_moment_and_for_a_buyer(api: TestClient) -> None:
    now = api.get("/v1/ledger", headers=_as("auditor-token")).json()
    then = api.get(
        "/v1/ledger", params={"as_of": "2026-01-28T10:30:00Z", "buyer": "bytedance"}, headers=_as("auditor-token")
    ).json()

    assert now["as_of"] is None and len(now["lines"]) > len(then["lines"]) > 0
    assert then["as_of"] == "2026-01-28T10:30:00+00:00" and then["selection"] == {"buyer": "bytedance"}
    assert {line["buyer_id"] for line in then["lines"]} == {"bytedance"}
    assert set(now) >= {"namespace", "lines", "totals", "buyers", "batches"}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"as_of": "last tuesday"}, 400, "invalid_as_of"),
        ({"as_of": "2026-01-28T10:30:00"}, 400, "invalid_as_of"),
        ({"buyer": "nobody"}, 404, "unknown_selection"),
        ({"batch": "B99"}, 404, "unknown_selection"),
    ],
)
def test_a_bad_moment_or_an_unknown_buyer_or_batch_is_refused_saying_why(
    api: TestClient, params: dict[str, str], status: int, code: str
) -> None:
    answer = api.get("/v1/ledger", params=params, headers=_as("auditor-token"))

    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert answer.json()["detail"]


def test_totals_are_supply_against_demand_over_time(api: TestClient) -> None:
    totals = api.get("/v1/totals", headers=_as("ops-token")).json()

    assert totals["figures"] == ["manufactured", "requested", "approved", "allocated", "shipped", "delivered"]
    assert totals["points"][-1]["manufactured"] == 900 and totals["now"]["allocated"] > 0


def test_an_order_s_trail_is_its_buyer_s_and_the_auditor_s_to_read(api: TestClient) -> None:
    own = api.get("/v1/orders/bytedance/BD-1/trail", headers=_as("bytedance-token"))
    other = api.get("/v1/orders/alibaba/AL-1/trail", headers=_as("bytedance-token"))
    audited = api.get("/v1/orders/alibaba/AL-1/trail", headers=_as("auditor-token"))
    missing = api.get("/v1/orders/alibaba/AL-NONE/trail", headers=_as("auditor-token"))

    assert own.status_code == 200 and own.json()["trail"][0]["type"] == "OrderPlaced"
    assert (other.status_code, other.json()["code"]) == (403, "sender_not_buyer")
    assert audited.status_code == 200 and audited.json()["buyer_id"] == "alibaba"
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_order")


def test_dead_letters_are_listed_with_counts_and_narrowed_by_code(api: TestClient) -> None:
    every = api.get("/v1/dead-letters", headers=_as("auditor-token")).json()
    malformed = api.get("/v1/dead-letters", params={"code": "malformed_json"}, headers=_as("auditor-token")).json()

    assert [(row["offset"], row["code"]) for row in every["dead_letters"]] == [
        (0, "malformed_json"),
        (1, "processing_failed"),
    ]
    assert every["counts"] == {"intake": {"malformed_json": 1, "processing_failed": 1}}
    assert [row["offset"] for row in malformed["dead_letters"]] == [0]
    unknown = api.get("/v1/dead-letters", params={"service": "billing"}, headers=_as("auditor-token"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_service")


def test_one_dead_letter_says_whether_it_decodes_now_and_what_a_re_drive_would_send(api: TestClient) -> None:
    bad = api.get("/v1/dead-letters/intake/0", headers=_as("auditor-token")).json()
    good = api.get("/v1/dead-letters/intake/1", headers=_as("auditor-token")).json()

    assert bad["decodes_now"]["decodes"] is False and bad["redrive"]["possible"] is False
    assert bad["dlq_headers"]["dlq.source_offset"] == "17" and bad["original_headers"] == {"traceparent": "00-abc-01"}
    assert good["decodes_now"]["type"] == "SubmitOrder"
    assert good["redrive"] | {"new_id": "-"} == {
        "possible": True,
        "topic": "h200.intake.commands",
        "partition": 2,
        "key": "bytedance",
        "type": "SubmitOrder",
        "new_id": "-",
        "causation_id": good["decodes_now"]["id"],
    }
    missing = api.get("/v1/dead-letters/intake/7", headers=_as("auditor-token"))
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_dead_letter")
    assert "offsets 0 to 1" in missing.json()["detail"]


@pytest.mark.parametrize(("token", "code"), [("auditor-token", "ops_only"), ("bytedance-token", "ops_only")])
def test_only_the_operator_re_drives_and_a_refused_caller_sends_nothing(
    api: TestClient, gateway: FakeGateway, token: str, code: str
) -> None:
    answer = api.post("/v1/dead-letters/intake/1/redrive", headers=_as(token))

    assert (answer.status_code, answer.json()["code"]) == (403, code)
    assert "operator" in answer.json()["detail"]
    assert gateway.resent == []
    assert api.post("/v1/dead-letters/intake/1/redrive").status_code == 401


def test_the_operator_re_drives_once_under_a_new_id_and_a_dry_run_sends_nothing(
    api: TestClient, gateway: FakeGateway
) -> None:
    dry = api.post("/v1/dead-letters/intake/1/redrive", params={"dry_run": "true"}, headers=_as("ops-token")).json()
    assert (dry["outcome"], gateway.resent) == ("would_send", [])

    sent = api.post("/v1/dead-letters/intake/1/redrive", headers=_as("ops-token")).json()
    again = api.post("/v1/dead-letters/intake/1/redrive", headers=_as("ops-token")).json()

    assert (sent["outcome"], sent["at"], sent["new_id"]) == ("sent", "h200.intake.commands[0]@0", dry["new_id"])
    assert (again["outcome"], again["new_id"]) == ("already_sent", sent["new_id"])
    [record] = gateway.resent
    assert (str(record.envelope.id), record.partition, record.key) == (sent["new_id"], 2, b"bytedance")
    assert sent["new_id"] != sent["causation_id"]


def test_a_dead_letter_that_does_not_decode_is_not_re_driven_and_says_why(
    api: TestClient, gateway: FakeGateway
) -> None:
    answer = api.post("/v1/dead-letters/intake/0/redrive", headers=_as("ops-token"))

    assert (answer.status_code, answer.json()["code"]) == (409, "redrive_refused")
    assert "does not decode" in answer.json()["detail"]
    assert gateway.resent == []


def test_a_re_drive_to_a_topic_the_api_may_not_write_is_refused_naming_the_command_to_run(
    api: TestClient, gateway: FakeGateway
) -> None:
    rule = next(p for p in sample_payloads() if p.TYPE == "AllocationPolicySet")
    failed = ContractError("processing_failed", "the store did not answer")
    gateway.letters.append(_letter(0, encode(envelope_for(rule, "authority")), failed, 5, "approval", "h200.policy"))

    answer = api.post("/v1/dead-letters/approval/0/redrive", headers=_as("ops-token"))

    assert (answer.status_code, answer.json()["code"]) == (409, "redrive_elsewhere")
    assert "h200 dead-letters redrive approval 0" in answer.json()["detail"]
    assert gateway.resent == []


def test_a_re_drive_to_a_topic_outside_the_catalogue_is_refused(api: TestClient, gateway: FakeGateway) -> None:
    answer = api.post("/v1/dead-letters/intake/1/redrive", params={"to": "h200.nowhere"}, headers=_as("ops-token"))

    assert (answer.status_code, answer.json()["code"]) == (409, "redrive_refused")
    assert gateway.resent == []


def test_the_caller_route_says_who_the_token_names_and_whether_it_may_re_drive(api: TestClient) -> None:
    assert api.get("/v1/caller", headers=_as("ops-token")).json()["may_redrive"] is True
    assert api.get("/v1/caller", headers=_as("auditor-token")).json() == {
        "caller": "auditor",
        "buyer_id": None,
        "reads_everything": True,
        "may_redrive": False,
    }


def _events(api: TestClient, count: int, last_id: str | None = None) -> list[dict[str, Any]]:
    headers = _as("auditor-token") | ({"Last-Event-ID": last_id} if last_id else {})
    with api.stream("GET", f"/v1/events?max_events={count}", headers=headers) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = "".join(answer.iter_text())
    frames = [chunk for chunk in text.split("\n\n") if chunk.startswith("id:")]
    return [
        dict(line.split(": ", 1) for line in frame.splitlines()) | {"data": json.loads(frame.split("data: ", 1)[1])}
        for frame in frames
    ]


def test_live_changes_are_server_sent_events_naming_the_read_model_s_position(api: TestClient) -> None:
    [event] = _events(api, 1)

    assert event["event"] == "changed" and event["id"] == f"h200:{event['data']['position']}"
    assert event["data"]["position"] > 0 and "h200.events" in event["data"]["moved"]


def test_a_client_resuming_from_an_older_position_gets_the_current_one_at_once(api: TestClient) -> None:
    [first] = _events(api, 1)
    [resumed] = _events(api, 1, last_id="h200:1")

    assert resumed["id"] == first["id"]


def test_a_client_resuming_at_the_current_position_waits_for_the_next_change(
    api: TestClient, gateway: FakeGateway
) -> None:
    [first] = _events(api, 1)
    events: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: events.extend(_events(api, 1, last_id=first["id"])))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive() and events == []
    gateway.model.applied.add("one more event")
    waiting.join(10)
    assert [event["data"]["position"] for event in events] == [first["data"]["position"] + 1]


def test_the_console_is_served_whole_by_the_api_with_no_secret_and_nothing_from_elsewhere(api: TestClient) -> None:
    page = api.get("/console")
    script = api.get("/console/console.js")
    style = api.get("/console/console.css")

    assert [answer.status_code for answer in (page, script, style)] == [200, 200, 200]
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for text in (page.text, script.text, style.text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
        assert "token" not in text or "sessionStorage" in script.text
    assert 'id="chart"' in page.text and 'id="as-of"' in page.text and 'id="dead-letters"' in page.text
    assert api.get("/console/secrets.txt").status_code == 404


def test_the_operator_s_token_is_read_from_its_file_or_the_environment_compose_passes(tmp_path: Any) -> None:
    (tmp_path / "ops").write_text("t0ken-ops\n")

    from_file = Callers.from_directory(tmp_path).identify("Bearer t0ken-ops")
    from_env = Callers.from_directory(tmp_path / "none", {"H200_API_SECRET_OPS": "ops-env"}).identify("Bearer ops-env")

    assert (from_file.name, from_file.buyer_id) == ("ops", None)
    assert from_env.name == "ops"


def test_access_secrets_writes_the_operator_s_token_and_exports_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.ops.cli import main

    for variable, folder in (("KAFKA", "kafka"), ("REDIS", "redis"), ("API", "api")):
        monkeypatch.setenv(f"H200_{variable}_SECRETS_DIR", str(tmp_path / folder))
    monkeypatch.setenv("H200_BUYER_SYSTEMS", "[]")
    assert main(["access", "secrets"]) == 0
    assert "api token ops" in capsys.readouterr().out
    assert main(["access", "secrets", "--export"]) == 0
    token = (tmp_path / "api" / "ops").read_text().strip()
    assert f"export H200_API_SECRET_OPS={token}" in capsys.readouterr().out.splitlines()
