"""`python -m services.clock`: ticks h200.clock with the wall time every H200_CLOCK_INTERVAL_S seconds.

On start it reads the last tick written and never writes one at or before it (services.clock.ticks.next_tick).
A broker outage is logged once, then how long it has lasted, then that it is over (FailureLog); the ticks
missed meanwhile are not made up: the next tick carries the time it is written at, and what fell due in
between is decided on it. SIGTERM or SIGINT ends the process after the tick in hand, with status 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from kafka import KafkaProducer

from services.clock.settings import ClockSettings
from services.clock.ticks import is_behind, next_tick, tick_envelope
from services.clock.topic import TOPIC, new_producer, read_last_tick, write_tick
from services.common.retry import Backoff, FailureLog
from services.common.settings import ClusterSettings

log = logging.getLogger("h200.clock")


def wall_clock() -> datetime:
    """The one wall clock the system reads (besides the broker's append time)."""
    return datetime.now(UTC)


class Clock:
    def __init__(
        self,
        bootstrap: str,
        settings: ClockSettings,
        wall: Callable[[], datetime] = wall_clock,
        stop: threading.Event | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.wall = wall
        self.stop = stop or threading.Event()
        self.backoff = Backoff(settings.retry_s, settings.retry_max_s)
        self.last: datetime | None = None
        self.behind = False
        self.ticks = 0

    def _retry(self, failures: FailureLog, error: Exception) -> None:
        delay = self.backoff.delay(failures.failures + 1)
        failures.failed(error, delay)
        self.stop.wait(delay)

    def read_last(self) -> bool:
        """The last tick into `self.last`, waiting out an outage; False if asked to stop first."""
        failures = FailureLog(f"reading the last tick on {TOPIC}", log)
        while not self.stop.is_set():
            try:
                self.last = read_last_tick(self.bootstrap, self.settings.clock_id, self.settings.send_timeout_s)
            except Exception as error:
                self._retry(failures, error)
                continue
            failures.succeeded()
            return True
        return False

    def _next(self) -> datetime:
        wall = self.wall()
        behind = is_behind(self.last, wall)
        if behind and not self.behind:
            log.warning(
                "the wall clock (%s) is not after the last tick (%s): ticking 1 ms past the last tick until it is",
                wall.isoformat(),
                self.last.isoformat() if self.last else None,
            )
        elif self.behind and not behind:
            log.info("the wall clock (%s) is past the last tick again: ticking with it", wall.isoformat())
        self.behind = behind
        return next_tick(self.last, wall)

    def tick_once(self, producer: KafkaProducer) -> None:
        at = self._next()
        # A tick whose acknowledgement did not come may still be written: never write one at or before it.
        self.last = at
        write_tick(producer, tick_envelope(self.settings.clock_id, at), self.settings.send_timeout_s)
        self.ticks += 1

    def run(self) -> int:
        if not self.read_last():
            return 0
        log.info(
            "ticking %s every %.3g s for clock %s; last tick %s",
            TOPIC,
            self.settings.interval_s,
            self.settings.clock_id,
            self.last.isoformat() if self.last else "none",
        )
        failures = FailureLog(f"writing ticks to {TOPIC}", log)
        producer: KafkaProducer | None = None
        due = time.monotonic()
        try:
            while not self.stop.is_set():
                try:
                    producer = producer or new_producer(self.bootstrap, self.settings.send_timeout_s)
                    self.tick_once(producer)
                except Exception as error:
                    self._retry(failures, error)
                    due = time.monotonic()
                    continue
                failures.succeeded()
                # Keep to the interval, but do not rush to make up ticks missed while a send was slow.
                due = max(due + self.settings.interval_s, time.monotonic())
                self.stop.wait(max(0.0, due - time.monotonic()))
        finally:
            if producer is not None:
                producer.close(timeout=self.settings.send_timeout_s)
            log.info("stopped after %s ticks; last tick %s", self.ticks, self.last.isoformat() if self.last else None)
        return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the outage is told once by FailureLog
    clock = Clock(ClusterSettings().bootstrap_servers, ClockSettings())

    def _stop(signum: int, _: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        clock.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return clock.run()
