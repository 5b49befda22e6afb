"""Composition root of the intake service: order submissions in, recorded orders or rejections out.

Intake decides on its own inbox, keyed by buyer, never on h200.intake.commands directly: the partition of an
upstream record is whatever its client's partitioner chose, and intake's memory of a (buyer, upstream ref) is
per partition, so deciding there would place one submission once per partition it was written to.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import faust

from schemas import policy
from schemas.base import Message
from schemas.codec import ContractError, encode
from schemas.envelope import Envelope
from schemas.routing import home_topic
from schemas.topics import (
    INTAKE_COMMANDS,
    SOURCE_HEADER,
    buyer_of_submission_topic,
    outcome_topic_of,
    submission_topic,
)
from services.common.faust_app import make_faust_app
from services.common.logs import log_decision
from services.common.publishing import Outgoing
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import Route, ServiceWorker
from services.intake import domain
from services.intake.domain.malformed import Refused, key_problem, malformed
from services.intake.rekeying import RekeyedRecords

INBOX = "h200.intake.inbox"
OUTCOMES = "h200.outcomes"
ROUTES = (Route("h200.intake.commands", INTAKE_COMMANDS), Route("h200.policy", (policy.SubmissionWindowSet,)))


def buyer_routes(buyers: tuple[str, ...]) -> tuple[Route, ...]:
    """One route per buyer system's own submission topic (H200_BUYER_SYSTEMS)."""
    return tuple(Route(submission_topic(buyer).name, INTAKE_COMMANDS) for buyer in buyers)


class IntakeWorker(ServiceWorker):
    """The shared worker, noting the upstream records whose key was not their buyer as it re-keys them, and
    answering every record of a submission topic once on the outcome topic of its channel (schemas/outcomes.py)."""

    def __init__(self, app: faust.App, cluster: ClusterSettings, worker: WorkerSettings) -> None:
        self.rekeyed = RekeyedRecords(INBOX)
        super().__init__(app, "intake", domain, INBOX, ROUTES + buyer_routes(cluster.buyer_systems), cluster, worker)
        app.page("/stats/rekeyed/")(self.page(self.rekeyed_stats))

    async def _forward(self, record: Record, envelope: Envelope[Message]) -> list[Outgoing]:
        payload = envelope.payload
        if not isinstance(payload, INTAKE_COMMANDS):  # the submission window is a policy, copied to every partition
            return await super()._forward(record, envelope)
        sender = buyer_of_submission_topic(record.topic)
        buyer: str = payload.buyer_id  # type: ignore[attr-defined]  # every intake command has one
        if sender is not None and buyer != sender:
            # Only buyer `sender`'s system may write its topic (ACL): a command there for anyone else is a forgery.
            detail = f"{payload.TYPE} for buyer {buyer!r} on {record.topic}, which only {sender}'s system may write"
            await self._reject(record, ContractError("sender_not_buyer", detail))
            return []
        mismatch = key_problem(record.key, envelope)
        if mismatch is not None:
            await self._reject(record, mismatch)
            return []
        self.rekeyed.note(record, buyer)
        # The copy says which channel the command came by: its answer goes back there (destinations).
        return [(self.inbox.name, buyer.encode(), record.value, [(SOURCE_HEADER, record.topic.encode())], None)]

    async def _reject(self, record: Record, error: ContractError) -> None:
        """Dead-letter the record and, if it is a submission, answer it (SubmissionMalformed) on its channel."""
        await super()._reject(record, error)
        if record.topic in self.submission_topics:
            channel: str | None = record.topic
        else:  # an inbox copy of a submission that could not be decided (e.g. its event is too large)
            channel = source_of(record) if record.topic == INBOX else None
        if channel is not None:
            answer = malformed(refused(record), error)
            await self._send(outcome_topic_of(channel), answer.key.encode(), encode(answer))
            log_decision(self.service, (record.topic, record.partition, record.offset), [answer])

    def destinations(self, record: Record, envelope: Envelope[Message]) -> list[tuple[str, int | None]]:
        """The event's home (h200.orders) and the outcome topic of the channel its command came by."""
        answers = outcome_topic_of(source_of(record))
        home = home_topic(envelope.payload).name
        return [(answers, None)] if home == OUTCOMES else [(home, None), (answers, None)]

    @property
    def submission_topics(self) -> frozenset[str]:
        return frozenset(route.source for route in self.routes if route.types == INTAKE_COMMANDS)

    def rekeyed_stats(self) -> dict[str, Any]:
        return {"service": self.service, "inbox": INBOX, "rekeyed": self.rekeyed.by_reason()}


def source_of(record: Record) -> str | None:
    """The submission topic an inbox record was copied from (the header intake's router writes), if it says."""
    for name, value in record.headers:
        if name == SOURCE_HEADER:
            return value.decode("utf-8", "replace")
    return None


def refused(record: Record) -> Refused:
    """The refused record as intake's core reads it; dated by the record's own timestamp (a redelivery gives the
    same answer), or now for a record without a usable one."""
    return Refused(
        record.topic, record.partition, record.offset, record.key, record.value, record.headers, _dated(record)
    )


def _dated(record: Record) -> datetime:
    if record.timestamp_ms is not None and record.timestamp_ms >= 0:
        with contextlib.suppress(OverflowError, ValueError, OSError):  # a producer's CreateTime may be anything
            return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    return datetime.now(UTC)


def create_app(cluster: ClusterSettings | None = None, worker: WorkerSettings | None = None) -> faust.App:
    cluster = cluster or ClusterSettings()
    worker = worker or WorkerSettings.for_service("intake")
    app = make_faust_app("intake", cluster, worker)
    IntakeWorker(app, cluster, worker)
    return app
