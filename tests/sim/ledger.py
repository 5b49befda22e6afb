"""Sums over the whole ledger, after every step: (1) batches, (2) orders, (3) lines, (4) licences and quotas."""

from __future__ import annotations

from typing import Any

from schemas.envelope import Envelope

from .facts import Facts, Line
from .violation import Violation


def ledger_violation(facts: Facts) -> Violation | None:
    return _lines(facts) or _batches(facts) or _orders(facts) or _limits(facts)


def _lines(facts: Facts) -> Violation | None:
    if facts.orphans:
        message = "a release or a step for a line the ledger never had, or a line released twice"
        return Violation("line-unknown", message, tuple(facts.orphans[:3]))
    for line in facts.lines.values():
        if line.payload.batch_id not in facts.batches:
            return Violation("batch-unknown", "chips allocated from a batch never manufactured", (line.allocated,))
        if line.gone and not line.live:
            events = (line.allocated, line.released, *(e for *_, e in line.steps))
            return Violation("shipped-line-released", "chips that left the warehouse went back to the pool", events)
    return None


def _batches(facts: Facts) -> Violation | None:
    """Chips out of a batch: its live lines, and released lines whose chips had left the warehouse anyway."""
    for batch_id, quantity in facts.batches.items():
        lines = [line for line in facts.lines.values() if line.payload.batch_id == batch_id]
        out = sum(line.payload.quantity for line in lines if line.live or line.gone)
        if out > quantity:
            message = f"batch {batch_id} of {quantity} chips: {out} allocated or shipped"
            return Violation("batch-overallocated", message, tuple(_shown(lines)))
    return None


def _orders(facts: Facts) -> Violation | None:
    for order in facts.orders.values():
        if not order.lines:
            continue
        if order.approved is None:
            return Violation(
                "allocated-unapproved", "an order holds chips without approval", (order.lines[0].allocated,)
            )
        if order.live_chips() > order.approved.approved_quantity:
            message = f"order holds {order.live_chips()} chips, approved {order.approved.approved_quantity}"
            live = tuple(line.allocated for line in order.lines if line.live)
            return Violation("order-overallocated", message, live)
    return None


def _limits(facts: Facts) -> Violation | None:
    """Chips held by open approvals plus chips kept by ended orders, against the largest revision ever issued
    (a licence cut below what already shipped is the government's doing, not a fault of the system)."""
    for kind, limits, use in (
        ("licence", facts.licence_max, facts.licence_use),
        ("quota", facts.quota_max, facts.quota_use),
    ):
        for (buyer, source), limit in limits.items():
            held = use(buyer, source)
            if held > limit:
                message = (
                    f"{buyer} {kind} {source}: {held} chips held or shipped, more than any revision allowed ({limit})"
                )
                return Violation("licence-or-quota-exceeded", message, tuple(facts.kept_by(buyer)))
    return None


def _shown(lines: list[Line]) -> list[Envelope[Any]]:
    return [event for line in lines for event in (line.allocated, line.released) if event is not None]
