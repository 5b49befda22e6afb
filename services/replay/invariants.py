"""The invariants of domain.md checked over a whole log; every violation names the events involved.

Chips per batch and per order are checked in services.replay.chips, licences and quotas in services.replay.limits,
one order per upstream reference in services.replay.placements, and who may publish what in
services.replay.producers. Whether an order was approved "at that moment" is asked of the moment the allocation
core decided: its inbox, folded with the core's own `evolve`, when the log includes the inbox.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved, OrderDenied, OrderHeld
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.topics import BY_NAME
from services.allocation import domain as allocation
from services.replay.chips import check_chips
from services.replay.eventlog import EventLog
from services.replay.limits import licence_and_quota
from services.replay.placements import one_order_per_reference
from services.replay.producers import producers_as_catalogued
from services.replay.violations import Violation, ids

Event = Envelope[Any]


def check(log: EventLog) -> list[Violation]:
    """Every invariant of the domain over the log; empty when the log keeps them all."""
    return [
        *check_chips(log),
        *_approved_at_that_moment(log),
        *licence_and_quota(log),
        *_shipped_and_delivered(log),
        *_first_decisions_cite_policies(log),
        *one_order_per_reference(log),
        *producers_as_catalogued(log),
    ]


# --- approved at that moment ----------------------------------------------------------------------------


BROADCAST = BY_NAME["h200.allocation.inbox"].broadcast
"""Inputs (ticks, approval's markers) copied into every allocation partition, bytes and id unchanged."""


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
            try:
                state = allocation.evolve(state, cause)
            except Exception:  # the live core dead-letters an input it fails on and goes on: so does the check
                continue
            for allocated in caused.get(cause.id, []):
                p: Any = allocated.payload
                if p.pool_id not in state.pools and isinstance(cause.payload, BROADCAST):
                    # Every partition holds a copy of a tick or a marker, under one id: the allocation was decided
                    # by the partition that holds its pool, on its own copy.
                    continue
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
