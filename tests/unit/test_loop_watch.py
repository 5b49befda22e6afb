"""The event-loop watch: a loop held by synchronous work is measured, counted and logged once per episode."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry

from services.common.loop_watch import LoopWatch, blocked_histogram
from services.common.metrics import render


def watch(registry: CollectorRegistry, doing: str = "") -> LoopWatch:
    return LoopWatch("allocation", blocked_histogram(registry, "allocation"), every=0.02, doing=lambda: doing)


def count_above(registry: CollectorRegistry, bound: str) -> float:
    for line in render(registry).decode().splitlines():
        if line.startswith(f'h200_event_loop_blocked_seconds_bucket{{le="{bound}"'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no bucket {bound}")


def test_a_loop_held_by_synchronous_work_is_measured_as_blocked() -> None:
    registry = CollectorRegistry()
    loop_watch = watch(registry)

    async def scenario() -> None:
        task = asyncio.create_task(loop_watch.run())
        await asyncio.sleep(0.1)  # the idle stretch measured: a few wakes on a loop doing nothing else
        before = loop_watch.longest
        time.sleep(0.3)  # the behaviour under test: synchronous work holds the loop, nothing else runs
        for _ in range(100):  # turns of the loop, no time: the overdue wake runs at the first of them
            if loop_watch.longest != before:
                break
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(scenario())
    assert 0.25 <= loop_watch.longest < 1.0
    total = count_above(registry, "+Inf")
    assert total >= 5
    # One wake of them all was late by more than 0.25 s; the idle ones by less.
    assert total - count_above(registry, "0.25") == 1


def test_a_long_block_is_logged_with_what_was_last_done_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    loop_watch = watch(CollectorRegistry(), doing="a snapshot of h200.allocation.inbox[0] at offset 9 in 1.20 s")
    with caplog.at_level(logging.WARNING, logger="services.common.loop_watch"):
        loop_watch.observe(10.0, 0.5)  # under warn_after_s: counted, not logged
        loop_watch.observe(20.0, 1.3)
        loop_watch.observe(20.5, 1.1)  # the same episode: within warn_after_s of the line before
        loop_watch.observe(30.0, 2.0)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert "blocked for 1.30 s" in lines[0] and "last finished: a snapshot of h200.allocation.inbox[0]" in lines[0]
    assert "blocked for 2.00 s" in lines[1]
    assert "H200_ALLOCATION_SNAPSHOT_SHARE" in lines[0], "the line names the settings that space the usual causes"
    assert loop_watch.longest == 2.0


def test_an_early_wake_counts_as_no_block() -> None:
    registry = CollectorRegistry()
    loop_watch = watch(registry)
    loop_watch.observe(1.0, -0.001)  # the loop's clock may wake a hair early
    assert loop_watch.longest == 0.0
    assert count_above(registry, "0.005") == 1
