"""The supervisor restarts a process that exits, after a back-off that doubles up to a cap and starts over once
the process has run for a while, and restarts nothing once it is asked to stop. A clock is injected: no sleeping,
no processes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.ops.supervisor import Process, RestartPolicy, Supervisor


class Exited:
    def __init__(self, code: int | None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


class FakeProcess(Process):
    def start(self) -> None:
        self.starts = getattr(self, "starts", 0) + 1
        self.popen = Exited(None)  # type: ignore[assignment]

    def exit(self, code: int) -> None:
        self.popen = Exited(code)  # type: ignore[assignment]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def supervised() -> tuple[Supervisor, FakeProcess, Clock]:
    clock = Clock()
    supervisor = Supervisor(Path("unused"), env={}, restart=RestartPolicy(), clock=clock)
    process = FakeProcess("projector", ["true"], Path("unused.log"), {})
    process.start()
    supervisor.processes["projector"] = process
    supervisor.supervise_once()  # seen running
    return supervisor, process, clock


def restart_delays(supervisor: Supervisor, process: FakeProcess, clock: Clock, exits: int) -> list[float]:
    """Let the process exit at once after each start; the waits before each restart."""
    delays = []
    for _ in range(exits):
        process.exit(1)
        supervisor.supervise_once()
        due = supervisor.restarts["projector"].due_at
        assert due is not None
        delays.append(due - clock.now)
        clock.now = due - 0.01
        supervisor.supervise_once()
        assert not process.alive, "not restarted before it is due"
        clock.now = due
        supervisor.supervise_once()
        assert process.alive
    return delays


def test_the_back_off_doubles_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_process_that_keeps_exiting_is_restarted_with_growing_waits() -> None:
    supervisor, process, clock = supervised()
    assert restart_delays(supervisor, process, clock, 7) == [1, 2, 4, 8, 16, 30, 30]
    assert process.starts == 8


def test_a_process_that_ran_for_a_while_is_restarted_after_one_second_again() -> None:
    supervisor, process, clock = supervised()
    restart_delays(supervisor, process, clock, 4)
    clock.now += 61
    assert restart_delays(supervisor, process, clock, 2) == [1, 2]


def test_each_restart_is_logged_with_the_exit_code(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="h200.supervisor")
    supervisor, process, clock = supervised()
    process.exit(75)
    supervisor.supervise_once()
    clock.now += 1
    supervisor.supervise_once()
    assert "projector exited with code 75" in caplog.text
    assert "restarting projector (restart 1 in a row)" in caplog.text


def test_nothing_is_restarted_once_the_supervisor_is_stopping() -> None:
    supervisor, process, clock = supervised()
    process.exit(1)
    supervisor.supervise_once()
    supervisor.stopping.set()
    clock.now += 60
    supervisor.supervise_once()
    assert not process.alive and process.starts == 1


def test_without_a_policy_an_exit_is_reported_not_restarted() -> None:
    supervisor = Supervisor(Path("unused"), env={})
    process = FakeProcess("intake-1", ["true"], Path("unused.log"), {})
    process.start()
    process.exit(2)
    supervisor.processes["intake-1"] = process
    with pytest.raises(RuntimeError, match="intake-1"):
        supervisor.check_alive()
