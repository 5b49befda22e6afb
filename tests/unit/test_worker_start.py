"""What a worker's composition root sets up before it starts: the cycle collector's thresholds from its settings,
and faust's table manager without its one-second pause (services.common.worker)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.approval import domain as approval
from services.approval.app import INBOX, ROUTES, create_app
from services.common.faust_app import PromptTableManager, make_faust_app
from services.common.partitions import REBUILD
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import ServiceWorker


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name, value in {
        "H200_KAFKA_USERNAME": "approval",
        "H200_KAFKA_PASSWORD": "unused",
        "H200_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "H200_APPROVAL_DATADIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)  # the test process keeps its own


def test_the_collector_thresholds_come_from_the_settings_and_default_above_pythons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.set_threshold(700, 10, 10)
    create_app()
    assert gc.get_threshold() == (50_000, 20, 100)
    monkeypatch.setenv("H200_APPROVAL_GC_THRESHOLDS", "[1234, 7, 9]")
    create_app()
    assert gc.get_threshold() == (1234, 7, 9)


def test_thresholds_that_are_not_three_integers_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H200_APPROVAL_GC_THRESHOLDS", "[1234, 7]")
    with pytest.raises(ValueError, match="gc_thresholds"):
        WorkerSettings.for_service("approval")


def test_the_table_manager_starts_without_sleeping() -> None:
    app = create_app()
    tables = app.tables
    assert isinstance(tables, PromptTableManager)
    slept: list[float] = []
    steps: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def step(name: str) -> None:
        steps.append(name)

    async def update_channels() -> None:
        await step("channels")

    async def recovery_start() -> None:
        await step("recovery")

    recovery: Any = tables.recovery
    tables.sleep = sleep  # type: ignore[method-assign]
    tables._update_channels = update_channels  # type: ignore[method-assign]
    recovery.start = recovery_start
    asyncio.run(tables.on_start())
    assert slept == [] and steps == ["channels", "recovery"]


def test_a_rebuild_may_take_longer_than_a_send_before_its_attempt_is_given_up() -> None:
    # A rebuild of a long partition folds for minutes; with the send back-off's 60 s attempts it was abandoned and
    # begun again without end. It gets the rebuild back-off, whose attempts last an hour.
    settings = WorkerSettings.for_service("approval")
    worker = ServiceWorker(
        make_faust_app("approval", ClusterSettings(), settings),
        "approval",
        approval,
        INBOX,
        ROUTES,
        ClusterSettings(),
        settings,
    )
    assert worker.core._backoff is REBUILD
    assert REBUILD.attempt_timeout_s >= 3600 > settings.send_timeout_s


def test_a_clean_stop_closes_the_consumers_rebuilds_read_with() -> None:
    settings = WorkerSettings.for_service("approval")
    app = make_faust_app("approval", ClusterSettings(), settings)
    worker = ServiceWorker(app, "approval", approval, INBOX, ROUTES, ClusterSettings(), settings)
    closed: list[bool] = []

    class Reads:
        async def close(self) -> None:
            closed.append(True)

    worker.reads = Reads()  # type: ignore[assignment]
    asyncio.run(app.on_before_shutdown.send())
    assert closed == [True]
