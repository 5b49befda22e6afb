"""The protocol between services (README) checked over a settled log: the auditor's view of recalls and closes.

Each check reads facts in the order their one writer recorded them: a shipment's steps and recall answers share
one partition of h200.fulfilment (keyed by allocation), a pool's lines, releases and closes one partition of
h200.allocations, and fulfilment decided in the order of its inbox (h200.fulfilment.commands), where the copies of
AllocationSuspended / AllocationReinstated sit among the logistics reports. The log must be settled: a recall not
yet answered or an order not yet closed is reported as missing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from schemas.allocation import (
    AllocationRecallRequested,
    AllocationReinstated,
    AllocationReleased,
    AllocationSuspended,
    ChipsAllocated,
    OrderClosed,
)
from schemas.approval import (
    ApprovalCancelled,
    ApprovalReleased,
    ApprovalRevoked,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.envelope import Envelope
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, RecallAnswered, RecordFulfilmentStep
from schemas.intake import OrderCancelled
from schemas.policy import ExportLicenceIssued, TrancheQuotaSet
from services.replay.eventlog import EventLog

Event = Envelope[Any]
SHIPPED = frozenset({"shipped", "customs_cleared", "held", "released", "delivered", "lost", "refused"})
"""Steps recorded only once the chips left the warehouse."""
LEAVING = frozenset({"packed", "shipped"})
"""Steps fulfilment must refuse while a line is suspended."""


def check_protocol(log: EventLog, fulfilment_inbox: Mapping[int, Sequence[Event]]) -> list[str]:
    """Every breach found, each naming the line or order; empty when the settled log keeps the protocol."""
    return [
        *_recalls(log),
        *_no_step_while_suspended(log, fulfilment_inbox),
        *_closes(log),
        *_shipped_within_allocated(log),
        *_shipped_within_licence_and_quota(log),
        *_held_for_a_release(log),
    ]


def _recalls(log: EventLog) -> list[str]:
    """Every recall answered once; `cancelled` only before the line shipped, and no step after it."""
    answers: dict[UUID, list[Any]] = defaultdict(list)
    for e in log.of(RecallAnswered):
        answers[e.payload.cause_event_id].append(e.payload)  # type: ignore[attr-defined]
    problems = [
        f"recall {e.id} of allocation {e.payload.allocation_id} ({e.payload.why}) answered {len(answers[e.id])} times"  # type: ignore[attr-defined]
        for e in log.of(AllocationRecallRequested)
        if len(answers[e.id]) != 1
    ]
    shipped: set[UUID] = set()
    cancelled: set[UUID] = set()
    for e in log.of(FulfilmentStepRecorded, RecallAnswered):  # one allocation's facts: one partition, in order
        p: Any = e.payload
        if isinstance(p, RecallAnswered):
            if p.outcome == "cancelled":
                cancelled.add(p.allocation_id)
                if p.allocation_id in shipped:
                    problems.append(f"allocation {p.allocation_id}: recall answered cancelled after it shipped")
            elif p.allocation_id not in shipped:
                problems.append(f"allocation {p.allocation_id}: recall answered already_shipped, no shipping recorded")
            continue
        if p.allocation_id in cancelled:
            problems.append(f"allocation {p.allocation_id}: step {p.step} recorded after its recall was cancelled")
        if p.step in SHIPPED:
            shipped.add(p.allocation_id)
    return problems


def _no_step_while_suspended(log: EventLog, inbox: Mapping[int, Sequence[Event]]) -> list[str]:
    """No packing or shipping recorded for a report fulfilment read while it held the line suspended."""
    recorded = {e.payload.cause_event_id: e.payload for e in log.of(FulfilmentStepRecorded)}  # type: ignore[attr-defined]
    problems: list[str] = []
    for partition in sorted(inbox):
        suspended: set[UUID] = set()
        seen: set[UUID] = set()
        for e in inbox[partition]:
            if e.id in seen:  # fulfilment applies an input once
                continue
            seen.add(e.id)
            p: Any = e.payload
            if isinstance(p, AllocationSuspended | AllocationReinstated):
                (suspended.add if isinstance(p, AllocationSuspended) else suspended.discard)(p.allocation_id)
                continue
            frozen = isinstance(p, RecordFulfilmentStep) and p.step in LEAVING and p.allocation_id in suspended
            if frozen and e.id in recorded:
                problems.append(f"allocation {p.allocation_id}: {p.step} recorded while the line was suspended")
    return problems


def _closes(log: EventLog) -> list[str]:
    """Every ended order closed once, keeping exactly its lines that shipped; each close released as approved -
    kept; every release answers a close."""
    approved: dict[UUID, Any] = {e.payload.order_id: e.payload for e in log.of(OrderApproved)}  # type: ignore[attr-defined]
    ended = {e.payload.order_id for e in log.of(ApprovalRevoked, ApprovalCancelled)}  # type: ignore[attr-defined]
    closes: dict[UUID, list[OrderClosed]] = defaultdict(list)
    kept_at_close: dict[UUID, int] = {}
    unshipped_at_close: dict[UUID, list[UUID]] = {}
    shipped = _shipped(log)
    live: dict[UUID, dict[UUID, int]] = defaultdict(dict)
    for e in log.of(ChipsAllocated, AllocationReleased, OrderClosed):  # a pool's decisions: one partition, in order
        p: Any = e.payload
        if isinstance(p, ChipsAllocated):
            live[p.order_id][p.allocation_id] = p.quantity
        elif isinstance(p, AllocationReleased):
            live[p.order_id].pop(p.allocation_id, None)
        else:
            closes[p.order_id].append(p)
            kept_at_close[p.order_id] = sum(live[p.order_id].values())
            unshipped_at_close[p.order_id] = [a for a in live[p.order_id] if a not in shipped]
    releases: dict[UUID, list[Any]] = defaultdict(list)
    for e in log.of(ApprovalReleased):
        releases[e.payload.order_id].append(e.payload)  # type: ignore[attr-defined]
    problems = [f"order {o} ended but was closed {n} times" for o in ended if (n := len(closes.get(o, []))) != 1]
    problems += [f"order {o} released but never closed" for o in releases if o not in closes]
    for order_id, found in closes.items():
        closed = found[0]
        if closed.kept_quantity != kept_at_close[order_id] or unshipped_at_close[order_id]:
            problems.append(
                f"order {order_id} closed keeping {closed.kept_quantity} chips; its lines then held "
                f"{kept_at_close[order_id]}, of which {len(unshipped_at_close[order_id])} line(s) never shipped"
            )
        grant = approved.get(order_id)
        released = [r.quantity for r in releases.get(order_id, [])]
        due = None if grant is None else grant.approved_quantity - closed.kept_quantity
        if grant is None or released != [due]:
            problems.append(f"order {order_id} closed keeping {closed.kept_quantity}: released {released}, due {due}")
    return problems


def _shipped(log: EventLog) -> set[UUID]:
    return {e.payload.allocation_id for e in log.of(FulfilmentStepRecorded) if e.payload.step in SHIPPED}  # type: ignore[attr-defined]


def _shipped_within_allocated(log: EventLog) -> list[str]:
    """Delivered <= shipped <= allocated per order and per batch, allocated meaning chips not given back unshipped."""
    steps: dict[UUID, set[str]] = defaultdict(set)
    for e in log.of(FulfilmentStepRecorded):
        steps[e.payload.allocation_id].add(e.payload.step)  # type: ignore[attr-defined]
    released = {e.payload.allocation_id for e in log.of(AllocationReleased)}  # type: ignore[attr-defined]
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for e in log.of(ChipsAllocated):
        p: Any = e.payload
        done = steps[p.allocation_id]
        for subject in (f"order {p.order_id}", f"batch {p.batch_id}"):
            totals[subject]["allocated"] += p.quantity if p.allocation_id not in released or done & SHIPPED else 0
            totals[subject]["shipped"] += p.quantity if done & SHIPPED else 0
            totals[subject]["delivered"] += p.quantity if "delivered" in done else 0
    return [
        f"{subject}: delivered {t['delivered']}, shipped {t['shipped']}, allocated {t['allocated']}"
        for subject, t in totals.items()
        if not t["delivered"] <= t["shipped"] <= t["allocated"]
    ]


def _shipped_within_licence_and_quota(log: EventLog) -> list[str]:
    """Chips a buyer keeps (shipped, not lost or refused) never exceed its licence or its tranche quota. A failed
    delivery's chips go back to the pool and may be shipped to the same order again: they are counted once."""
    grants: dict[UUID, Any] = {e.payload.order_id: e.payload for e in log.of(OrderApproved)}  # type: ignore[attr-defined]
    limits = {_limit(e.payload): e.payload.quantity for e in log.of(ExportLicenceIssued, TrancheQuotaSet)}  # type: ignore[attr-defined]
    failed = {e.payload.allocation_id for e in log.of(DeliveryFailed)}  # type: ignore[attr-defined]
    kept = _shipped(log) - failed
    used: Counter[tuple[str, str]] = Counter()
    for e in log.of(ChipsAllocated):
        p: Any = e.payload
        grant = grants.get(p.order_id)
        if p.allocation_id in kept and grant is not None:
            used[("licence", grant.licence_id)] += p.quantity
            used[("quota", f"{grant.buyer_id}/{grant.tranche_id}")] += p.quantity
    return [
        f"{kind} {name}: {chips} chips shipped and kept, it allows {limits.get((kind, name))}"
        for (kind, name), chips in used.items()
        if chips > limits.get((kind, name), 0)
    ]


def _limit(p: Any) -> tuple[str, str]:
    if isinstance(p, ExportLicenceIssued):
        return ("licence", p.licence_id)
    return ("quota", f"{p.buyer_id}/{p.tranche_id}")


def _held_for_a_release(log: EventLog) -> list[str]:
    """Once settled, no order still waits for a release: every ended order has been closed and released."""
    latest: dict[UUID, Event] = {}
    for e in log.of(OrderHeld, OrderApproved, OrderDenied):  # one order's decisions: one partition, in order
        latest[e.payload.order_id] = e  # type: ignore[attr-defined]
    cancelled = {e.payload.order_id for e in log.of(OrderCancelled)}  # type: ignore[attr-defined]
    return [
        f"order {order_id} is still held awaiting a release"
        for order_id, e in latest.items()
        if isinstance(e.payload, OrderHeld)
        and "awaiting_release" in _codes(e.payload.reasons)
        and order_id not in cancelled
    ]


def _codes(reasons: Iterable[Any]) -> set[str]:
    return {reason.code for reason in reasons}
