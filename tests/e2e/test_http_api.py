"""The HTTP API as an upstream system uses it, against the real services: submit (concurrently, several at once),
read the outcome, be told exactly what is wrong with a bad request, cancel."""

from __future__ import annotations

import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

from harness import StartSystem

from schemas import builders as s
from schemas.codec import decode
from schemas.intake import OrderPlaced

POOL = "api"
BUYER = "api-buyer"
OTHER = "api-other"
TOKENS: dict[str, str] = {}
"""Bearer tokens of the buyer systems, written before the API starts (it reads them at start)."""


def _give_tokens(*buyers: str) -> None:
    directory = Path(os.environ["H200_API_SECRETS_DIR"]) / "buyers"
    directory.mkdir(parents=True, exist_ok=True)
    for buyer in buyers:
        TOKENS[buyer] = secrets.token_hex(16)
        (directory / buyer).write_text(TOKENS[buyer] + "\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(
    port: int, method: str, path: str, body: Any = None, raw: bytes | None = None, as_buyer: str | None = BUYER
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"content-type": "application/json"}
    if as_buyer is not None:
        headers["authorization"] = f"Bearer {TOKENS[as_buyer]}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _ready(port: int) -> bool:
    try:
        return _call(port, "GET", "/ready")[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def _order(ref: str, quantity: int) -> dict[str, Any]:
    return json.loads(s.submit(BUYER, ref, quantity, pool=POOL).model_dump_json())


def test_an_upstream_system_submits_reads_outcomes_and_is_told_what_is_wrong(start_system: StartSystem) -> None:
    port = _free_port()
    _give_tokens(BUYER, OTHER)
    system = start_system(env={"H200_API_PORT": str(port)})
    system.publish([s.use_rules(), *s.cleared_buyer(BUYER, 1_000), s.allocation_rule(pool=POOL)])
    # The races between policies and orders are other tests' subject (test_concurrent_flow): here the authorities
    # have spoken before the upstream system submits, so every outcome is the gates' verdict on the order itself.
    system.settle()
    system.wait_until(f"the API on {port} ready", lambda: _ready(port))

    # Five submissions at once, no settling: each is answered with its outcome as the services decided it
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda n: _call(port, "POST", "/v1/orders?wait=30", _order(f"API-{n}", 100)), range(5)))
    assert [status for status, _ in answers] == [200] * 5, answers
    assert {body["outcome"]["status"] for _, body in answers} == {"approved"}, answers
    # and each has its answer event on h200.outcomes, which the API (a gateway) reads: its order placed
    commands = {body["command_id"] for _, body in answers}
    outcomes = [decode(record.value) for record in system.records("h200.outcomes", as_principal="api")]
    placed = {str(e.causation_id): e for e in outcomes if isinstance(e.payload, OrderPlaced)}
    assert commands <= set(placed), (commands, outcomes)
    assert all(placed[c].correlation_id == UUID(c) and placed[c].key == BUYER for c in commands)

    # A bad request is refused with the field at fault, and nothing reaches the services
    bad = {**_order("API-BAD", 100), "quantity": "100"}
    status, refusal = _call(port, "POST", "/v1/orders", bad)
    assert (status, refusal["code"]) == (422, "invalid_payload")
    assert "quantity" in refusal["detail"]
    status, refusal = _call(port, "POST", "/v1/orders", raw=b'{"a":' * 5000 + b"1" + b"}" * 5000)
    assert (status, refusal["code"]) == (400, "too_deep")

    # A submission intake refuses on its own checks is answered with intake's reasons
    cheap = {**_order("API-CHEAP", 100), "unit_price_cents": 100}
    status, body = _call(port, "POST", "/v1/orders?wait=30", cheap)
    assert status == 200 and body["outcome"]["status"] == "rejected_at_intake", body

    # The order reads back with its trail; a cancellation goes through
    status, order = _call(port, "GET", f"/v1/orders/{BUYER}/API-0")
    assert status == 200 and order["status"] == "approved" and order["trail"], order
    status, _ = _call(
        port,
        "POST",
        f"/v1/orders/{BUYER}/API-0/cancellation",
        {"reason": "plan changed", "requested_at": "2026-01-28T10:00:00Z"},
    )
    assert status == 202
    system.wait_until(
        "API-0 cancelled in the read model",
        lambda: _call(port, "GET", f"/v1/orders/{BUYER}/API-0")[1].get("status") == "cancelled",
    )
    # Another buyer's system may neither cancel nor read the order; no token, no answer
    cancel = {"reason": "not mine", "requested_at": "2026-01-28T10:00:00Z"}
    status, refusal = _call(port, "POST", f"/v1/orders/{BUYER}/API-1/cancellation", cancel, as_buyer=OTHER)
    assert (status, refusal["code"]) == (403, "sender_not_buyer")
    assert _call(port, "GET", f"/v1/orders/{BUYER}/API-1", as_buyer=OTHER)[0] == 403
    assert _call(port, "GET", f"/v1/orders/{BUYER}/API-1", as_buyer=None) == (
        401,
        {"code": "unauthenticated", "detail": "send `Authorization: Bearer <token>` with your buyer system's token"},
    )
    assert _call(port, "GET", f"/v1/orders/{BUYER}/API-1")[1]["status"] == "approved"
    status, unknown = _call(port, "GET", f"/v1/orders/{BUYER}/API-NEVER")
    assert (status, unknown["detail"]["code"]) == (404, "unknown_order")
    assert system.store.dead_letters() == {}
