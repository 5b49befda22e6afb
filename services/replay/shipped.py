"""Which ledger lines' chips have left the warehouse for good: the facts of fulfilment, whatever the ledger says.

A line has shipped once fulfilment recorded `shipped` or any step that only follows it (customs cleared, a
customs hold or its release, delivered). Its chips are gone from their batch and stay with the buyer unless
the delivery failed (lost or refused), which is the one way shipped chips return to the pool. Steps of one
shipment and the ledger live on different topics, so no order between them is assumed: a line that shipped at
any point of the log counts as shipped.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.allocation import ChipsAllocated
from schemas.envelope import Envelope
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded
from services.replay.eventlog import EventLog

Event = Envelope[Any]

SHIPPED_STEPS = frozenset({"shipped", "customs_cleared", "held", "released", "delivered"})
"""`held` and `released` are a customs hold and its end: both happen only after the chips shipped."""
FAILED_STEPS = frozenset({"lost", "refused"})


def shipped_lines(log: EventLog) -> dict[UUID, Event]:
    """Allocation id -> the first step that shows it shipped, for lines whose delivery did not fail."""
    shipped: dict[UUID, Event] = {}
    failed: set[UUID] = {e.payload.allocation_id for e in log.of(DeliveryFailed)}  # type: ignore[attr-defined]
    for e in log.of(FulfilmentStepRecorded):
        p: Any = e.payload
        if p.step in FAILED_STEPS:
            failed.add(p.allocation_id)
        elif p.step in SHIPPED_STEPS:
            shipped.setdefault(p.allocation_id, e)
    return {allocation_id: e for allocation_id, e in shipped.items() if allocation_id not in failed}


def kept_by_order(log: EventLog) -> dict[UUID, int]:
    """Order id -> chips it keeps for good: its lines that shipped and were not lost or refused."""
    shipped = shipped_lines(log)
    kept: dict[UUID, int] = {}
    seen: set[UUID] = set()
    for e in log.of(ChipsAllocated):
        p: Any = e.payload
        if p.allocation_id in shipped and p.allocation_id not in seen:
            seen.add(p.allocation_id)
            kept[p.order_id] = kept.get(p.order_id, 0) + p.quantity
    return kept
