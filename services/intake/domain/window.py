"""The submission window: how far the submitted_at a sender claims may lie from the submission's arrival.

A window is a policy (SubmissionWindowSet, copied into every partition of intake's inbox). Its latest revision per
policy_id counts (a stale or repeated one is ignored) and it takes effect when the partition's arrivals reach its
effective_at: until then it waits in `pending` and changes nothing. Until the first window is in force, intake uses
FALLBACK_WINDOW and says so in the reason (docs/time.md, "Intake").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from schemas.base import PolicyRef
from schemas.policy import SubmissionWindowSet

FALLBACK_WINDOW = timedelta(days=1)
"""Until a SubmissionWindowSet is in force, a claim may lie at most a day after or before its arrival."""


@dataclass(frozen=True)
class Window:
    """The bounds a claim must keep, and the policy revision that set them (None for the fallback)."""

    max_ahead: timedelta
    max_behind: timedelta
    policy: PolicyRef | None

    def describe(self) -> str:
        bounds = f"at most {span(self.max_ahead)} after and {span(self.max_behind)} before the arrival"
        if self.policy is None:
            return f"intake's fallback window ({bounds}; no SubmissionWindowSet is in force yet)"
        return f"the submission window {self.policy} ({bounds})"


FALLBACK = Window(FALLBACK_WINDOW, FALLBACK_WINDOW, None)


@dataclass
class Windows:
    """What one inbox partition knows of the submission window."""

    in_force: Window = FALLBACK
    applied: dict[str, int] = field(default_factory=dict)
    """The revision in force (or superseded) per policy_id: a pending revision at or below it never applies."""
    received: dict[str, int] = field(default_factory=dict)
    """The latest revision received per policy_id, pending or not: an event at or below it is ignored."""
    pending: list[SubmissionWindowSet] = field(default_factory=list)
    """Received windows whose effective_at the partition's arrivals have not reached yet."""
    now: datetime | None = None
    """The latest arrival the partition has seen (it never goes back)."""


def window_at(windows: Windows, at: datetime) -> Window:
    """The window in force for an input arriving at `at` (pending windows due by then included); reads only."""
    return advance(replace(windows, applied=dict(windows.applied), pending=list(windows.pending)), at).in_force


def receive(windows: Windows, event: SubmissionWindowSet) -> Windows:
    """Record a newer revision as pending (it comes into force on the next advance that reaches it)."""
    if event.revision <= windows.received.get(event.policy_id, 0):
        return windows
    windows.received[event.policy_id] = event.revision
    windows.pending.append(event)
    return windows if windows.now is None else advance(windows, windows.now)


def advance(windows: Windows, at: datetime) -> Windows:
    """The partition's arrivals reached `at`: windows due by then come into force, in order of effective_at."""
    windows.now = at if windows.now is None else max(windows.now, at)
    now = windows.now
    due = [w for w in windows.pending if w.effective_at <= now]
    if not due:
        return windows
    windows.pending = [w for w in windows.pending if w.effective_at > now]
    for event in sorted(due, key=lambda w: (w.effective_at, w.revision)):
        if event.revision > windows.applied.get(event.policy_id, 0):
            windows.applied[event.policy_id] = event.revision
            windows.in_force = Window(
                timedelta(seconds=event.max_ahead_s),
                timedelta(seconds=event.max_behind_s),
                PolicyRef(policy_id=event.policy_id, revision=event.revision),
            )
    return windows


def span(length: timedelta) -> str:
    """A length of time in words: whole days as days, else as h:mm:ss or seconds."""
    seconds = int(length.total_seconds())
    if seconds and seconds % 86_400 == 0:
        return f"{seconds // 86_400} day{'s' if seconds != 86_400 else ''}"
    return f"{length}" if seconds >= 3600 else f"{seconds} s"
