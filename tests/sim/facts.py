"""The event topics folded into what a compliance officer would read off them: orders and their approvals,
licences and quotas, batches, ledger lines and what happened to each shipment.

Written from ../shared/domain.md, not from the cores: nothing here imports a core or reuses its counting. Each
fact is taken once by envelope id (duplicates are expected). Types are matched by name, so messages added to
the protocol later are read when their meaning is clear from the domain and ignored otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.envelope import Envelope

SHIPPED = frozenset({"shipped", "customs_cleared", "delivered", "held", "released", "lost", "refused"})
"""Steps that only a shipment that left the warehouse can take."""
FAILED = frozenset({"lost", "refused"})
STATUS = {
    "OrderApproved": "approved",
    "ApprovalReinstated": "approved",
    "ApprovalSuspended": "suspended",
    "ApprovalRevoked": "ended",
    "ApprovalCancelled": "ended",
    "ApprovalExpired": "ended",
    "ApprovalReleased": "ended",
}
"""What each approval event says about an order's standing; `ended` is final."""


@dataclass
class Line:
    """A ledger line: chips of one batch for one order, and what became of them."""

    allocated: Envelope[Any]
    seq: int
    released: Envelope[Any] | None = None
    released_seq: int = -1
    steps: list[tuple[str, int, Envelope[Any]]] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        return self.allocated.payload

    @property
    def shipped(self) -> bool:
        return any(step in SHIPPED for step, *_ in self.steps)

    @property
    def failed(self) -> bool:
        return any(step in FAILED for step, *_ in self.steps)

    @property
    def gone(self) -> bool:
        """Chips that left the warehouse and did not come back as a failed delivery."""
        return self.shipped and not self.failed

    @property
    def live(self) -> bool:
        return self.released is None


@dataclass
class Order:
    order_id: UUID
    placed: list[Envelope[Any]] = field(default_factory=list)
    approved: Any = None
    """The latest OrderApproved payload."""
    approved_seq: int = -1
    """Its place in the order of record (when it was written)."""
    standing: list[tuple[datetime, int, str, Envelope[Any]]] = field(default_factory=list)
    """(decided_at, seq, status, event) for every approval event, in log order."""
    lines: list[Line] = field(default_factory=list)
    closed: tuple[int, Envelope[Any]] | None = None
    """(seq, OrderClosed): the order book's word that the order takes no more chips, once the protocol has one."""

    @property
    def status(self) -> str | None:
        return _standing([status for *_, status, _ in self.standing])

    def status_at(self, at: datetime) -> str | None:
        """The standing in business time (decision times), whatever order the copies travelled in."""
        known = sorted((entry for entry in self.standing if entry[0] <= at), key=lambda entry: entry[:2])
        return _standing([status for _, _, status, _ in known])

    def status_before(self, seq: int) -> str | None:
        """The standing as recorded before the record at `seq` was written."""
        return _standing([status for _, at_seq, status, _ in self.standing if at_seq < seq])

    def live_chips(self) -> int:
        return sum(line.payload.quantity for line in self.lines if line.live)

    def gone_chips(self) -> int:
        return sum(line.payload.quantity for line in self.lines if line.gone)

    def held_chips(self) -> int:
        """Licence and quota use the order stands for: its approval while open, what it kept once ended."""
        if self.approved is None:
            return 0
        if self.status == "ended":
            return self.gone_chips()
        return max(self.approved.approved_quantity, self.gone_chips())


@dataclass
class Facts:
    seen: dict[UUID, int] = field(default_factory=dict)
    """Every fact's id, with the place (seq) where it was first written: the order of record."""
    first: dict[UUID, Envelope[Any]] = field(default_factory=dict)
    reused: list[tuple[Envelope[Any], Envelope[Any]]] = field(default_factory=list)
    """Two different facts written under one id (every reader keeps the first and drops the second)."""
    orders: dict[UUID, Order] = field(default_factory=dict)
    placed_refs: dict[tuple[str, str], list[Envelope[Any]]] = field(default_factory=dict)
    lines: dict[UUID, Line] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    licence_max: dict[tuple[str, str], int] = field(default_factory=dict)
    quota_max: dict[tuple[str, str], int] = field(default_factory=dict)
    licence_revisions: dict[str, list[Any]] = field(default_factory=dict)
    """licence_id -> every ExportLicenceIssued for it: its validity window by revision."""
    rules: dict[str, tuple[int, str]] = field(default_factory=dict)
    """pool -> (revision, rule) of the latest AllocationPolicySet."""
    rule_revisions: dict[str, list[Any]] = field(default_factory=dict)
    """pool -> every AllocationPolicySet for it."""
    rejections: dict[UUID, list[str]] = field(default_factory=dict)
    """Report id -> reason codes of every FulfilmentStepRejected it caused (duplicates included)."""
    recorded: set[tuple[UUID, str]] = field(default_factory=set)
    """(allocation_id, step) of every step recorded."""
    orphans: list[Envelope[Any]] = field(default_factory=list)
    """Steps or releases naming an allocation the ledger never had."""

    def order(self, order_id: UUID) -> Order:
        return self.orders.setdefault(order_id, Order(order_id))

    def observe(self, envelope: Envelope[Any], seq: int) -> bool:
        """Fold one record of an event topic; False if it is a duplicate."""
        payload = envelope.payload
        if payload.TYPE == "FulfilmentStepRejected":
            self.rejections.setdefault(envelope.causation_id, []).append(payload.reason.code)
        if envelope.id in self.seen:
            if self.first[envelope.id].payload != payload:
                self.reused.append((self.first[envelope.id], envelope))
            return False
        self.seen[envelope.id] = seq
        self.first[envelope.id] = envelope
        kind = payload.TYPE
        if kind == "OrderPlaced":
            self.order(payload.order_id).placed.append(envelope)
            self.placed_refs.setdefault((payload.buyer_id, payload.upstream_ref), []).append(envelope)
        elif kind in STATUS:
            order = self.order(payload.order_id)
            if kind == "OrderApproved":
                order.approved, order.approved_seq = payload, seq
            order.standing.append((payload.decided_at, seq, STATUS[kind], envelope))
        elif kind == "BatchManufactured":
            self.batches.setdefault(payload.batch_id, payload.quantity)
        elif kind == "ExportLicenceIssued":
            key = (payload.buyer_id, payload.licence_id)
            self.licence_max[key] = max(self.licence_max.get(key, 0), payload.quantity)
            self.licence_revisions.setdefault(payload.licence_id, []).append(payload)
        elif kind == "TrancheQuotaSet":
            key = (payload.buyer_id, payload.tranche_id)
            self.quota_max[key] = max(self.quota_max.get(key, 0), payload.quantity)
        elif kind == "AllocationPolicySet":
            self.rule_revisions.setdefault(payload.pool_id, []).append(payload)
            if payload.revision > self.rules.get(payload.pool_id, (0, ""))[0]:
                self.rules[payload.pool_id] = (payload.revision, payload.rule)
        elif kind == "ChipsAllocated":
            if payload.allocation_id not in self.lines:
                line = self.lines[payload.allocation_id] = Line(envelope, seq)
                self.order(payload.order_id).lines.append(line)
        elif kind == "AllocationReleased":
            self._released(envelope, seq)
        elif kind == "OrderClosed":
            self.order(payload.order_id).closed = (seq, envelope)
        elif kind == "FulfilmentStepRecorded":
            self.recorded.add((payload.allocation_id, payload.step))
            line = self.lines.get(payload.allocation_id)
            if line is None:
                self.orphans.append(envelope)
            else:
                line.steps.append((payload.step, seq, envelope))
        return True

    def _released(self, envelope: Envelope[Any], seq: int) -> None:
        line = self.lines.get(envelope.payload.allocation_id)
        if line is None or line.released is not None:
            self.orphans.append(envelope)  # released twice, or never allocated: chips counted back twice
        else:
            line.released, line.released_seq = envelope, seq

    def valid_until(self, licence_id: str, at: datetime) -> datetime | None:
        """The end of a licence's validity in its latest revision in force at `at` (effective by then)."""
        issued = [p for p in self.licence_revisions.get(licence_id, []) if p.effective_at <= at]
        return max(issued, key=lambda p: p.revision).valid_until if issued else None

    def licence_use(self, buyer: str, licence_id: str) -> int:
        return sum(
            order.held_chips()
            for order in self.orders.values()
            if order.approved is not None
            and (order.approved.buyer_id, order.approved.licence_id) == (buyer, licence_id)
        )

    def quota_use(self, buyer: str, tranche_id: str) -> int:
        return sum(
            order.held_chips()
            for order in self.orders.values()
            if order.approved is not None
            and (order.approved.buyer_id, order.approved.tranche_id) == (buyer, tranche_id)
        )

    def kept_by(self, buyer: str) -> list[Envelope[Any]]:
        """The approval events and shipped lines of a buyer's ended orders: what shows an over-commitment."""
        shown = []
        for order in self.orders.values():
            if order.approved is not None and order.approved.buyer_id == buyer and order.status == "ended":
                shown += [event for *_, event in order.standing]
                shown += [line.allocated for line in order.lines if line.gone]
        return shown


def _standing(statuses: list[str]) -> str | None:
    return "ended" if "ended" in statuses else (statuses[-1] if statuses else None)
