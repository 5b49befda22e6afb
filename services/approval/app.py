"""Composition root of the approval service: orders and both governments' policies in, decisions out."""

from __future__ import annotations

import faust

from schemas import allocation, clock, intake
from schemas.topics import APPROVAL_POLICIES
from services.approval import domain
from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker

INBOX = "h200.approval.inbox"
ROUTES = (
    Route("h200.orders", (intake.OrderPlaced, intake.OrderDocumentsAdded, intake.OrderCancelled)),
    Route("h200.policy", APPROVAL_POLICIES),
    Route("h200.allocations", (allocation.OrderClosed,)),
    Route("h200.clock", (clock.ClockTicked,)),
)


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("approval")
    app = make_faust_app("approval", cluster, worker)
    ServiceWorker(app, "approval", domain, INBOX, ROUTES, cluster, worker)
    return app
