"""Prometheus metrics and readiness of one process, for `/metrics`, `/health` and `/ready`.

Each process (each worker built, in a unit test several) registers its metrics in a CollectorRegistry of its own,
never in prometheus_client's global one. Counts the process keeps anyway (records decided, dead letters by code,
rebuilds) are read at each scrape by a collector rather than counted twice; what has no count of its own (how
long each rebuild took) is a Histogram observed as it happens.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format, which every Prometheus reads (generate_latest writes it)."""
REBUILD_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
"""A partition's rebuild takes from milliseconds (a new partition) to minutes (a long inbox)."""
SNAPSHOT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""A snapshot costs as much as its partition's state is large: milliseconds to seconds."""

Lag = Mapping[tuple[str, int], int]
"""Records behind the end of the log, per (topic, partition)."""


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str

    @property
    def status(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> dict[str, Any]:
        return {"ready": self.ready, "reason": self.reason}


class Figures(Collector):
    """A collector whose metric families are made at each scrape by `families()`."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families()


def counter(name: str, documentation: str, labels: Mapping[str, str], value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def lag_gauge(name: str, documentation: str, labels: Mapping[str, str], lag: Lag) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[*labels, "topic", "partition"])
    for (topic, partition), behind in sorted(lag.items()):
        family.add_metric([*labels.values(), topic, str(partition)], max(0, behind))
    return family


def seconds_histogram(
    registry: CollectorRegistry, name: str, documentation: str, labels: Mapping[str, str], buckets: tuple[float, ...]
) -> Histogram:
    """A histogram of durations in `registry`, bound to `labels` (a process's own labels, such as its service)."""
    histogram = Histogram(name, documentation, labelnames=list(labels), registry=registry, buckets=buckets)
    return histogram.labels(**labels) if labels else histogram


def rebuild_histogram(registry: CollectorRegistry, labels: Mapping[str, str]) -> Histogram:
    return seconds_histogram(registry, "h200_rebuild_seconds", "How long each rebuild took", labels, REBUILD_BUCKETS)


def snapshot_histogram(registry: CollectorRegistry, labels: Mapping[str, str]) -> Histogram:
    documentation = "How long each snapshot of a partition's state took from its capture until it was stored"
    return seconds_histogram(registry, "h200_snapshot_seconds", documentation, labels, SNAPSHOT_BUCKETS)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


@dataclass(frozen=True)
class WorkerFigures:
    """What a service worker has counted since it started."""

    decided: int
    rebuilds: int
    sends_retried: int
    dead_letters_unsent: int
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    rebuilding: int = 0
    lag: Lag = field(default_factory=dict)
    recovery: Mapping[str, int] = field(default_factory=dict)
    """RebuildFigures of services.common.partitions, by field name."""


class WorkerMetrics:
    """The metrics of one service worker: its figures at each scrape, and the duration of each rebuild."""

    def __init__(self, service: str, figures: Callable[[], WorkerFigures]) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=False)
        self._figures = figures
        self.rebuild_seconds = rebuild_histogram(self.registry, {"service": service})
        self.snapshot_seconds = snapshot_histogram(self.registry, {"service": service})
        self.registry.register(Figures(self._families))

    def rebuilt(self, seconds: float) -> None:
        self.rebuild_seconds.observe(seconds)

    def snapshotted(self, seconds: float) -> None:
        self.snapshot_seconds.observe(seconds)

    def _families(self) -> Iterator[Metric]:
        now, by = self._figures(), {"service": self.service}
        yield counter("h200_records_decided", "Inbox records decided", by, now.decided)
        letters = CounterMetricFamily("h200_dead_letters", "Records dead-lettered", labels=["service", "code"])
        for code, count in sorted(now.dead_letters.items()):
            letters.add_metric([self.service, code], count)
        yield letters
        unsent = now.dead_letters_unsent
        yield counter("h200_dead_letters_unsent", "Dead letters refused by the cluster even shortened", by, unsent)
        yield counter("h200_rebuilds", "Partition states rebuilt from the inbox", by, now.rebuilds)
        yield counter("h200_sends_retried", "Send attempts retried after a failure that passes", by, now.sends_retried)
        rebuilding = GaugeMetricFamily("h200_partitions_rebuilding", "Partitions being rebuilt now", labels=["service"])
        rebuilding.add_metric([self.service], now.rebuilding)
        yield rebuilding
        recovery = {
            "folded": ("h200_rebuild_records_folded", "Inbox records folded from their journal entries in rebuilds"),
            "redecided": ("h200_rebuild_records_redecided", "Inbox records with no journal entry decided again"),
            "snapshots_used": ("h200_snapshots_used", "Rebuilds that started from a snapshot"),
            "snapshots_unusable": (
                "h200_snapshots_unusable",
                "Snapshots not used (other core, corrupt, other log)",
            ),
            "snapshots_written": ("h200_snapshots_written", "Snapshots of partition states written"),
            "snapshots_failed": ("h200_snapshots_failed", "Snapshots not stored (the log says why)"),
        }
        for name, (metric, documentation) in recovery.items():
            yield counter(metric, documentation, by, now.recovery.get(name, 0))
        yield lag_gauge("h200_inbox_lag_records", "Records of an assigned partition not read yet", by, now.lag)


Page = Callable[[], tuple[int, str, bytes]]
"""An HTTP page: (status, content type, body)."""


def json_page(status: int, body: Mapping[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode()


def serve_pages(port: int, pages: Mapping[str, Page], name: str) -> ThreadingHTTPServer:
    """Answer GET `pages` on 127.0.0.1:`port` from a daemon thread (for a process without a web server of its
    own); `shutdown()` the server returned to stop it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = pages.get(self.path.split("?", 1)[0].rstrip("/") or "/")
            status, content_type, body = page() if page else json_page(404, {"error": "no such page"})
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes are not logged: one every few seconds would drown the process's own lines."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True).start()
    return server
