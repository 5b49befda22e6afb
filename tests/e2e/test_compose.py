"""The compose stack as shipped: docker-compose.yml under a random project name on free loopback ports, a small
scenario published from the host, the ledger in Redis and the audit of the event log checked, everything
removed afterwards (``docker-compose down -v``).

Builds nothing: the images come from ``make images`` (infra/images/build.sh); a missing one fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer
from session_logins import redis_login_url

from schemas.base import Message
from schemas.principals import ADMIN, PRINCIPALS
from schemas.supply import BatchManufactured
from services.api.callers import AUDITOR, AUDITOR_VARIABLE
from services.common.kafka_auth import kafka_python_options
from services.ops import scenario
from services.ops.access import CONTROLLER, REDIS_USERS, ensure_secrets, read_secret, secret_variable
from services.ops.audit import check_invariants, ledger_rows, read_log
from services.ops.publish import publish
from services.ops.settle import wait_until_settled
from services.projector.store import ReadModelStore

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGES = {  # the variables docker-compose.yml and infra/images/build.sh read, with their defaults
    "H200_KAFKA_IMAGE": "h200/kafka:4.4.0",
    "H200_REDIS_IMAGE": "h200/redis:7",
    "H200_SERVICES_IMAGE": "h200/services:dev",
}
LONG_RUNNING = ("kafka", "redis", "intake", "approval", "allocation", "fulfilment", "projector", "clock", "api")
WEB = {  # the service's /metrics, /health and /ready port: the variable docker-compose.yml reads for it
    "intake": "H200_COMPOSE_INTAKE_WEB_PORT",
    "approval": "H200_COMPOSE_APPROVAL_WEB_PORT",
    "allocation": "H200_COMPOSE_ALLOCATION_WEB_PORT",
    "fulfilment": "H200_COMPOSE_FULFILMENT_WEB_PORT",
    "projector": "H200_COMPOSE_PROJECTOR_PORT",
    "api": "H200_COMPOSE_API_PORT",
}
UP_TIMEOUT_S = 180.0  # `up -d` returns once Kafka and Redis are healthy and the topics exist
HEALTHY_TIMEOUT_S = 120.0  # then every service's healthcheck (GET /ready) passes
SETTLE_TIMEOUT_S = 90.0


# ------------------------------------------------------------------------------------------------ the stack


def _tool(variable: str, *candidates: str) -> str | None:
    if os.environ.get(variable):
        return os.environ[variable]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on 127.0.0.1 right now (held together, so the OS cannot hand one out twice)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@dataclass
class ComposeStack:
    """One `docker-compose -p <project>` instance of docker-compose.yml."""

    docker: str
    compose: str
    project: str
    kafka_port: int
    controller_port: int
    redis_port: int
    web_ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return redis_login_url(self.redis_port, "admin")

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [self.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        return subprocess.run(
            command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )

    def logs(self, tail: int = 50) -> str:
        try:
            result = self.run("logs", "--no-color", "--tail", str(tail), timeout=60)
        except subprocess.TimeoutExpired:
            return "<docker-compose logs timed out>"
        return result.stdout + result.stderr

    def containers(self) -> dict[str, Any]:
        """`docker inspect` of every container of the project, by compose service name."""
        ids = self.run("ps", "-q", timeout=30).stdout.split()
        if not ids:
            return {}
        found = subprocess.run([self.docker, "inspect", *ids], capture_output=True, text=True, timeout=30, check=False)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in json.loads(found.stdout or "[]")}

    def health(self) -> dict[str, str | None]:
        """The healthcheck status of every long-running container (None: no container or no healthcheck)."""
        containers = self.containers()
        return {
            name: (containers.get(name, {}).get("State", {}).get("Health") or {}).get("Status") for name in LONG_RUNNING
        }

    def wait_healthy(self, timeout_s: float) -> dict[str, str | None]:
        """Poll until every container is healthy, one has turned unhealthy, or `timeout_s` passed; the last status."""
        deadline = time.monotonic() + timeout_s
        while True:
            health = self.health()
            done = all(s == "healthy" for s in health.values()) or "unhealthy" in health.values()
            if done or time.monotonic() > deadline:
                return health
            time.sleep(1.0)

    def get(self, service: str, page: str, token: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.web_ports[service]}{page}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()

    def problems(self) -> list[str]:
        """What is not as `up -d` promised: a container not running, not healthy, restarted, or topics failed."""
        containers = self.containers()
        problems = []
        for name in LONG_RUNNING:
            state = containers.get(name, {}).get("State")
            if state is None:
                problems.append(f"{name}: no container")
            elif state["Status"] != "running":
                problems.append(f"{name}: {state['Status']} (exit code {state['ExitCode']})")
            elif state.get("Health") and state["Health"]["Status"] != "healthy":
                problems.append(f"{name}: {state['Health']['Status']}")
            elif containers[name]["RestartCount"]:
                problems.append(f"{name}: restarted {containers[name]['RestartCount']} time(s) by its restart policy")
        topics = containers.get("topics", {}).get("State")
        if topics is None or topics["Status"] != "exited" or topics["ExitCode"] != 0:
            problems.append(f"topics: {topics and topics['Status']} (exit code {topics and topics['ExitCode']})")
        return problems


def _require_images(docker: str) -> None:
    for variable, default in IMAGES.items():
        image = os.environ.get(variable) or default
        try:
            found = subprocess.run(
                [docker, "image", "inspect", image], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(
                f"`{docker} image inspect` failed ({exc}): is a Docker engine running? `make images`", pytrace=False
            )
        if found.returncode != 0:
            if "no such image" not in found.stderr.lower():
                pytest.fail(f"`docker image inspect {image}`: {found.stderr.strip()}: run `make images`", pytrace=False)
            pytest.fail(
                f"Docker image {image} (${variable}) is missing: run `make images` (infra/images/build.sh), "
                "which builds the Kafka, Redis and services images locally",
                pytrace=False,
            )


def _show(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture: teardown output of a passed teardown is otherwise never shown."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():
        print(text, flush=True)


def _secrets() -> dict[str, str]:
    """What `h200 access secrets --export` gives docker-compose: the session's passwords, one variable each."""
    kafka, redis_dir = Path(os.environ["H200_KAFKA_SECRETS_DIR"]), Path(os.environ["H200_REDIS_SECRETS_DIR"])
    ensure_secrets(kafka)
    ensure_secrets(redis_dir, REDIS_USERS)
    found = {secret_variable(name): read_secret(kafka, name) for name in (ADMIN, CONTROLLER, *PRINCIPALS)}
    found |= {secret_variable(name, "REDIS"): read_secret(redis_dir, name) for name in REDIS_USERS}
    found[AUDITOR_VARIABLE] = (Path(os.environ["H200_API_SECRETS_DIR"]) / AUDITOR).read_text().strip()
    return found


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    docker = _tool("DOCKER", "docker")
    compose = _tool("DOCKER_COMPOSE", "docker-compose")
    if docker is None or compose is None:
        pytest.fail("the docker CLI and docker-compose (Debian: docker.io, docker-compose) are needed", pytrace=False)
    _require_images(docker)
    kafka_port, controller_port, redis_port, *others = _free_ports(3 + len(WEB))
    web_ports = dict(zip(WEB, others, strict=True))
    env = {
        **os.environ,
        "H200_COMPOSE_KAFKA_PORT": str(kafka_port),
        "H200_COMPOSE_CONTROLLER_PORT": str(controller_port),
        "H200_COMPOSE_REDIS_PORT": str(redis_port),
        **{WEB[service]: str(port) for service, port in web_ports.items()},
        **_secrets(),
    }
    stack = ComposeStack(
        docker, compose, f"h200test{uuid.uuid4().hex[:10]}", kafka_port, controller_port, redis_port, web_ports, env
    )
    failures_before = request.session.testsfailed
    try:
        try:
            up = stack.run("up", "-d", timeout=UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`docker-compose up -d` took over {UP_TIMEOUT_S:.0f} s\n{stack.logs()}", pytrace=False)
        if up.returncode != 0:
            pytest.fail(f"`docker-compose up -d` failed:\n{up.stderr}\n{stack.logs()}", pytrace=False)
        stack.wait_healthy(HEALTHY_TIMEOUT_S)  # `up -d` waits only for what others depend on
        problems = stack.problems()
        if problems:
            pytest.fail(f"the stack is not up: {'; '.join(problems)}\n{stack.logs()}", pytrace=False)
        yield stack
    finally:
        if request.session.testsfailed > failures_before:
            _show(request, f"\n===== docker-compose -p {stack.project} logs --tail 50 =====\n{stack.logs()}")
        try:
            down = stack.run("down", "-v", "--remove-orphans", "-t", "10", timeout=120)
        except subprocess.TimeoutExpired:
            _show(request, f"`docker-compose -p {stack.project} down -v` timed out: remove its containers by hand")
        else:
            if down.returncode != 0:
                _show(request, f"`docker-compose -p {stack.project} down -v` failed:\n{down.stderr}")


# ------------------------------------------------------------------------------------------------ the system


@dataclass
class Client:
    """What ops does from the host: publish, then wait until every service and the projector have caught up."""

    stack: ComposeStack
    store: ReadModelStore
    admin: KafkaAdminClient
    consumer: KafkaConsumer

    def play(self, messages: Sequence[Message]) -> None:
        publish(self.stack.bootstrap, messages)
        wait_until_settled(self.admin, self.consumer, self.store, timeout_s=SETTLE_TIMEOUT_S)


@pytest.fixture
def client(stack: ComposeStack) -> Iterator[Client]:
    with (
        closing(redis.Redis.from_url(stack.redis_url, decode_responses=True)) as client,
        closing(
            KafkaAdminClient(**kafka_python_options(), bootstrap_servers=stack.bootstrap, client_id="h200-compose-test")
        ) as admin,
        closing(
            KafkaConsumer(
                **kafka_python_options(), bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False
            )
        ) as consumer,
    ):
        yield Client(stack, ReadModelStore(client), admin, consumer)


# ------------------------------------------------------------------------------------------------ the test


def three_orders() -> list[Message]:
    """75,000 chips asked for, within every licence and quota; approved in submission order."""
    return [
        scenario.order("bytedance", "BD-C-001", 30_000, scenario.MIX, scenario.at(1, 26, 9)),
        scenario.order("alibaba", "AL-C-001", 20_000, scenario.MIX, scenario.at(1, 26, 10)),
        scenario.order("tencent", "TC-C-001", 25_000, scenario.MIX, scenario.at(1, 27, 9)),
    ]


def one_batch() -> list[Message]:
    return [
        BatchManufactured(
            batch_id="TSMC-C01", pool_id="h200", quantity=60_000, site="TSMC Fab 18, Tainan", ready_at=scenario.at(2, 2)
        )
    ]


def test_compose_stack_serves_one_batch_first_approved_first_served(client: Client) -> None:
    # Phase by phase, as the demo does: the rules are known before the orders, the orders approved before supply.
    client.play(scenario.rules())
    for placed in three_orders():  # one after the other: first approved is the order approval learns of them
        client.play([placed])
    client.play(one_batch())

    ledger = [line for line in client.store.ledger() if line["status"] == "allocated"]
    assert sorted((line["buyer_id"], line["batch_id"], int(line["quantity"])) for line in ledger) == [
        ("alibaba", "TSMC-C01", 20_000),
        ("bytedance", "TSMC-C01", 30_000),
        ("tencent", "TSMC-C01", 10_000),  # what is left of 60,000 after the two earlier approvals
    ]
    assert {line["rule"] for line in ledger} == {"first_approved_first_served"}
    log = read_log(client.stack.bootstrap)
    assert check_invariants(log) == []
    assert sorted(row["allocation_id"] for row in ledger_rows(log)) == sorted(line["allocation_id"] for line in ledger)
    assert client.store.dead_letters() == {}
    assert client.stack.problems() == []  # nothing crashed and was quietly restarted by `restart: on-failure`


def test_compose_services_are_healthy_and_answer_metrics(stack: ComposeStack) -> None:
    # Every long-running container has a healthcheck (the services' probe GET /ready) and passes it.
    assert stack.health() == {name: "healthy" for name in LONG_RUNNING}
    status, ready = stack.get("allocation", "/ready")
    assert (status, json.loads(ready)["ready"]) == (200, True)
    status, metrics = stack.get("allocation", "/metrics")
    assert status == 200
    assert "h200_records_decided_total" in metrics
    status, metrics = stack.get("projector", "/metrics")
    assert status == 200
    assert "h200_events_applied_total" in metrics
    # The HTTP API answers from the same read models the CLI reads.
    auditor = (Path(os.environ["H200_API_SECRETS_DIR"]) / AUDITOR).read_text().strip()
    status, ledger = stack.get("api", "/v1/ledger", token=auditor)
    assert status == 200
    document = json.loads(ledger)
    assert (document["namespace"], type(document["lines"])) == ("h200", list)
