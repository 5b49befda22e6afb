"""Waiting out failures that pass (a leader election, a broker restart) without giving up, with one log line per
phase of an outage rather than one per attempt, and without holding up a service that is asked to stop.

A service that retries must still stop on SIGTERM: every wait here ends within STOP_POLL_S of a stop request
(StopRequestedError), and asyncio.CancelledError, a BaseException, is never caught.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

STOP_POLL_S = 0.5
MILESTONES_S = (10, 30, 60, 120, 300)
"""How long an outage has lasted when it is logged again; every 300 s after the last."""


class Lifecycle(Protocol):
    """What a wait needs of the service it runs in (a mode.Service, such as a faust App, has both)."""

    @property
    def should_stop(self) -> bool: ...

    async def sleep(self, n: float) -> None:
        """Sleep n seconds, or less if the service stops meanwhile."""


class StopRequestedError(Exception):
    """The service is stopping while `what` has not succeeded yet: the work in hand is unfinished."""

    def __init__(self, what: str) -> None:
        super().__init__(f"stopping before {what} succeeded")
        self.what = what


class AttemptTimedOutError(TimeoutError):
    pass


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.1
    max_s: float = 30.0
    attempt_timeout_s: float = 60.0
    """An attempt not finished by then counts as failed (faust would wait for an acknowledgement 20 minutes)."""

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.first_s * 2 ** min(failures - 1, 32)))


def explain(error: BaseException) -> str:
    """The error and what it wraps (faust hides the Kafka error behind ProducerSendError)."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None and len(parts) < 4:
        parts.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return " <- ".join(parts)


class FailureLog:
    """Says what is wrong at the first failure, then only how long it has lasted, then that it is over."""

    def __init__(self, what: str, logger: logging.Logger = log, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.logger = logger
        self.clock = clock
        self.failures = 0
        self.since = 0.0
        self.first = ""
        self._next = 0

    def failed(self, error: BaseException, retry_in_s: float) -> None:
        self.failures += 1
        now, text = self.clock(), explain(error)
        if self.failures == 1:
            self.since, self.first, self._next = now, text, 0
            self.logger.warning("%s failed: %s; retrying with back-off", self.what, text)
            return
        lasted = now - self.since
        if lasted >= self._due():
            self._next += 1
            changed = "" if text == self.first else f"; now {text}"
            self.logger.warning(
                "%s still failing after %.0f s (%s attempts, next in %.1f s)%s",
                self.what,
                lasted,
                self.failures,
                retry_in_s,
                changed,
            )

    def succeeded(self) -> None:
        if self.failures:
            lasted = self.clock() - self.since
            self.logger.info("%s succeeded after %.0f s and %s failed attempts", self.what, lasted, self.failures)
            self.failures = 0

    def _due(self) -> float:
        if self._next < len(MILESTONES_S):
            return MILESTONES_S[self._next]
        return MILESTONES_S[-1] * (self._next - len(MILESTONES_S) + 2)


async def persist(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    lifecycle: Lifecycle,
    backoff: Backoff,
    *,
    fatal: Callable[[Exception], bool] = lambda error: False,
    logger: logging.Logger = log,
) -> T:
    """`attempt()` until it succeeds. A failure that `fatal` says cannot pass by waiting is raised at once."""
    failures = FailureLog(what, logger)
    while True:
        try:
            result = await _within(attempt, what, lifecycle, backoff.attempt_timeout_s)
        except StopRequestedError:
            raise
        except Exception as error:
            if fatal(error):
                raise
            delay = backoff.delay(failures.failures + 1)
            failures.failed(error, delay)
            await lifecycle.sleep(delay)
            if lifecycle.should_stop:
                raise StopRequestedError(what) from error
            continue
        failures.succeeded()
        return result


async def _within(attempt: Callable[[], Awaitable[T]], what: str, lifecycle: Lifecycle, timeout_s: float) -> T:
    """One attempt, given up when the service stops or after `timeout_s`."""
    task = asyncio.ensure_future(attempt())
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=min(STOP_POLL_S, max(0.0, deadline - time.monotonic())))
            if done:
                return task.result()
            if lifecycle.should_stop:
                raise StopRequestedError(what)
            if time.monotonic() >= deadline:
                raise AttemptTimedOutError(f"no answer within {timeout_s:.0f} s")
    finally:
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # left by a cancellation after the attempt failed: its error is seen, not reported later
