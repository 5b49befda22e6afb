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
from schemas.codec import ContractError
from schemas.topics import INTAKE_COMMANDS, buyer_of_submission_topic, submission_topic
from services.common.publishing import Outgoing
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker, make_faust_app
from services.intake import domain
from services.intake.rekeying import RekeyedRecords

INBOX = "h200.intake.inbox"
ROUTES = (Route("h200.intake.commands", INTAKE_COMMANDS), Route("h200.policy", (policy.SubmissionWindowSet,)))


def buyer_routes(buyers: tuple[str, ...]) -> tuple[Route, ...]:
    """One route per buyer system's own submission topic (H200_BUYER_SYSTEMS)."""
    return tuple(Route(submission_topic(buyer).name, INTAKE_COMMANDS) for buyer in buyers)


class IntakeWorker(ServiceWorker):
    """The shared worker, noting the upstream records whose key was not their buyer as it re-keys them."""

    def __init__(self, app: faust.App, cluster: ClusterSettings, worker: WorkerSettings) -> None:
        self.rekeyed = RekeyedRecords(INBOX)
        super().__init__(app, "intake", domain, INBOX, ROUTES + buyer_routes(cluster.buyer_systems), cluster, worker)
        app.page("/stats/rekeyed/")(self.page(self.rekeyed_stats))

    async def _forward(self, record: Record, payload: Message) -> list[Outgoing]:
        sender = buyer_of_submission_topic(record.topic)
        buyer = getattr(payload, "buyer_id", None)
        if sender is not None and buyer != sender:
            # Only buyer `sender`'s system may write its topic (ACL): a command there for anyone else is a forgery.
            detail = f"{payload.TYPE} for buyer {buyer!r} on {record.topic}, which only {sender}'s system may write"
            await self._reject(record, ContractError("sender_not_buyer", detail))
            return []
        if isinstance(payload, INTAKE_COMMANDS):  # the submission window is a policy, copied to every partition
            self.rekeyed.note(record, payload.buyer_id)  # type: ignore[attr-defined]  # every intake command has one
        return await super()._forward(record, payload)

    def rekeyed_stats(self) -> dict[str, Any]:
        return {"service": self.service, "inbox": INBOX, "rekeyed": self.rekeyed.by_reason()}


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("intake")
    app = make_faust_app("intake", cluster, worker)
    IntakeWorker(app, cluster, worker)
    return app
