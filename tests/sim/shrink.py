"""The shortest failing trace we can find: replay subsets of a failing run and keep any that fails the same way.

Delta debugging in its simplest useful form: drop what had no effect, cut everything after the failure, then try
removing chunks of halving size until no single action can go. Every candidate is a deterministic replay, so
a kept candidate is itself a reproducible run.
"""

from __future__ import annotations

import time

from .actions import Action
from .simulation import Result, replay


def shrink(result: Result, budget_s: float = 60.0) -> Result:
    """A shorter trace failing the same check as `result`, within about `budget_s` seconds."""
    assert result.violation is not None
    check = result.violation.check
    deadline = time.monotonic() + budget_s
    best = result
    trace = [action for action, effective in zip(result.trace, result.effective, strict=False) if effective]
    trace += result.trace[len(result.effective) :]
    candidate = _fails(trace, check)
    if candidate is not None:
        best = candidate
    chunk = max(1, len(best.trace) // 2)
    while time.monotonic() < deadline:
        removed = False
        start = 0
        while start < len(best.trace) and time.monotonic() < deadline:
            trial = best.trace[:start] + best.trace[start + chunk :]
            candidate = _fails(trial, check)
            if candidate is not None:
                best, removed = candidate, True
            else:
                start += chunk
        if chunk == 1 and not removed:
            break
        chunk = max(1, chunk // 2) if not removed else chunk
    return best


def _fails(trace: list[Action], check: str) -> Result | None:
    """The replay of `trace`, cut just after its failure, if it fails `check`."""
    result = replay(trace)
    if result.violation is None or result.violation.check != check:
        return None
    end = len(trace) if result.failed_at is None else min(len(trace), result.failed_at + 1)
    result.trace = trace[:end]
    return result
