"""Composition root of the allocation service: approvals and their markers, batches, rules, returns and clock ticks
in; ledger lines out."""

from __future__ import annotations

import faust

from schemas import clock, fulfilment, policy, supply
from schemas.topics import APPROVAL_MESSAGES
from services.allocation import domain
from services.common.faust_app import make_faust_app
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker

INBOX = "h200.allocation.inbox"
ROUTES = (
    Route("h200.approvals", (*APPROVAL_MESSAGES, clock.ApprovalsPassed)),
    Route("h200.supply", (supply.BatchManufactured,)),
    Route("h200.policy", (policy.AllocationPolicySet,)),
    Route("h200.fulfilment", (fulfilment.FulfilmentStepRecorded, fulfilment.DeliveryFailed, fulfilment.RecallAnswered)),
    Route("h200.clock", (clock.ClockTicked,)),
)


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("allocation")
    app = make_faust_app("allocation", cluster, worker)
    ServiceWorker(app, "allocation", domain, INBOX, ROUTES, cluster, worker)
    return app
