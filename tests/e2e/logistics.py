"""Logistics and two governments reacting to the log as it is written, for the concurrent end-to-end flow.

`Reactor` reads h200.allocations, h200.fulfilment and h200.approvals from a thread and answers at once, never
waiting for the system to settle: each new ledger line gets its shipment reports (a seeded plan: delivered, held
at customs, lost, refused, only packed, or nothing), and three lines are used to stage races:

* revocation: the first line of the revoked buyer is packed and shipped in the same burst as the ImporterRevoked;
* cancel: the first line of the cancelled order is reported up to delivery with the CancelOrder sent among them;
* suspension: the suspended buyer's first line is reported the moment allocation freezes it (AllocationSuspended),
  racing the frozen line's copy into fulfilment's inbox; the buyer is reinstated once that report is decided.

A report refused as unknown_allocation (it overtook its line's copy) or as approval_suspended (reinstated since)
is sent again from the refused step, with a note that makes it a new message; other refusals end the plan.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition

from schemas import builders as s
from schemas.allocation import AllocationReinstated, AllocationSuspended, ChipsAllocated
from schemas.approval import OrderApproved
from schemas.base import Message
from schemas.codec import ContractError, decode, encode
from schemas.fulfilment import FulfilmentStepRecorded, FulfilmentStepRejected, RecordFulfilmentStep, Step
from schemas.routing import home_topic
from schemas.supply import BatchManufactured
from schemas.topics import BY_NAME
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import producer
from services.ops.publish import envelope_for

WATCHED = ("h200.allocations", "h200.fulfilment", "h200.approvals")
DELIVERED: tuple[Step, ...] = ("packed", "shipped", "customs_cleared", "delivered")
PLANS: tuple[tuple[Step, ...], ...] = (
    DELIVERED,
    DELIVERED,
    DELIVERED,
    ("packed", "shipped", "held", "released", "customs_cleared", "delivered"),
    ("packed", "shipped", "lost"),
    ("packed", "shipped", "customs_cleared", "refused"),
    ("packed",),
    (),
)
RESENT = {"unknown_allocation", "approval_suspended"}
MAX_ATTEMPTS = 30


@dataclass(frozen=True)
class Roles:
    pool: str
    revoked: str
    """Buyer whose importer authorisation is revoked while its first line ships."""
    cancelled: tuple[str, str]
    """(buyer, upstream ref) of the order cancelled while its first line is delivered."""
    suspended: str
    """Buyer suspended while its first line is packed, then reinstated."""
    late_batch: BatchManufactured
    """Sent once the three orders above are approved, so that each is sure to receive chips."""


@dataclass
class Shipment:
    line: ChipsAllocated
    plan: tuple[Step, ...]
    attempt: int = 0
    commands: dict[UUID, int] = field(default_factory=dict)
    """Command ids of the current attempt -> index of their step in the plan."""
    refused: bool = False
    """A step of the current attempt was refused (later ones then are too, as out of order)."""
    waiting_from: int | None = None
    """Index of the step to send again once the line is reinstated."""
    frozen: bool = False


class Reactor(threading.Thread):
    def __init__(self, bootstrap: str, roles: Roles, seed: int) -> None:
        super().__init__(name="e2e-reactor", daemon=True)
        self.bootstrap = bootstrap
        self.roles = roles
        self.rng = Random(seed)
        self.shipments: dict[UUID, Shipment] = {}
        self.fired: set[str] = set()
        self.refusals: dict[str, int] = {}
        self.sent = 0
        self.error: BaseException | None = None
        self.positions: dict[TopicPartition, int] = {}
        self._lock = threading.RLock()
        self._halt = threading.Event()
        self._approved: set[tuple[str, str]] = set()
        self._frozen_line: UUID | None = None

    # --- the thread --------------------------------------------------------------------------------------

    def run(self) -> None:
        partitions = [TopicPartition(t, p) for t in WATCHED for p in range(BY_NAME[t].partitions)]
        try:
            with producer(self.bootstrap) as self._producer:
                consumer = KafkaConsumer(
                    **kafka_python_options(), bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
                )
                try:
                    consumer.assign(partitions)
                    consumer.seek_to_beginning(*partitions)
                    while not self._halt.is_set():
                        for tp, records in consumer.poll(timeout_ms=100).items():
                            for record in records:
                                self._read(record.value)
                            self.positions[tp] = records[-1].offset + 1
                        self._producer.flush()
                finally:
                    consumer.close()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(30)
        if self.error is not None:
            raise self.error

    def _read(self, value: bytes | None) -> None:
        try:
            envelope = decode(value or b"")
        except ContractError:
            return
        with self._lock:
            self._react(envelope.payload)

    def _react(self, p: Any) -> None:
        if isinstance(p, OrderApproved) and p.pool_id == self.roles.pool:
            self._approved.add((p.buyer_id, str(p.order_id)))
            self._send_late_batch_when_due()
        elif isinstance(p, ChipsAllocated) and p.pool_id == self.roles.pool and p.allocation_id not in self.shipments:
            self._new_line(p)
        elif isinstance(p, AllocationSuspended | AllocationReinstated) and p.allocation_id in self.shipments:
            self._frozen(self.shipments[p.allocation_id], isinstance(p, AllocationSuspended))
        elif isinstance(p, FulfilmentStepRecorded | FulfilmentStepRejected) and p.allocation_id in self.shipments:
            self._decided(self.shipments[p.allocation_id], p)

    # --- reactions ---------------------------------------------------------------------------------------

    def _new_line(self, line: ChipsAllocated) -> None:
        roles = self.roles
        cancelled_order = s.order_id(*roles.cancelled)
        if line.buyer_id == roles.revoked and "revocation" not in self.fired:
            self.fired.add("revocation")
            shipment = self._track(line, DELIVERED)
            steps = self._steps(shipment, 0)
            self._send([*steps[:2], s.importer_revoked(roles.revoked, revision=2, minute=600), *steps[2:]])
        elif line.order_id == cancelled_order and "cancel" not in self.fired:
            self.fired.add("cancel")
            shipment = self._track(line, DELIVERED)
            steps = self._steps(shipment, 0)
            at = self.rng.choice((3, 4))  # just before or just after the delivery report
            self._send([*steps[:at], s.cancel(*roles.cancelled, minute=600), *steps[at:]])
        elif line.buyer_id == roles.suspended and "suspension" not in self.fired:
            self.fired.add("suspension")
            self._track(line, DELIVERED)
            self._frozen_line = line.allocation_id  # reported when allocation freezes it
            self._send([s.importer_suspended(roles.suspended, revision=2, minute=600)])
        else:
            shipment = self._track(line, self.rng.choice(PLANS))
            self._send(self._steps(shipment, 0))

    def _frozen(self, shipment: Shipment, frozen: bool) -> None:
        shipment.frozen = frozen
        if frozen and shipment.line.allocation_id == self._frozen_line and "packing_raced" not in self.fired:
            self.fired.add("packing_raced")
            self._send(self._steps(shipment, 0))
        elif not frozen and shipment.waiting_from is not None:
            self._send(self._steps(shipment, shipment.waiting_from))

    def _decided(self, shipment: Shipment, p: FulfilmentStepRecorded | FulfilmentStepRejected) -> None:
        index = shipment.commands.get(p.cause_event_id)
        if index is None:
            return
        if shipment.line.allocation_id == self._frozen_line and index == 0:
            self._reinstate()
        if not isinstance(p, FulfilmentStepRejected) or shipment.refused:
            return
        shipment.refused = True
        code = p.reason.code
        self.refusals[code] = self.refusals.get(code, 0) + 1
        if code not in RESENT or shipment.attempt >= MAX_ATTEMPTS:
            return
        if code == "approval_suspended" and shipment.frozen:
            shipment.waiting_from = index
        else:
            self._send(self._steps(shipment, index))

    def _reinstate(self) -> None:
        if "reinstatement" not in self.fired:
            self.fired.add("reinstatement")
            self._send([s.importer_reinstated(self.roles.suspended, revision=3, minute=660)])

    def _send_late_batch_when_due(self) -> None:
        roles = self.roles
        buyers = {b for b, _ in self._approved}
        cancelled = (roles.cancelled[0], str(s.order_id(*roles.cancelled)))
        if "late_batch" in self.fired or not (
            {roles.revoked, roles.suspended} <= buyers and cancelled in self._approved
        ):
            return
        self.fired.add("late_batch")
        self._send([roles.late_batch])

    def settled(self) -> None:
        """Called once the system settled: stage what the log never prompted (a race that found no line)."""
        with self._lock:
            if self._frozen_line is not None and "packing_raced" not in self.fired:
                self.fired.add("packing_raced (late)")
                self._send(self._steps(self.shipments[self._frozen_line], 0))
            if "suspension" in self.fired:
                self._reinstate()
            if "late_batch" not in self.fired:
                self.fired.add("late_batch")
                self._send([self.roles.late_batch])
            self._producer.flush()

    # --- shipments ---------------------------------------------------------------------------------------

    def _track(self, line: ChipsAllocated, plan: tuple[Step, ...]) -> Shipment:
        shipment = self.shipments[line.allocation_id] = Shipment(line, plan)
        return shipment

    def _steps(self, shipment: Shipment, start: int) -> list[Message]:
        """A new attempt at the plan from step `start`: new command ids (a note names the attempt)."""
        shipment.attempt += 1
        shipment.commands, shipment.refused, shipment.waiting_from = {}, False, None
        note = None if shipment.attempt == 1 else f"report sent again (attempt {shipment.attempt})"
        reports: list[Message] = []
        for index in range(start, len(shipment.plan)):
            when = shipment.line.allocated_at + timedelta(hours=1 + index)
            report = RecordFulfilmentStep(
                allocation_id=shipment.line.allocation_id, step=shipment.plan[index], at=when, note=note
            )
            shipment.commands[envelope_for(report, "logistics").id] = index
            reports.append(report)
        return reports

    def _send(self, payloads: Sequence[Message]) -> None:
        for payload in payloads:
            who = "logistics" if isinstance(payload, RecordFulfilmentStep) else "ops"
            envelope = envelope_for(payload, who)
            self._producer.send(home_topic(payload).name, key=envelope.key.encode(), value=encode(envelope))
            self.sent += 1
