"""The projector's /metrics text and its health and readiness, from the figures its loop leaves."""

from __future__ import annotations

import json
from dataclasses import replace

from services.projector.metrics import STALLED_AFTER_S, ProjectorFigures, ProjectorMetrics

PROJECTING = ProjectorFigures(
    applied=42,
    rebuilds=1,
    assigned=True,
    rebuilding=False,
    redis_away=False,
    loop_age_s=0.2,
    dead_letters={"malformed_json": 2},
    lag={("h200.orders", 0): 3, ("h200.orders", 1): 0},
)


def test_metrics_show_events_applied_dead_letters_rebuilds_and_lag_per_partition() -> None:
    metrics = ProjectorMetrics(lambda: PROJECTING)
    metrics.rebuilt(2.5)

    status, content_type, body = metrics.pages()["/metrics"]()
    text = body.decode()

    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert 'h200_events_applied_total{service="projector"} 42.0' in text
    assert 'h200_dead_letters_total{code="malformed_json",service="projector"} 2.0' in text
    assert 'h200_rebuilds_total{service="projector"} 1.0' in text
    assert 'h200_rebuild_seconds_count{service="projector"} 1.0' in text
    assert 'h200_rebuild_seconds_sum{service="projector"} 2.5' in text
    assert 'h200_projector_lag_records{partition="0",service="projector",topic="h200.orders"} 3.0' in text
    assert 'h200_projector_lag_records{partition="1",service="projector",topic="h200.orders"} 0.0' in text


def test_the_projector_is_ready_while_projecting_and_not_while_rebuilding_or_redis_is_away() -> None:
    def ready(figures: ProjectorFigures) -> tuple[int, str]:
        status, _, body = ProjectorMetrics(lambda: figures).pages()["/ready"]()
        return status, json.loads(body)["reason"]

    assert ready(PROJECTING) == (200, "projecting")
    assert ready(replace(PROJECTING, assigned=False))[0] == 503
    assert ready(replace(PROJECTING, rebuilding=True)) == (503, "rebuilding the read models from offset 0")
    assert ready(replace(PROJECTING, redis_away=True))[0] == 503


def test_the_projector_is_unhealthy_once_its_loop_stops_coming_round() -> None:
    def health(figures: ProjectorFigures) -> int:
        return ProjectorMetrics(lambda: figures).pages()["/health"]()[0]

    assert health(PROJECTING) == 200
    assert health(replace(PROJECTING, loop_age_s=STALLED_AFTER_S + 1)) == 503
