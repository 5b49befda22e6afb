"""The projector's /metrics, /health and /ready, on a small HTTP server of its own (H200_PROJECTOR_METRICS_PORT).

The projector's loop is synchronous and its Kafka and Redis clients are not thread-safe: the loop measures its
lag itself (every LAG_EVERY_S) and the HTTP thread only reads the figures the loop left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from services.common.metrics import (
    CONTENT_TYPE,
    Figures,
    Lag,
    Page,
    Readiness,
    counter,
    json_page,
    lag_gauge,
    rebuild_histogram,
    render,
)

LAG_EVERY_S = 5.0
"""How often the loop measures its lag (one ListOffsets request and one Redis read)."""
STALLED_AFTER_S = 60.0
"""A loop that has not come round for this long is unhealthy (its longest wait, a Redis timeout, is 10 s)."""
BY = {"service": "projector"}


@dataclass(frozen=True)
class ProjectorFigures:
    applied: int
    rebuilds: int
    assigned: bool
    rebuilding: bool
    redis_away: bool
    loop_age_s: float
    """Seconds since the loop last came round."""
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    lag: Lag = field(default_factory=dict)


def readiness(now: ProjectorFigures) -> Readiness:
    if not now.assigned:
        return Readiness(False, "not reading the event topics yet")
    if now.rebuilding:
        return Readiness(False, "rebuilding the read models from offset 0")
    if now.redis_away:
        return Readiness(False, "Redis does not answer: waiting it out")
    return Readiness(True, "projecting")


class ProjectorMetrics:
    def __init__(self, figures: Callable[[], ProjectorFigures]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._figures = figures
        self.rebuild_seconds = rebuild_histogram(self.registry, BY)
        self.registry.register(Figures(self._families))

    def rebuilt(self, seconds: float) -> None:
        self.rebuild_seconds.observe(seconds)

    def _families(self) -> Iterator[Metric]:
        now = self._figures()
        yield counter("h200_events_applied", "Records applied to the read models", BY, now.applied)
        letters = CounterMetricFamily("h200_dead_letters", "Records dead-lettered", labels=["service", "code"])
        for code, count in sorted(now.dead_letters.items()):
            letters.add_metric(["projector", code], count)
        yield letters
        yield counter("h200_rebuilds", "Read models rebuilt from offset 0 after Redis lost them", BY, now.rebuilds)
        rebuilding = GaugeMetricFamily(
            "h200_projector_rebuilding", "1 while the read models are rebuilt", labels=["service"]
        )
        rebuilding.add_metric(["projector"], int(now.rebuilding))
        yield rebuilding
        yield lag_gauge("h200_projector_lag_records", "Log end less the projector's stored position", BY, now.lag)

    def pages(self) -> dict[str, Page]:
        def metrics() -> tuple[int, str, bytes]:
            return 200, CONTENT_TYPE, render(self.registry)

        def health() -> tuple[int, str, bytes]:
            age = self._figures().loop_age_s
            running = age < STALLED_AFTER_S
            return json_page(
                200 if running else 503, {"status": "running" if running else "stalled", "loop_age_s": age}
            )

        def ready() -> tuple[int, str, bytes]:
            answer = readiness(self._figures())
            return json_page(answer.status, answer.body())

        return {"/metrics": metrics, "/health": health, "/ready": ready}
