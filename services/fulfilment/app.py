"""Composition root of the fulfilment service: ledger lines and logistics reports in, shipment facts out."""

from __future__ import annotations

import faust

from schemas import allocation
from schemas.topics import LINE_MESSAGES
from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker
from services.fulfilment import domain

INBOX = "h200.fulfilment.commands"
ROUTES = (Route("h200.allocations", (allocation.ChipsAllocated, allocation.AllocationReleased, *LINE_MESSAGES)),)


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("fulfilment")
    app = make_faust_app("fulfilment", cluster, worker)
    ServiceWorker(app, "fulfilment", domain, INBOX, ROUTES, cluster, worker)
    return app
