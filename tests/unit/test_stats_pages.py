"""The workers' status pages answer through faust's own view machinery (they used to answer 500: the handler
was declared with the view as first argument, which faust does not pass to a bound method)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from faust.web.views import View

from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.intake import app as intake_app


class FakeWeb:
    def json(self, value: Any, **options: Any) -> bytes:
        return json.dumps(value).encode()


def test_the_stats_pages_answer_with_the_workers_figures(tmp_path: Path) -> None:
    cluster, settings = ClusterSettings(), WorkerSettings(worker_id="unit", datadir=tmp_path)
    app = make_faust_app("intake", cluster, settings)
    worker = intake_app.IntakeWorker(app, cluster, settings)
    web: Any = FakeWeb()

    stats = View.from_handler(worker.page(worker.stats))(app, web)
    rekeyed = View.from_handler(worker.page(worker.rekeyed_stats))(app, web)

    page = json.loads(asyncio.run(stats.get(object())))
    assert (page["service"], page["decided"], page["dead_letter_topic"]) == ("intake", 0, "h200.dlq.intake")
    assert json.loads(asyncio.run(rekeyed.get(object())))["inbox"] == "h200.intake.inbox"
