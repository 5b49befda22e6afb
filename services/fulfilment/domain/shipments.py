"""What fulfilment remembers: one shipment per allocation, the stage it has reached and the steps it took.

A shipment moves allocated → packed → shipped → customs_cleared → delivered. A customs hold (`held`) may
interrupt shipped or customs_cleared and `released` returns to the stage it interrupted; `lost` may happen
once shipped (also while held), `refused` once cleared. delivered, lost and refused are final; lost and
refused also emit DeliveryFailed so allocation returns the chips to the pool.

A shipment that has not left the warehouse (allocated, packed) is `cancelled` by a recall or a release, and
then takes no step. A suspended line (its order's approval is suspended) keeps its stage but may not be packed
or shipped until it is reinstated; chips already on their way go on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from schemas.allocation import AllocationLineEvent, AllocationReleased, ChipsAllocated
from schemas.fulfilment import Step

Stage = Literal[
    "allocated", "packed", "shipped", "customs_cleared", "held", "delivered", "lost", "refused", "cancelled"
]

NEXT_STEPS: dict[Stage, frozenset[Step]] = {
    "allocated": frozenset({"packed"}),
    "packed": frozenset({"shipped"}),
    "shipped": frozenset({"customs_cleared", "held", "lost"}),
    "customs_cleared": frozenset({"delivered", "held", "lost", "refused"}),
    "held": frozenset({"released", "lost"}),
    "delivered": frozenset(),
    "lost": frozenset(),
    "refused": frozenset(),
    "cancelled": frozenset(),
}
"""The steps a shipment may take from each stage."""

FINAL_STAGES: frozenset[Stage] = frozenset({"delivered", "lost", "refused"})
ENDED: frozenset[Stage] = FINAL_STAGES | {"cancelled"}
"""Stages that take no step any more: the shipment is kept packed (finals.py)."""
NOT_YET_SHIPPED: frozenset[Stage] = frozenset({"allocated", "packed"})
LEAVING_STEPS: frozenset[Step] = frozenset({"packed", "shipped"})
"""Steps that move chips towards the door: refused while the line is suspended."""


@dataclass(frozen=True, slots=True)
class Line:
    """The ledger line a shipment carries: which chips of which batch go to which order."""

    allocation_id: UUID
    pool_id: str
    order_id: UUID
    buyer_id: str
    batch_id: str
    quantity: int


@dataclass(slots=True)
class Shipment:
    line: Line
    stage: Stage
    held_from: Stage | None = None
    """The stage a customs hold interrupted, to return to when it is released."""
    steps: list[tuple[Step, datetime]] = field(default_factory=list)
    """Every step recorded, in order, with its time."""
    suspended: bool = False
    """The order's approval is suspended: no packing or shipping until it is reinstated. Suspensions and
    reinstatements of a line reach this partition in the order allocation wrote them (one pool partition,
    copied in order), and a redelivered copy is known by its id, so the last one folded is in force."""


def line_of(event: ChipsAllocated | AllocationReleased | AllocationLineEvent) -> Line:
    # Pools, buyers and batches repeat across many lines: one copy of each name (fulfilment keeps every shipment).
    pool, buyer, batch = (sys.intern(name) for name in (event.pool_id, event.buyer_id, event.batch_id))
    return Line(event.allocation_id, pool, event.order_id, buyer, batch, event.quantity)
