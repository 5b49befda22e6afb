"""Fixtures of the end-to-end tier: the four services, the projector and the clock (ticking every
H200_CLOCK_INTERVAL_S, 1 s by default) as processes (services.ops.supervisor)
on a fresh Kafka broker per test module (``module_kafka_bootstrap``) and the session's Redis, each system in
its own read-model namespace. Every test here is marked ``e2e`` by path (tests/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import StartSystem, System

from services.ops.supervisor import SERVICES

# A killed worker's partitions wait for its session to expire before another worker gets them; 6 s is the
# broker's minimum (group.min.session.timeout.ms). Heartbeats must come well within it.
FAST_FAILOVER = {
    f"H200_{service.upper()}_{name}": value
    for service in SERVICES
    for name, value in (("SESSION_TIMEOUT_S", "6"), ("HEARTBEAT_INTERVAL_S", "1"))
}

FAILED = pytest.StashKey[bool]()


def new_system(bootstrap: str, redis_url: str, log_dir: Path, env: dict[str, str] | None = None) -> System:
    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    return System(bootstrap, redis_url, log_dir, namespace, {**FAST_FAILOVER, **(env or {})})


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


def show_logs_if_failed(request: pytest.FixtureRequest, system: System) -> None:
    if request.node.stash.get(FAILED, False):
        print(f"\n===== service logs (namespace {system.namespace}) =====\n{system.tails(60)}")


@pytest.fixture
def start_system(
    module_kafka_bootstrap: str, redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartSystem]:
    """``start_system(instances=None, env=None) -> System``: topics created, every process started and each
    service's group formed; stopped (and its logs printed if the test failed) at teardown."""
    started: list[System] = []

    def _start(instances: dict[str, int] | None = None, env: dict[str, str] | None = None) -> System:
        system = new_system(module_kafka_bootstrap, redis_url, tmp_path / "logs", env)
        started.append(system)
        system.start(instances)
        for service in SERVICES:
            system.wait_for_members(service, (instances or {}).get(service, 1))
        return system

    yield _start
    for system in started:
        show_logs_if_failed(request, system)
        system.stop()


@pytest.fixture(scope="module")
def _module_system(
    module_kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    system = new_system(module_kafka_bootstrap, redis_url, tmp_path_factory.mktemp("system") / "logs")
    try:
        system.start()
        for service in SERVICES:
            system.wait_for_members(service, 1)
        yield system
    finally:
        system.stop()


@pytest.fixture
def module_system(_module_system: System, request: pytest.FixtureRequest) -> Iterator[System]:
    """One system started once for every test of a module (each test keeps to its own buyers and pools);
    its logs are printed after a test that failed."""
    yield _module_system
    show_logs_if_failed(request, _module_system)
