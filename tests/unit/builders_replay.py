"""A small real history for the replay tests: the four cores run in memory and wired as the services wire them
(routes copy facts into each inbox, each core decides with services.common.decider.step), every message kept
on its topic as the broker would keep it. Messages are published as `h200 publish` does (services.ops.publish).

Every topic has its catalogue's partitions; a record goes to the partition its key hashes to (a stable hash:
which one does not matter, only that one key always lands on one partition). An inbox stamps each record with its
arrival as the broker's LogAppendTime would: the envelope's time plus the World's `arrival_delay` (none by
default), to the millisecond; its core decides on the arrived envelope, and its records carry that time as type 1.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from schemas import allocation, clock, fulfilment, intake, policy, supply
from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import Arrival, Envelope, derive_id, make_envelope, order_id_for
from schemas.fulfilment import RecordFulfilmentStep, Step
from schemas.intake import DeclaredUse, DeliverySite, DomesticChipCommitment, SubmitOrder, SupportingDocument
from schemas.routing import explicit_partition, home_topic, record_key
from schemas.topics import (
    APPROVAL_MESSAGES,
    APPROVAL_POLICIES,
    BY_NAME,
    EVENT_TOPICS,
    INTAKE_COMMANDS,
    LINE_MESSAGES,
    Topic,
)
from services.allocation import domain as allocation_core
from services.approval import domain as approval_core
from services.common.decider import step
from services.common.records import LOG_APPEND_TIME
from services.fulfilment import domain as fulfilment_core
from services.intake import domain as intake_core
from services.ops.publish import envelope_for
from services.replay.eventlog import EventLog, build_log
from services.replay.exportfile import make_header, write_export
from services.replay.records import CLOCK, INBOX, LogRecord, in_catalogue_order

T0 = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
POOL = "h200"

ROUTES: dict[str, tuple[tuple[str, tuple[type[Message], ...]], ...]] = {
    "h200.intake.commands": (("h200.intake.inbox", INTAKE_COMMANDS),),
    "h200.orders": (("h200.approval.inbox", (intake.OrderPlaced, intake.OrderDocumentsAdded, intake.OrderCancelled)),),
    "h200.policy": (
        ("h200.approval.inbox", APPROVAL_POLICIES),
        ("h200.allocation.inbox", (policy.AllocationPolicySet,)),
        ("h200.intake.inbox", (policy.SubmissionWindowSet,)),
    ),
    "h200.clock": (("h200.approval.inbox", (clock.ClockTicked,)), ("h200.allocation.inbox", (clock.ClockTicked,))),
    "h200.approvals": (("h200.allocation.inbox", (*APPROVAL_MESSAGES, clock.ApprovalsPassed)),),
    "h200.supply": (("h200.allocation.inbox", (supply.BatchManufactured,)),),
    "h200.fulfilment": (
        (
            "h200.allocation.inbox",
            (fulfilment.FulfilmentStepRecorded, fulfilment.DeliveryFailed, fulfilment.RecallAnswered),
        ),
    ),
    "h200.allocations": (
        ("h200.fulfilment.commands", (allocation.ChipsAllocated, allocation.AllocationReleased, *LINE_MESSAGES)),
        ("h200.approval.inbox", (allocation.OrderClosed,)),
    ),
}
CORES: dict[str, Any] = {
    "h200.intake.inbox": intake_core,
    "h200.approval.inbox": approval_core,
    "h200.allocation.inbox": allocation_core,
    "h200.fulfilment.commands": fulfilment_core,
}


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def partition_of(topic: str, key: str) -> int:
    return zlib.crc32(key.encode()) % BY_NAME[topic].partitions


def stamps_arrival(topic: str) -> bool:
    """An inbox: the broker stamps its records (LogAppendTime), and that time is when its service learned of them."""
    return BY_NAME[topic].config.get("message.timestamp.type") == "LogAppendTime"


class World:
    def __init__(self, arrival_delay: timedelta = timedelta(0)) -> None:
        self.states: dict[tuple[str, int], Any] = {}
        self.partitions: dict[tuple[str, int], list[Envelope[Any]]] = {}
        self.arrival_delay = arrival_delay

    def publish(self, *payloads: Message, producer: str = "ops") -> World:
        for payload in payloads:
            self._put(home_topic(payload).name, envelope_for(payload, producer))
        return self

    def _put(self, topic: str, envelope: Envelope[Any], partition: int | None = None) -> None:
        partition = partition_of(topic, envelope.key) if partition is None else partition
        records = self.partitions.setdefault((topic, partition), [])
        if stamps_arrival(topic):
            at = envelope.occurred_at + self.arrival_delay
            at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the broker's time is in milliseconds
            envelope = envelope.arrived(Arrival(topic, partition, len(records), at))
        records.append(envelope)
        for inbox, types in ROUTES.get(topic, ()):
            if isinstance(envelope.payload, types):
                self._route(BY_NAME[inbox], envelope)
        core = CORES.get(topic)
        if core is not None:
            # One state per inbox partition, as services.common.partitions keeps it.
            state = self.states.setdefault((topic, partition), core.initial_state())
            self.states[(topic, partition)], outputs = step(core, state, envelope)
            for output in outputs:
                self._put(home_topic(output.payload).name, output)

    def record(
        self, payload: Message, producer: str, occurred_at: datetime, cause: Envelope[Any] | None = None
    ) -> Envelope[Any]:
        """A fact written as its producer would write it (caused by `cause`), kept on its topic alone: no core
        decides on it and no route copies it (the log of a service whose core is not run here)."""
        topic = home_topic(payload)
        envelope = make_envelope(
            payload,
            key=record_key(payload, topic),
            producer=producer,
            occurred_at=occurred_at,
            cause=cause,
            discriminator=payload.id_discriminator(),
            message_id=None if cause else derive_id(producer, payload.TYPE, occurred_at.isoformat()),
        )
        partition = explicit_partition(payload)
        key = partition_of(topic.name, envelope.key) if partition is None else partition
        self.partitions.setdefault((topic.name, key), []).append(envelope)
        return envelope

    def _route(self, inbox: Topic, envelope: Envelope[Any]) -> None:
        """A copy under the inbox's key (to every partition for a rule that concerns every key)."""
        if isinstance(envelope.payload, inbox.broadcast):
            for partition in range(inbox.partitions):
                self._put(inbox.name, envelope, partition)
        else:
            self._put(inbox.name, envelope, partition_of(inbox.name, record_key(envelope.payload, inbox)))

    # --- reading back ----------------------------------------------------------------------------------

    def events(self, topic: str) -> list[Envelope[Any]]:
        return [e for (t, _), found in sorted(self.partitions.items()) if t == topic for e in found]

    def records(self, topics: Iterable[str] | None = None) -> list[LogRecord]:
        """Every record, topic by topic in catalogue order, partition by partition, as a broker would give them."""
        wanted = set(topics) if topics is not None else None
        order = list(BY_NAME)
        found = []
        for (topic, partition), envelopes in sorted(
            self.partitions.items(), key=lambda i: (order.index(i[0][0]), i[0][1])
        ):
            if wanted is not None and topic not in wanted:
                continue
            for offset, e in enumerate(envelopes):
                stamped = e.arrival.at if e.arrival else e.occurred_at
                millis = round(stamped.timestamp() * 1000)
                kind = LOG_APPEND_TIME if e.arrival else 0
                found.append(LogRecord(topic, partition, offset, e.key.encode(), encode(e), millis, (), kind))
        return found

    def log(self, topics: Sequence[str] = (*EVENT_TOPICS, CLOCK, INBOX)) -> EventLog:
        """The log as verify reads it: the event topics, the clock and the allocation inbox."""
        chosen = in_catalogue_order(tuple(topics))
        return build_log(self.records(chosen), chosen, "world")

    def export(self, path: Path) -> Path:
        topics = [t for t in BY_NAME if not t.startswith("h200.dlq.")]
        write_export(path, make_header("world", topics), self.records(topics))
        return path

    def allocations(self) -> list[allocation.ChipsAllocated]:
        return [e.payload for e in self.events("h200.allocations") if isinstance(e.payload, allocation.ChipsAllocated)]

    def allocation_of(self, buyer: str, batch: str) -> UUID:
        return next(a.allocation_id for a in self.allocations() if a.buyer_id == buyer and a.batch_id == batch)


# --- what ops and upstream systems publish ----------------------------------------------------------------


def rules(rule: str = "first_approved_first_served") -> list[Message]:
    return [
        policy.ImportUseRulesSet(
            policy_id="cn-use-rules",
            revision=1,
            effective_at=at(0),
            issued_by="MOFCOM",
            necessary_uses=("ai_research", "inference"),
            required_document_kinds=("end_use_statement",),
            max_inference_share_pct=50,
            min_domestic_commitment_pct=20,
        ),
        allocation_rule(rule),
    ]


def allocation_rule(rule: str, revision: int = 1, minute: float = 0) -> policy.AllocationPolicySet:
    return policy.AllocationPolicySet(
        policy_id=f"allocation/{POOL}",
        revision=revision,
        effective_at=at(minute),
        issued_by="ops",
        pool_id=POOL,
        rule=rule,  # type: ignore[arg-type]
    )


def cleared(buyer: str, quota: int, licensed: int | None = None) -> list[Message]:
    """Both governments' go-ahead: a US licence, China's import authorisation and a quota."""
    year = timedelta(days=365)
    return [
        policy.ExportLicenceIssued(
            policy_id=f"us-licence/{buyer}",
            revision=1,
            effective_at=at(0),
            issued_by="BIS",
            licence_id=f"BIS-{buyer.upper()}",
            buyer_id=buyer,
            quantity=licensed or quota,
            valid_from=T0 - year,
            valid_until=T0 + year,
        ),
        policy.ImporterAuthorised(
            policy_id=f"cn-importer/{buyer}",
            revision=1,
            effective_at=at(0),
            issued_by="MOFCOM",
            buyer_id=buyer,
            buyer_name=buyer.title(),
        ),
        policy.TrancheQuotaSet(
            policy_id=f"cn-quota/T1/{buyer}",
            revision=1,
            effective_at=at(0),
            issued_by="MOFCOM",
            tranche_id="T1",
            buyer_id=buyer,
            quantity=quota,
            opens_at=T0 - year,
            closes_at=T0 + year,
        ),
    ]


def order(buyer: str, ref: str, quantity: int, minute: float) -> SubmitOrder:
    return SubmitOrder(
        buyer_id=buyer,
        buyer_name=buyer.title(),
        upstream_ref=ref,
        pool_id=POOL,
        quantity=quantity,
        unit_price_cents=2_500_000,
        declared_uses=(DeclaredUse(use="ai_research", share_pct=70), DeclaredUse(use="inference", share_pct=30)),
        documents=(SupportingDocument(document_id=f"{ref}-EUS", kind="end_use_statement", sha256=f"{1:064x}"),),
        domestic_commitment=DomesticChipCommitment(supplier="Huawei Ascend", quantity=quantity // 2),
        delivery_site=DeliverySite(site_id="BJ-DC-3", city="Beijing"),
        submitted_at=at(minute),
    )


def batch(batch_id: str, quantity: int, minute: float) -> supply.BatchManufactured:
    return supply.BatchManufactured(
        batch_id=batch_id, pool_id=POOL, quantity=quantity, site="TSMC Fab 18, Tainan", ready_at=at(minute)
    )


def steps(allocation_id: UUID, *path: Step, minute: float) -> list[RecordFulfilmentStep]:
    return [
        RecordFulfilmentStep(allocation_id=allocation_id, step=s, at=at(minute + 60 * n)) for n, s in enumerate(path)
    ]


def story(world: World | None = None) -> World:
    """ByteDance, Alibaba (its licence covers 400 chips) and Tencent cleared, Baidu never authorised by China;
    two batches an hour apart shared first approved, first served; ByteDance's first shipment delivered,
    Alibaba's lost at sea and its chips allocated again, by then pro rata between Alibaba and Tencent."""
    world = (world or World()).publish(
        *rules(), *cleared("bytedance", 1_000), *cleared("alibaba", 1_000, licensed=400), *cleared("tencent", 300)
    )
    world.publish(
        order("bytedance", "BD-1", 600, minute=1),
        order("alibaba", "AL-1", 500, minute=2),
        order("tencent", "TC-1", 300, minute=3),
        order("baidu", "BA-1", 200, minute=4),
    )
    world.publish(batch("B1", 500, minute=60), batch("B2", 400, minute=120))
    delivered, lost = world.allocation_of("bytedance", "B1"), world.allocation_of("alibaba", "B2")
    world.publish(allocation_rule("pro_rata", revision=2, minute=150))
    shipments = [
        *steps(delivered, "packed", "shipped", "customs_cleared", "delivered", minute=180),
        *steps(lost, "packed", "shipped", "lost", minute=180),
    ]
    # Logistics reports each step as it happens: a broker's inbox receives them in time order.
    world.publish(*sorted(shipments, key=lambda report: report.at), producer="logistics")
    return world


def revoked_story() -> World:
    """The story, then China revokes Tencent: its 129 unshipped chips are recalled (fulfilment answers cancelled),
    released and allocated again to Alibaba, and the order book closes the order for approval to release it."""
    return story().publish(
        policy.ImporterRevoked(
            policy_id="cn-importer/tencent",
            revision=2,
            effective_at=at(240),
            issued_by="MOFCOM",
            buyer_id="tencent",
            reason="cybersecurity review",
        )
    )


ORDER_BD, ORDER_AL = order_id_for("bytedance", "BD-1"), order_id_for("alibaba", "AL-1")


# --- an export file as an auditor might tamper with it ------------------------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def edit(
    records: Iterable[LogRecord], where: Callable[[dict[str, Any]], bool], change: Callable[[dict[str, Any]], None]
) -> list[LogRecord]:
    """The records with the first envelope `where` selects changed by `change` (as JSON, as a file is edited)."""
    edited, done = [], False
    for record in records:
        envelope = json.loads(record.value or b"null")
        if not done and isinstance(envelope, dict) and where(envelope):
            change(envelope)
            record = replace(record, value=json.dumps(envelope).encode())
            done = True
        edited.append(record)
    assert done, "no record matched"
    return edited


def of_type(type_: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """Selects an envelope by its type and payload fields."""
    return lambda e: e["type"] == type_ and all(e["payload"].get(k) == v for k, v in fields.items())
