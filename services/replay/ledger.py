"""The ledger folded from the log: who got which batch, how many, when, what became of it, and why.

The fold keeps facts per allocation and per batch and builds the lines at the end, so the result does not
depend on how the partitions of different topics interleave: only on which events are in the log (and, for
the steps of one shipment, their order in its partition). `as_of` keeps exactly what had been decided by then,
each fact cut on its own time (see `decided_at`), not on its envelope's: a decision's envelope carries the time
of its cause, and a line caused by an earlier-dated input that arrived late (an approval reaching a batch ready
later, a policy effective before the order it applies to) is dated later than that cause. The ledger hash
covers the moment, every line and the totals in one canonical JSON form, so the same log gives the same hash
on every replay, and the live read model (services.replay.live) gives the same hash when it tells the same story.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import Decision, OrderApproved
from schemas.base import Message
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.intake import OrderPlaced
from schemas.supply import BatchManufactured

STEP_STATUS = {"released": "hold_released"}
"""A shipment step named like a line status: `released` from a customs hold is not the chips going back."""


def iso(moment: datetime) -> str:
    """The one text form of a time in the ledger: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()


def line_status(released: bool, last_step: str | None) -> str:
    """released (chips back in the pool), else the shipment's last step, else allocated."""
    if released:
        return "released"
    if last_step is None:
        return "allocated"
    return STEP_STATUS.get(last_step, last_step)


@dataclass(frozen=True, slots=True)
class Line:
    """One allocation: chips of a batch given to an order, with its fate and the decision behind it."""

    allocation_id: str
    pool_id: str
    buyer: str
    order_id: str
    batch_id: str
    quantity: int
    allocated_at: str
    status: str
    shipped_at: str | None
    delivered_at: str | None
    rule: str
    policy_version: str
    cause_event_id: str

    @property
    def live(self) -> bool:
        """Still held by its order (not released back to the pool)."""
        return self.status != "released"

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (self.allocated_at, self.pool_id, self.batch_id, self.order_id, self.allocation_id)


@dataclass(frozen=True, slots=True)
class Stock:
    """A manufactured batch: what it holds."""

    batch_id: str
    pool_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Demand:
    """What a buyer asked for and was approved, summed over its orders."""

    requested: int = 0
    approved: int = 0


@dataclass(frozen=True)
class Ledger:
    as_of: str | None
    lines: tuple[Line, ...]
    """Sorted by allocation time, pool, batch, order, allocation id."""
    stock: tuple[Stock, ...]
    """Sorted by batch id."""
    demand: dict[str, Demand] = field(default_factory=dict)
    """Per buyer that placed an order."""

    def totals(self) -> dict[str, Any]:
        return totals(self.lines, self.stock, self.demand)

    def canonical(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "lines": [asdict(line) for line in self.lines], "totals": self.totals()}

    @property
    def ledger_hash(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def make_ledger(as_of: str | None, lines: Iterable[Line], stock: Iterable[Stock], demand: dict[str, Demand]) -> Ledger:
    return Ledger(
        as_of,
        tuple(sorted(lines, key=lambda line: line.sort_key)),
        tuple(sorted(stock, key=lambda batch: batch.batch_id)),
        dict(sorted(demand.items())),
    )


def totals(lines: Iterable[Line], stock: Iterable[Stock], demand: dict[str, Demand]) -> dict[str, Any]:
    """Per buyer, per batch (with its unallocated chips) and per pool; live quantities exclude released lines."""
    buyers: dict[str, dict[str, int]] = {
        buyer: {"requested": d.requested, "approved": d.approved, **_zero()} for buyer, d in demand.items()
    }
    batches: dict[str, dict[str, Any]] = {
        b.batch_id: {"pool_id": b.pool_id, "quantity": b.quantity, **_zero()} for b in stock
    }
    for line in lines:
        buyer = buyers.setdefault(line.buyer, {"requested": 0, "approved": 0, **_zero()})
        batch = batches.setdefault(line.batch_id, {"pool_id": line.pool_id, "quantity": 0, **_zero()})
        for counts in (buyer, batch):
            _count(counts, line)
    pools: dict[str, dict[str, int]] = {}
    for batch in batches.values():
        batch["unallocated"] = batch["quantity"] - batch["allocated"]
        pool = pools.setdefault(batch["pool_id"], {"quantity": 0, "allocated": 0, "unallocated": 0})
        for name in pool:
            pool[name] += batch[name]
    return {
        "buyers": dict(sorted(buyers.items())),
        "batches": dict(sorted(batches.items())),
        "pools": dict(sorted(pools.items())),
    }


def _zero() -> dict[str, int]:
    return {"allocated": 0, "shipped": 0, "delivered": 0, "released": 0}


def _count(counts: dict[str, Any], line: Line) -> None:
    if not line.live:
        counts["released"] += line.quantity
        return
    counts["allocated"] += line.quantity
    counts["shipped"] += line.quantity if line.shipped_at or line.delivered_at else 0
    counts["delivered"] += line.quantity if line.delivered_at else 0


def decided_at(envelope: Envelope[Message]) -> datetime:
    """When the fact was decided or happened, by its own time: a line when allocation decided it (the later of its
    envelope's time and its allocated_at: chips are handed out as of approval's frontier, which may lag the moment
    allocation made the decision, docs/time.md), a release when released, a shipment step at its `at`, any decision
    of approval when decided, an order when placed, a batch when ready; any other event when it occurred."""
    match envelope.payload:
        case ChipsAllocated(allocated_at=moment):
            return max(moment, envelope.occurred_at)
        case AllocationReleased(released_at=moment):
            return moment
        case FulfilmentStepRecorded(at=moment):
            return moment
        case Decision(decided_at=moment):
            return moment
        case OrderPlaced(placed_at=moment):
            return moment
        case BatchManufactured(ready_at=moment):
            return moment
    return envelope.occurred_at


@dataclass
class _Facts:
    allocated: dict[str, ChipsAllocated] = field(default_factory=dict)
    released: dict[str, AllocationReleased] = field(default_factory=dict)
    steps: dict[str, list[FulfilmentStepRecorded]] = field(default_factory=dict)
    batches: dict[str, BatchManufactured] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    approved: dict[str, int] = field(default_factory=dict)

    def add(self, payload: Message) -> None:
        match payload:
            case ChipsAllocated():
                self.allocated.setdefault(str(payload.allocation_id), payload)
            case AllocationReleased():
                self.released.setdefault(str(payload.allocation_id), payload)
            case FulfilmentStepRecorded():
                self.steps.setdefault(str(payload.allocation_id), []).append(payload)
            case BatchManufactured():
                self.batches.setdefault(payload.batch_id, payload)
            case OrderPlaced():
                self.requested[payload.buyer_id] = self.requested.get(payload.buyer_id, 0) + payload.quantity
            case OrderApproved():
                self.approved[payload.buyer_id] = self.approved.get(payload.buyer_id, 0) + payload.approved_quantity


def fold_ledger(events: Iterable[Envelope[Message]], as_of: datetime | None = None) -> Ledger:
    """The ledger of every fact decided at or before `as_of` by its own time (`decided_at`), or of all of them for
    None: whatever order the records arrived in, a line is in it iff allocated by then, released iff released by
    then, and shows the steps of its shipment taken by then."""
    facts = _Facts()
    for envelope in events:
        if as_of is None or decided_at(envelope) <= as_of:
            facts.add(envelope.payload)
    lines = [_line(allocated, facts) for allocated in facts.allocated.values()]
    stock = [Stock(b.batch_id, b.pool_id, b.quantity) for b in facts.batches.values()]
    demand = {buyer: Demand(asked, facts.approved.get(buyer, 0)) for buyer, asked in facts.requested.items()}
    return make_ledger(None if as_of is None else iso(as_of), lines, stock, demand)


def _line(allocated: ChipsAllocated, facts: _Facts) -> Line:
    key = str(allocated.allocation_id)
    released = facts.released.get(key)
    steps = facts.steps.get(key, [])
    at = {step.step: iso(step.at) for step in steps}
    return Line(
        allocation_id=key,
        pool_id=allocated.pool_id,
        buyer=allocated.buyer_id,
        order_id=str(allocated.order_id),
        batch_id=allocated.batch_id,
        quantity=allocated.quantity,
        allocated_at=iso(allocated.allocated_at),
        status=line_status(released is not None, steps[-1].step if steps else None),
        shipped_at=at.get("shipped"),
        delivered_at=at.get("delivered"),
        rule=allocated.rule,
        policy_version=str(allocated.policy_ref) if allocated.policy_ref else "default",
        cause_event_id=str(allocated.cause_event_id),
    )
