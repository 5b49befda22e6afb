"""A worker whose partitions have records waiting and whose group commits nothing exits to be restarted, and
only then: not while it rebuilds, retries a send, cannot observe the cluster, or when only a commit marker waits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.common import worker as worker_module
from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.stall_watch import Stall
from services.common.worker import EXIT_UNFINISHED
from services.intake import app as intake_app

HELD = ("h200.intake.inbox", 2)


class HaltedError(Exception):
    pass


class FakeProbe:
    def __init__(self, committed: int, end: int, readable: bool = True, fails: bool = False) -> None:
        self.committed, self.end, self.readable, self.fails = committed, end, readable, fails
        self.closed = 0

    async def offsets(self, partitions: set[tuple[str, int]]) -> tuple[dict[Any, int], dict[Any, int]]:
        if self.fails:
            raise ConnectionError("no broker")
        return dict.fromkeys(partitions, self.committed), dict.fromkeys(partitions, self.end)

    async def has_record(self, stall: Stall) -> bool:
        return self.readable

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def halts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    codes: list[int] = []

    def halt(code: int) -> None:
        codes.append(code)
        raise HaltedError

    monkeypatch.setattr(worker_module, "halt", halt)
    return codes


def watched(tmp_path: Path, probe: FakeProbe) -> intake_app.IntakeWorker:
    cluster = ClusterSettings()
    settings = WorkerSettings(worker_id="unit", datadir=tmp_path, stall_after_s=0)  # judged on the first look
    worker = intake_app.IntakeWorker(make_faust_app("intake", cluster, settings), cluster, settings)
    worker.offset_probe = probe  # type: ignore[assignment]
    worker.assigned = {HELD}
    return worker


def test_records_waiting_and_nothing_committed_end_the_process_unfinished(tmp_path: Path, halts: list[int]) -> None:
    worker = watched(tmp_path, FakeProbe(committed=10, end=13))
    with pytest.raises(HaltedError):
        asyncio.run(worker._watch_for_stall())
    assert halts == [EXIT_UNFINISHED]


@pytest.mark.parametrize(
    ("probe", "why"),
    [
        (FakeProbe(committed=13, end=13), "read to the end"),
        (FakeProbe(committed=12, end=13, readable=False), "only a commit marker past the committed offset"),
        (FakeProbe(committed=10, end=13, fails=True), "the cluster does not answer"),
    ],
)
def test_no_exit_without_a_record_waiting_or_without_an_observation(
    tmp_path: Path, halts: list[int], probe: FakeProbe, why: str
) -> None:
    asyncio.run(watched(tmp_path, probe)._watch_for_stall())
    assert halts == [], why


def test_no_exit_while_rebuilding_or_retrying_a_send(tmp_path: Path, halts: list[int]) -> None:
    worker = watched(tmp_path, FakeProbe(committed=10, end=13))
    worker.core.rebuilding.add(HELD)
    asyncio.run(worker._watch_for_stall())
    worker.core.rebuilding.clear()

    real_offsets = worker.offset_probe.offsets

    async def offsets_during_a_retry(partitions: set[tuple[str, int]]) -> Any:
        worker.publisher.retried += 1  # a send failed and is being waited out meanwhile
        return await real_offsets(partitions)

    worker.offset_probe.offsets = offsets_during_a_retry  # type: ignore[method-assign]
    asyncio.run(worker._watch_for_stall())
    assert halts == []


def test_a_failed_observation_closes_the_probe_for_a_fresh_connection(tmp_path: Path, halts: list[int]) -> None:
    probe = FakeProbe(committed=10, end=13, fails=True)
    asyncio.run(watched(tmp_path, probe)._watch_for_stall())
    assert probe.closed == 1
