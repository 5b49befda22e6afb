"""The whole system under the simulator: H200_SIM_SEEDS seeded runs (default 10,000: with business time about
60 ms of CPU a seed, some 5 minutes on two free cores with one seed in 10 refolded; `make unit` runs a few hundred)
of the real cores and routes with the clock ticking, crashes, redelivery and producer retries, every invariant
checked after every step. A failure names its seed and prints the shortest trace found.

Checks whose defect is known and not fixed yet in the cores are listed in KNOWN_OPEN: they are reported by
their own test, expected to fail until the fix lands (then it passes and the entry should go).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .schedule import run_seed
from .search import Failure, Summary, report, search

SEEDS = int(os.environ.get("H200_SIM_SEEDS", "10000"))
START = int(os.environ.get("H200_SIM_START", "0"))

KNOWN_OPEN: dict[str, str] = {}
"""(c) fafs-inversion (first-approved-first-served by decision time) left this list when approval's markers and
allocation's admission landed: no seed of 2,000 shows it."""


@pytest.fixture(scope="module")
def summary() -> Summary:
    return search(SEEDS, START)


def _explain(failures: list[Failure], total: int, shrink: bool = True) -> str:
    """Each broken check with its first seed, shrunk to the shortest trace found (known ones just listed)."""
    first: dict[str, Failure] = {}
    for failure in sorted(failures, key=lambda f: f.seed):
        first.setdefault(failure.check, failure)
    if shrink:
        shown = "\n\n".join(report(failure.seed, budget_s=20.0) for failure in first.values())
    else:
        shown = "\n".join(f"{f.check}: seed {f.seed}: {f.message}" for f in first.values())
    return f"{len(failures)} of {total} seeds break an invariant (python -m tests.sim --seed N replays one):\n{shown}"


def test_no_seed_breaks_an_invariant(summary: Summary) -> None:
    failures = [f for f in summary.failures if f.check not in KNOWN_OPEN]
    assert summary.seeds == SEEDS
    if failures:
        pytest.fail(_explain(failures, summary.seeds), pytrace=False)


@pytest.mark.xfail(reason="known defects not fixed yet: " + "; ".join(KNOWN_OPEN.values()), strict=False)
@pytest.mark.skipif(not KNOWN_OPEN, reason="no known open defect")
def test_no_seed_shows_a_known_open_defect(summary: Summary) -> None:
    failures = [f for f in summary.failures if f.check in KNOWN_OPEN]
    if failures:
        pytest.fail(_explain(failures, summary.seeds, shrink=False), pytrace=False)


def test_a_seed_replays_the_same_run_in_another_process_with_other_string_hashes() -> None:
    """A seed plus the commit is the whole run: no set or hash order of the process leaks into it."""
    root = Path(__file__).resolve().parents[2]
    here = [f"{seed} {run_seed(seed).digest()}" for seed in range(20)]
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        command = [sys.executable, "-m", "tests.sim", "--seeds", "20", "--digests"]
        there = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True).stdout
        assert there.split("\n")[:-1] == here, f"PYTHONHASHSEED={hash_seed} gives other runs"
