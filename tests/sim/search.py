"""Many seeds on every core, and the report of a failing one: its seed, the violated invariant with the events
involved, and the shortest trace found. A seed plus the commit replays a run exactly."""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field

from .actions import describe
from .schedule import DEFAULT_STEPS, run_seed
from .shrink import shrink
from .simulation import replay

CHUNK = 50


@dataclass
class Failure:
    seed: int
    check: str
    message: str


@dataclass
class Summary:
    seeds: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    def first_by_check(self) -> dict[str, Failure]:
        found: dict[str, Failure] = {}
        for failure in sorted(self.failures, key=lambda f: f.seed):
            found.setdefault(failure.check, failure)
        return found


def run_chunk(job: tuple[int, int, int]) -> list[Failure]:
    start, count, steps = job
    failures = []
    for seed in range(start, start + count):
        violation = run_seed(seed, steps).violation
        if violation is not None:
            failures.append(Failure(seed, violation.check, violation.message))
    return failures


def search(
    seeds: int,
    start: int = 0,
    steps: int = DEFAULT_STEPS,
    jobs: int | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    summary = Summary()
    began = time.monotonic()
    chunks = [(first, min(CHUNK, start + seeds - first), steps) for first in range(start, start + seeds, CHUNK)]
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        results = map(run_chunk, chunks)
        for (_, count, _), failures in zip(chunks, results, strict=True):
            _account(summary, count, failures, began, progress)
        return summary
    # fork shares the imported modules; a process with other threads running must not fork.
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
    with context.Pool(jobs) as pool:
        for (_, count, _), failures in zip(chunks, pool.imap(run_chunk, chunks), strict=True):
            _account(summary, count, failures, began, progress)
    return summary


def _account(summary: Summary, count: int, failures: list[Failure], began: float, progress: object) -> None:
    summary.seeds += count
    summary.failures += failures
    summary.seconds = time.monotonic() - began
    if callable(progress):
        progress(summary)


def print_progress(summary: Summary) -> None:
    rate = summary.seeds / summary.seconds if summary.seconds else 0.0
    counts = {check: 0 for check in summary.first_by_check()}
    for failure in summary.failures:
        counts[failure.check] += 1
    shown = ", ".join(f"{check} x{n}" for check, n in counts.items()) or "none"
    print(f"\r{summary.seeds:,} seeds, {rate:,.0f}/s, failures: {shown}   ", end="", file=sys.stderr, flush=True)


def report(seed: int, steps: int = DEFAULT_STEPS, budget_s: float = 60.0, verbose: bool = False) -> str:
    """What a failing seed did: the violation and the shortest trace found, replayed step by step."""
    result = run_seed(seed, steps)
    if result.violation is None:
        return f"seed {seed}: no violation in {len(result.trace)} steps"
    lines = [f"seed {seed} ({steps} steps): {result.violation}", f"run of {len(result.trace)} actions"]
    shortest = shrink(result, budget_s)
    lines.append(f"shortest trace found: {len(shortest.trace)} actions (replay: python -m tests.sim --seed {seed})")
    if verbose:
        shown = io.StringIO()
        with redirect_stdout(shown):
            replay(shortest.trace, verbose=True)
        lines.append(shown.getvalue().rstrip())
    else:
        lines += [f"{index:5} {describe(action)}" for index, action in enumerate(shortest.trace)]
    lines.append(str(shortest.violation))
    return "\n".join(lines)
