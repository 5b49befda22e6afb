"""Composition root of the intake service: order submissions in, recorded orders or rejections out.

Intake decides on its own inbox, keyed by buyer, never on h200.intake.commands directly: the partition of an
upstream record is whatever its client's partitioner chose, and intake's memory of a (buyer, upstream ref) is
per partition, so deciding there would place one submission once per partition it was written to.
"""

from __future__ import annotations

from typing import Any

import faust

from schemas import policy
from schemas.base import Message
from schemas.topics import INTAKE_COMMANDS
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker, make_faust_app
from services.intake import domain
from services.intake.rekeying import RekeyedRecords

INBOX = "h200.intake.inbox"
ROUTES = (Route("h200.intake.commands", INTAKE_COMMANDS), Route("h200.policy", (policy.SubmissionWindowSet,)))


class IntakeWorker(ServiceWorker):
    """The shared worker, noting the upstream records whose key was not their buyer as it re-keys them."""

    def __init__(self, app: faust.App, cluster: ClusterSettings, worker: WorkerSettings) -> None:
        self.rekeyed = RekeyedRecords(INBOX)
        super().__init__(app, "intake", domain, INBOX, ROUTES, cluster, worker)
        app.page("/stats/rekeyed/")(self.page(self.rekeyed_stats))

    async def _forward(self, record: Record, payload: Message) -> None:
        if isinstance(payload, INTAKE_COMMANDS):  # the submission window is a policy, copied to every partition
            self.rekeyed.note(record, payload.buyer_id)  # type: ignore[attr-defined]  # every intake command has one
        await super()._forward(record, payload)

    def rekeyed_stats(self) -> dict[str, Any]:
        return {"service": self.service, "inbox": INBOX, "rekeyed": self.rekeyed.by_reason()}


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("intake")
    app = make_faust_app("intake", cluster, worker)
    IntakeWorker(app, cluster, worker)
    return app
