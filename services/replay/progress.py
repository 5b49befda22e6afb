"""A one-line progress bar on stderr for long reads and writes: records so far, of how many, events per second.

It stays silent for the first `delay_s` (short replays print nothing) and redraws at most every `every_s`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 24


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        *,
        delay_s: float = 1.0,
        every_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.count = 0
        self._clock = clock
        self._start = clock()
        self._delay_s = delay_s
        self._every_s = every_s
        self._drawn_at: float | None = None

    def advance(self, count: int = 1) -> None:
        self.count += count
        if self.stream is None:
            return
        now = self._clock()
        if now - self._start < self._delay_s:
            return
        if self._drawn_at is None or now - self._drawn_at >= self._every_s:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        rate = f"{self.count / elapsed:,.0f} events/s"
        if not self.total:
            return f"{self.label}: {self.count:,} records  {rate}"
        done = min(self.count / self.total, 1.0)
        bar = "#" * int(done * WIDTH)
        return f"{self.label}: [{bar:<{WIDTH}}] {self.count:,}/{self.total:,} ({done:.0%})  {rate}"

    def _draw(self, now: float) -> None:
        assert self.stream is not None
        self.stream.write("\r" + self.line(now) + "  ")
        self.stream.flush()
        self._drawn_at = now

    def close(self) -> None:
        """Finish the bar with a final count, if it was ever drawn."""
        if self.stream is not None and self._drawn_at is not None:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()


def progress_stream(wanted: bool | None) -> TextIO | None:
    """stderr when asked, or by default when stderr is a terminal; None for no bar."""
    show = sys.stderr.isatty() if wanted is None else wanted
    return sys.stderr if show else None
