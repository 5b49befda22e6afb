"""Snapshots written by a forked child (services.common.forked): what is stored is the state as it was at the capture
whatever the worker does next, the writing happens in another process, a failure or a wedged writer is reported
and counted without stopping the worker, and a writer does not outlive its worker."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.forked import ForkedWorkError, can_fork
from services.common.journal import MemoryJournal
from services.common.partitions import PartitionedCore
from services.common.snapshots import FileSnapshots, Snapshot
from tests.unit.test_recovery import INBOX, Counting, Log, inbox, submission

pytestmark = pytest.mark.skipif(not can_fork(), reason="snapshots are written by a forked child on Linux only")


class PickledBy:
    """Pickles as the id of the process that pickled it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return str, (f"pickled by {os.getpid()}",)


class Refuses:
    def __reduce__(self) -> tuple[Any, ...]:
        raise ValueError("this value cannot be written")


class Wedged:
    def __reduce__(self) -> tuple[Any, ...]:
        time.sleep(3600)  # as a child stuck on a lock that another thread held at the fork
        raise AssertionError("unreachable")


def snapshot(state: Any, offset: int = 1) -> Snapshot:
    return Snapshot(INBOX, 0, offset, 0, "v", "0" * 64, state)


def test_the_stored_snapshot_is_the_state_at_its_capture_written_by_another_process(tmp_path: Path) -> None:
    store = FileSnapshots(tmp_path)
    state: dict[str, Any] = {"held": ["A", "B"], "who": PickledBy()}

    async def go() -> Snapshot | None:
        stored = store.capture(snapshot(state))
        state["held"].append("C")  # the worker goes on at once: the snapshot must not see it
        await stored
        return await store.load(INBOX, 0, 1)

    loaded = asyncio.run(go())
    assert loaded is not None and loaded.state["held"] == ["A", "B"]
    assert loaded.state["who"] != f"pickled by {os.getpid()}" and loaded.state["who"].startswith("pickled by ")


def test_without_fork_the_state_is_pickled_on_the_loop_and_stored_the_same(tmp_path: Path) -> None:
    store = FileSnapshots(tmp_path, fork=False)
    state: dict[str, Any] = {"held": ["A"], "who": PickledBy()}

    async def go() -> Snapshot | None:
        stored = store.capture(snapshot(state))
        state["held"].append("B")
        await stored
        return await store.load(INBOX, 0, 1)

    loaded = asyncio.run(go())
    assert loaded is not None and loaded.state == {"held": ["A"], "who": f"pickled by {os.getpid()}"}


def test_a_writer_that_fails_says_why_and_one_that_wedges_is_killed(tmp_path: Path) -> None:
    async def outcome(state: Any, timeout_s: float) -> str:
        try:
            await FileSnapshots(tmp_path, write_timeout_s=timeout_s).capture(snapshot(state))
        except ForkedWorkError as error:
            return str(error)
        return "stored"

    refused = asyncio.run(outcome(Refuses(), 60))
    assert "the snapshot of h200.intake.inbox[0] at 1 failed in its forked writer" in refused
    assert "ValueError: this value cannot be written" in refused
    wedged = asyncio.run(outcome(Wedged(), 0.2))
    assert "it did not finish within 0.2 s and was killed" in wedged
    assert FileSnapshots(tmp_path).offsets(INBOX, 0) == []


def test_a_failed_snapshot_is_counted_and_the_partition_goes_on_deciding(tmp_path: Path) -> None:
    log = Log(inbox([submission(f"R{n}") for n in range(6)]))
    runner = PartitionedCore(Counting(), log.replay, 1_000_000, journal=MemoryJournal(), snapshot_every=2)
    written: list[int] = []
    said: list[str] = []

    class FailingOnce(FileSnapshots):
        failed = False

        def capture(self, taken: Snapshot) -> Any:
            if not self.failed:
                self.failed = True
                return super().capture(snapshot(Refuses(), taken.offset))
            return super().capture(taken)

    runner.snapshots = store = FailingOnce(tmp_path)

    async def decide_all() -> list[int]:
        sizes = []
        for record in log.records:
            sizes.append(len((await runner.handle(record)).outputs))
            await runner.stored()
            written.append(runner.figures.snapshots_written)
            said.append(runner.last_snapshot)
        return sizes

    assert asyncio.run(decide_all()) == [1] * 6  # every order placed, the failure notwithstanding
    assert runner.figures.snapshots_failed == 1 and written == [0, 0, 0, 1, 1, 2]
    assert said[1].startswith("a snapshot of h200.intake.inbox[0] at offset 2, which failed after ")
    assert said[5].startswith("a snapshot of h200.intake.inbox[0] at offset 6, captured in ")
    assert store.offsets(INBOX, 0) == [4, 6]


def test_no_second_snapshot_of_a_partition_is_taken_while_one_is_being_stored(tmp_path: Path) -> None:
    log = Log(inbox([submission(f"R{n}") for n in range(6)]))
    captured: list[int] = []

    class Held(FileSnapshots):
        def __init__(self) -> None:
            super().__init__(tmp_path)
            self.release: asyncio.Future[None] | None = None

        def capture(self, taken: Snapshot) -> Any:
            captured.append(taken.offset)
            self.release = asyncio.get_running_loop().create_future()
            return self.release

    store = Held()
    runner = PartitionedCore(
        Counting(), log.replay, 1_000_000, journal=MemoryJournal(), snapshots=store, snapshot_every=1
    )

    async def go() -> None:
        for record in log.records[:4]:
            await runner.handle(record)
        assert captured == [1]  # offsets 2-4 found the first still being stored
        assert await runner.stored(timeout_s=0.01) == 1  # a stop's wait is bounded: one writer left unfinished
        assert store.release is not None
        store.release.set_result(None)
        assert await runner.stored() == 0
        for record in log.records[4:]:
            await runner.handle(record)

    asyncio.run(go())
    assert captured == [1, 5]  # the first stored, the next taken at once; offset 6 found that one being stored
    assert runner.figures.snapshots_written == 1


def test_a_rebuild_from_forked_snapshots_reaches_the_full_fold(tmp_path: Path) -> None:
    log, journal = Log(inbox([submission(f"R{n}") for n in range(12)])), MemoryJournal()
    store = FileSnapshots(tmp_path)

    async def decide(runner: PartitionedCore, records: list[Any]) -> None:
        for record in records:
            await runner.handle(record)  # no wait for the writer: the state changes while it writes
        await runner.stored()

    first = PartitionedCore(Counting(), log.replay, 1_000_000, journal=journal, snapshots=store, snapshot_every=3)
    asyncio.run(decide(first, log.records[:11]))
    assert first.figures.snapshots_written >= 1
    restarted = PartitionedCore(Counting(), log.replay, 1_000_000, journal=journal, snapshots=store)
    asyncio.run(decide(restarted, log.records[11:]))
    assert restarted.figures.snapshots_used == 1
    full = asyncio.run(PartitionedCore(Counting(), log.replay, 1_000_000).rebuilt_state(INBOX, 0, 12))
    assert restarted.state_of(INBOX, 0) == full


CHILD_OF_A_KILLED_PARENT = """
import asyncio, os, time
from services.common.forked import run_forked

told, tell = os.pipe()

def work():
    os.close(1), os.close(2)  # the test reads the worker's output to its end: the writer must not hold it
    os.write(tell, str(os.getpid()).encode())  # the writer has started: its pid
    time.sleep(3600)  # a write that is still going when its worker is killed

async def main():
    run_forked(work, "a long write", 3600)
    writer = await asyncio.get_running_loop().run_in_executor(None, os.read, told, 32)
    print(writer.decode(), flush=True)
    os._exit(0)  # as a worker killed mid-write

asyncio.run(main())
"""


def ended_within(pid: int, timeout_s: float) -> bool:
    """Whether the process ends within `timeout_s` (waited for on a pidfd: readable once it has exited)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # ended and reaped already
    try:
        readable, _, _ = select.select([handle], [], [], timeout_s)
        return bool(readable)
    finally:
        os.close(handle)


def test_a_writer_does_not_outlive_its_worker() -> None:
    worker = subprocess.run(
        [sys.executable, "-c", CHILD_OF_A_KILLED_PARENT], check=True, timeout=60, capture_output=True, text=True
    )
    writer = int(worker.stdout)
    assert ended_within(writer, 30), f"the writer {writer} outlived its worker"


def test_what_a_writer_killed_mid_write_left_is_removed_by_the_next_write(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    folder = tmp_path / f"{INBOX}-0"
    folder.mkdir()
    left = folder / f"{0:020d}.{int(ended.stdout)}.tmp"  # its writer has ended: nothing will finish it
    writing = folder / f"{0:020d}.{os.getpid()}.tmp"  # a live process's: perhaps still being written
    left.write_bytes(b"half a snapshot")
    writing.write_bytes(b"half a snapshot")

    async def go() -> None:
        await FileSnapshots(tmp_path).capture(snapshot({"held": []}))

    asyncio.run(go())
    assert not left.exists() and writing.exists()
    assert FileSnapshots(tmp_path).offsets(INBOX, 0) == [1]
