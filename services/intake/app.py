"""Composition root of the intake service: order submissions in, recorded orders or rejections out."""

from __future__ import annotations

import faust

from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker, make_faust_app
from services.intake import domain

INBOX = "h200.intake.commands"
ROUTES: tuple[Route, ...] = ()


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("intake")
    app = make_faust_app("intake", cluster, worker)
    ServiceWorker(app, "intake", domain, INBOX, ROUTES, cluster, worker)
    return app
