"""The invariants of domain.md checked over a whole log; every violation names the events involved.

Quantities are checked as they run, in the order the deciding service wrote its decisions (a pool's
allocations and releases share one partition of h200.allocations); licences and quotas are checked in
services.replay.limits. Whether an order was approved "at that moment" is asked of the moment the allocation
core decided: its inbox, folded with the core's own `evolve`, when the log includes the inbox.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved, OrderDenied, OrderHeld
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.supply import BatchManufactured
from services.allocation import domain as allocation
from services.replay.eventlog import EventLog
from services.replay.limits import licence_and_quota
from services.replay.violations import Violation, ids

Event = Envelope[Any]
SHOWN_LINES = 10
"""Allocations named with a batch or an order that went over its limit: the latest ones."""


def check(log: EventLog) -> list[Violation]:
    """Every invariant of the domain over the log; empty when the log keeps them all."""
    return [
        *_chips(log),
        *_approved_at_that_moment(log),
        *licence_and_quota(log),
        *_shipped_and_delivered(log),
        *_first_decisions_cite_policies(log),
    ]


# --- chips: batches, orders, allocations -------------------------------------------------------------------


@dataclass
class _Account:
    """The live allocations drawn on one batch or given to one order, against what it holds or was approved."""

    limit: int | None
    limit_event: Event | None
    total: int = 0
    lines: dict[Any, Event] = field(default_factory=dict)
    overdrawn: bool = False

    def add(self, line: Event) -> bool:
        """True the first time the total goes over the limit."""
        self.lines[line.payload.allocation_id] = line
        self.total += line.payload.quantity
        if self.limit is None or self.total <= self.limit or self.overdrawn:
            return False
        self.overdrawn = True
        return True

    def remove(self, line: Event) -> None:
        self.lines.pop(line.payload.allocation_id, None)
        self.total -= line.payload.quantity

    def events(self) -> tuple[str, ...]:
        return ids(self.limit_event, *list(self.lines.values())[-SHOWN_LINES:])


def _chips(log: EventLog) -> list[Violation]:
    """No batch gives out more than it holds, no order gets more than approved, no chip is allocated twice."""
    holds = {e.payload.batch_id: e for e in log.of(BatchManufactured)}  # type: ignore[attr-defined]
    approvals = {e.payload.order_id: e for e in log.of(OrderApproved)}  # type: ignore[attr-defined]
    batches: dict[str, _Account] = {}
    orders: dict[Any, _Account] = {}
    lines: dict[Any, Event] = {}
    released: dict[Any, Event] = {}
    problems: list[Violation] = []
    for e in log.of(ChipsAllocated, AllocationReleased):
        p: Any = e.payload
        line = lines.get(p.allocation_id)
        if isinstance(p, AllocationReleased):
            if line is None or p.allocation_id in released:
                state = "never allocated" if line is None else "already released"
                found = ids(line, released.get(p.allocation_id), e)
                problems.append(Violation("bad_release", f"allocation {p.allocation_id} released but {state}", found))
                continue
            released[p.allocation_id] = e
            batches[line.payload.batch_id].remove(line)
            orders[line.payload.order_id].remove(line)
            continue
        if line is not None:
            problems.append(Violation("allocated_twice", f"allocation {p.allocation_id} decided twice", ids(line, e)))
            continue
        lines[p.allocation_id] = e
        batch = batches.setdefault(p.batch_id, _limit(holds.get(p.batch_id), "quantity"))
        order = orders.setdefault(p.order_id, _limit(approvals.get(p.order_id), "approved_quantity"))
        if batch.limit is None:
            message = f"allocation {p.allocation_id} draws on unknown batch {p.batch_id}"
            problems.append(Violation("unknown_batch", message, ids(e)))
        if order.limit is None:
            message = f"allocation {p.allocation_id} went to order {p.order_id}, which was never approved"
            problems.append(Violation("order_not_approved", message, ids(e)))
        if batch.add(e):
            message = f"batch {p.batch_id} gave out {batch.total} chips but holds {batch.limit}"
            problems.append(Violation("batch_overdrawn", message, batch.events()))
        if order.add(e):
            message = f"order {p.order_id} holds {order.total} chips, approved for {order.limit}"
            problems.append(Violation("order_overfilled", message, order.events()))
    return problems


def _limit(event: Event | None, field_name: str) -> _Account:
    return _Account(None if event is None else getattr(event.payload, field_name), event)


def _approved_at_that_moment(log: EventLog) -> list[Violation]:
    """Each allocation went to an order approved by both gates when the input that caused it was decided on."""
    caused: dict[Any, list[Event]] = defaultdict(list)
    for e in log.of(ChipsAllocated):
        caused[e.payload.cause_event_id].append(e)  # type: ignore[attr-defined]
    problems: list[Violation] = []
    for partition in sorted(log.inbox):
        state, seen = allocation.initial_state(), set()
        for item in log.inbox[partition]:
            cause = item.envelope
            if cause.id in seen:
                continue
            seen.add(cause.id)
            state = allocation.evolve(state, cause)
            for allocated in caused.get(cause.id, []):
                p: Any = allocated.payload
                order = state.pool(p.pool_id).orders.get(p.order_id)
                if order is None or not order.eligible:
                    status = "unknown to the book" if order is None else order.status
                    message = (
                        f"allocation {p.allocation_id} went to order {p.order_id} while it was {status} "
                        f"(decided on {cause.type} at {item.spot})"
                    )
                    problems.append(Violation("not_approved_then", message, ids(cause, allocated)))
    return problems


# --- shipments ---------------------------------------------------------------------------------------------


def _shipped_and_delivered(log: EventLog) -> list[Violation]:
    """Delivered <= shipped <= allocated, line by line (so per order and per batch): a shipment is shipped before
    it is delivered, chips shipped go back to the pool only when their delivery failed, delivered chips never."""
    lines = {e.payload.allocation_id: e for e in log.of(ChipsAllocated)}  # type: ignore[attr-defined]
    releases = {e.payload.allocation_id: e for e in log.of(AllocationReleased)}  # type: ignore[attr-defined]
    steps: dict[Any, dict[str, Event]] = defaultdict(dict)
    problems: list[Violation] = []
    for e in log.of(FulfilmentStepRecorded):
        p: Any = e.payload
        if p.allocation_id not in lines:
            message = f"shipment step {p.step} recorded for allocation {p.allocation_id}, which was never allocated"
            problems.append(Violation("unknown_allocation", message, ids(e)))
        if p.step == "delivered" and "shipped" not in steps[p.allocation_id]:
            message = f"allocation {p.allocation_id} delivered before it was shipped"
            problems.append(Violation("delivered_unshipped", message, ids(e)))
        steps[p.allocation_id].setdefault(p.step, e)
    for allocation_id, release in releases.items():
        done = steps.get(allocation_id, {})
        why = release.payload.why  # type: ignore[attr-defined]
        if "delivered" in done or ("shipped" in done and why != "delivery_failed"):
            step = "delivered" if "delivered" in done else "shipped"
            message = f"allocation {allocation_id} was {step}, then its chips went back to the pool ({why})"
            problems.append(Violation(f"{step}_then_released", message, ids(done[step], release)))
    return problems


def _first_decisions_cite_policies(log: EventLog) -> list[Violation]:
    """An approval, denial or hold names the policy revisions it applied."""
    decisions: list[Event] = log.of(OrderApproved, OrderDenied, OrderHeld)
    return [
        Violation("no_policy_revision", f"{e.type} on order {e.payload.order_id} records no policy revision", ids(e))
        for e in decisions
        if not e.payload.policy_refs
    ]
