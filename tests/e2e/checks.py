"""Questions the end-to-end tests ask of the event log (services.ops.audit.Log) and of the Redis read model."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from schemas import allocation, approval, fulfilment, intake
from schemas.base import Message
from schemas.envelope import Envelope
from services.ops import audit
from services.projector.projection import STATUS_BY_DECISION
from services.projector.store import ReadModelStore

FIRST_DECISIONS = (approval.OrderApproved, approval.OrderDenied, approval.OrderHeld)
TOTALLED = (
    intake.OrderPlaced,
    approval.OrderApproved,
    allocation.ChipsAllocated,
    allocation.AllocationReleased,
    fulfilment.FulfilmentStepRecorded,
)
BUYER_TOTALS = ("orders", "requested", "approved", "allocated", "shipped", "delivered")
LEDGER_FIELDS = ("allocation_id", "buyer_id", "order_id", "batch_id", "quantity", "allocated_at")


def decisions_by_order(log: audit.Log) -> dict[str, list[Envelope[Message]]]:
    """Approvals, denials and holds of each order, in log order (distinct ids only: the log dedupes by id)."""
    found: dict[str, list[Envelope[Message]]] = defaultdict(list)
    for event in log.of(*FIRST_DECISIONS):
        found[str(event.payload.order_id)].append(event)
    return found


def outcome(events: list[Envelope[Message]]) -> str:
    return " then ".join(e.type for e in events) or "undecided"


def placed_ids_by_order(log: audit.Log) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for event in log.of(intake.OrderPlaced):
        found[str(event.payload.order_id)].add(str(event.id))
    return found


def same_kind_same_cause(log: audit.Log, types: tuple[type[Message], ...]) -> list[str]:
    """Facts decided twice: two distinct event ids of one kind for one thing and one cause."""
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for event in log.of(*types):
        ids[(event.type, _subject(event.payload), str(event.payload.cause_event_id))].add(str(event.id))
    return [
        f"{kind} of {subject} for cause {cause}: {len(v)} ids"
        for (kind, subject, cause), v in ids.items()
        if len(v) > 1
    ]


def _subject(p: Any) -> str:
    """What one cause decides about at most once per kind of fact."""
    if isinstance(p, allocation.ChipsAllocated):
        return f"order {p.order_id} batch {p.batch_id}"
    if isinstance(p, fulfilment.FulfilmentStepRecorded):
        return f"allocation {p.allocation_id} step {p.step}"
    if isinstance(p, allocation.AllocationReleased | fulfilment.DeliveryFailed):
        return f"allocation {p.allocation_id}"
    return f"order {p.order_id}"


def live_lines(log: audit.Log) -> list[dict[str, Any]]:
    return audit.ledger_rows(log)


def grants(log: audit.Log) -> Counter[tuple[str, str]]:
    """Live chips per (buyer, batch): who holds how many of which batch."""
    held: Counter[tuple[str, str]] = Counter()
    for row in live_lines(log):
        held[(row["buyer_id"], row["batch_id"])] += row["quantity"]
    return held


def buyer_totals(log: audit.Log) -> dict[str, dict[str, int]]:
    """Orders, chips requested, approved, allocated, shipped and delivered per buyer, folded from the log as the
    projector should fold it."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for event in log.of(*TOTALLED):
        p: Any = event.payload
        buyer = totals[p.buyer_id]
        if isinstance(p, intake.OrderPlaced):
            buyer["orders"] += 1
            buyer["requested"] += p.quantity
        elif isinstance(p, approval.OrderApproved):
            buyer["approved"] += p.approved_quantity
        elif isinstance(p, allocation.ChipsAllocated):
            buyer["allocated"] += p.quantity
        elif isinstance(p, allocation.AllocationReleased):
            buyer["allocated"] -= p.quantity
            if p.why == "delivery_failed":
                buyer["shipped"] -= p.quantity
        elif isinstance(p, fulfilment.FulfilmentStepRecorded) and p.step in ("shipped", "delivered"):
            buyer[p.step] += p.quantity
    return {b: dict(t) for b, t in totals.items()}


def order_statuses(log: audit.Log) -> dict[str, str]:
    """The status each placed order should show: that of its latest decision, or placed (no cancellations)."""
    found = {str(e.payload.order_id): "placed" for e in log.of(intake.OrderPlaced)}
    for event in log.of(*STATUS_BY_DECISION):
        found[str(event.payload.order_id)] = STATUS_BY_DECISION[type(event.payload)]
    return found


def read_model_disagreements(store: ReadModelStore, log: audit.Log) -> list[str]:
    """Where the Redis read model says something other than the log: ledger lines, buyer totals, order
    statuses and batch totals."""
    problems = []
    model = {tuple(str(line[f]) for f in LEDGER_FIELDS) for line in store.ledger() if line.get("status") == "allocated"}
    folded = {tuple(str(row[f]) for f in LEDGER_FIELDS) for row in live_lines(log)}
    problems += [f"read model only: {line}" for line in sorted(model - folded)]
    problems += [f"log only: {line}" for line in sorted(folded - model)]
    buyers, folded_totals = store.buyers(), buyer_totals(log)
    for buyer in sorted(set(buyers) | set(folded_totals)):
        for name in BUYER_TOTALS:
            shown, value = int(buyers.get(buyer, {}).get(name, 0)), folded_totals.get(buyer, {}).get(name, 0)
            if shown != value:
                problems.append(f"buyer {buyer} {name}: read model {shown}, log {value}")
    for order_id, expected in order_statuses(log).items():
        shown = store.order(order_id).get("status")
        if shown != expected:
            trail = " > ".join(entry["type"] for entry in store.trail(order_id))
            problems.append(f"order {order_id} status: read model {shown}, log {expected} (applied: {trail})")
    by_batch: Counter[str] = Counter()
    for row in live_lines(log):
        by_batch[row["batch_id"]] += row["quantity"]
    for batch_id, values in store.batches().items():
        if int(values.get("allocated", 0)) != by_batch[batch_id]:
            problems.append(
                f"batch {batch_id} allocated: read model {values.get('allocated')}, log {by_batch[batch_id]}"
            )
    return problems
