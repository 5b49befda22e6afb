"""How long a worker's event loop was kept from running anything else.

Every record a worker reads, every send it acknowledges and every heartbeat of its consumer waits on one asyncio
loop. Work that holds the loop (a long fold, a snapshot pickled on the loop, a cycle collection over a large
state) delays all of them at once: a submission waits in both the router and the core, however idle the machine
is. The only way to see it from outside is to ask the loop to wake at a known time and measure how late it did.

`LoopWatch` does that every `every` seconds. Each lateness is observed into `h200_event_loop_blocked_seconds`,
and one past `warn_after_s` is logged with what the worker says it was doing (`doing()`), at most once per
`warn_after_s`, so that a loop blocked often is a line per episode, not per wake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Histogram

from services.common.metrics import seconds_histogram

log = logging.getLogger(__name__)

BLOCKED_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""From a few milliseconds (a batch of records) to the session timeout (a rebalance follows)."""


def blocked_histogram(registry: CollectorRegistry, service: str) -> Histogram:
    documentation = "How late the event loop ran a wake-up it was asked for: time nothing else could run"
    return seconds_histogram(
        registry, "h200_event_loop_blocked_seconds", documentation, {"service": service}, BLOCKED_BUCKETS
    )


class LoopWatch:
    def __init__(
        self,
        service: str,
        histogram: Histogram,
        every: float = 0.1,
        warn_after_s: float = 1.0,
        doing: Callable[[], str] = lambda: "",
    ) -> None:
        self.service = service
        self.histogram = histogram
        self.every = every
        self.warn_after_s = warn_after_s
        self.doing = doing
        self.longest = 0.0
        """The longest lateness seen since the process started, in seconds."""
        self._warned_at = float("-inf")

    def observe(self, now: float, late: float) -> None:
        """One wake-up, `late` seconds after it was due, at loop time `now`."""
        late = max(0.0, late)
        self.histogram.observe(late)
        self.longest = max(self.longest, late)
        if late >= self.warn_after_s and now - self._warned_at >= self.warn_after_s:
            self._warned_at = now
            doing = self.doing()
            prefix = f"H200_{self.service.upper()}_"
            log.warning(
                "%s: the event loop was blocked for %.2f s (no record read, send acknowledged or heartbeat sent)%s. "
                "Blocks near the session timeout (%sSESSION_TIMEOUT_S) cost a rebalance: snapshots are spaced by "
                "%sSNAPSHOT_SHARE and %sSNAPSHOT_EVERY, full collections by %sGC_THRESHOLDS",
                self.service,
                late,
                f"; last finished: {doing}" if doing else "",
                prefix,
                prefix,
                prefix,
                prefix,
            )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.every
            await asyncio.sleep(self.every)
            now = loop.time()
            self.observe(now, now - due)
