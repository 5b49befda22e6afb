"""Which ledger lines' chips have left the warehouse for good: the facts of fulfilment, whatever the ledger says.

A line has shipped once fulfilment recorded `shipped` or any step that only follows it (customs cleared, a
customs hold or its release, delivered). Its chips are gone from their batch and stay with the buyer unless
the delivery failed (lost or refused), which is the one way shipped chips return to the pool. Steps of one
shipment and the ledger live on different topics, so no order between them is assumed: a line that shipped at
any point of the log counts as shipped.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded
from services.domain_kit.seen_ids import SeenIds
from services.replay.reading import Read

SHIPPED_STEPS = frozenset({"shipped", "customs_cleared", "held", "released", "delivered"})
"""`held` and `released` are a customs hold and its end: both happen only after the chips shipped."""
FAILED_STEPS = frozenset({"lost", "refused"})


class Allocated(NamedTuple):
    """A ChipsAllocated, as much of it as the checks ask about: ids as integers (a UUID object and its integer
    cost twice as much), names interned."""

    event: int
    allocation: int
    batch_id: str
    order: int
    quantity: int
    occurred_at: datetime

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def allocation_id(self) -> UUID:
        return UUID(int=self.allocation)

    @property
    def order_id(self) -> UUID:
        return UUID(int=self.order)


class Released(NamedTuple):
    event: int
    allocation: int
    why: str

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def allocation_id(self) -> UUID:
        return UUID(int=self.allocation)


class LineFacts:
    """The allocation core's lines and releases in the order written, and which lines shipped: what the chips,
    licence and shipment checks join on, kept as rows of a few fields (an envelope would be ~40 times larger)."""

    def __init__(self) -> None:
        self.decisions: list[Allocated | Released] = []
        self.allocation_ids = SeenIds()
        self.shipped = SeenIds()
        self.failed = SeenIds()

    def see(self, read: Read) -> None:
        if read.inbox:
            return
        e = read.envelope
        match e.payload:
            case ChipsAllocated() as p:
                batch = sys.intern(p.batch_id)
                self.decisions.append(
                    Allocated(e.id.int, p.allocation_id.int, batch, p.order_id.int, p.quantity, e.occurred_at)
                )
                self.allocation_ids.add(p.allocation_id)
            case AllocationReleased() as p:
                self.decisions.append(Released(e.id.int, p.allocation_id.int, sys.intern(p.why)))
            case DeliveryFailed() as p:
                self.failed.add(p.allocation_id)
            case FulfilmentStepRecorded() as p:
                if p.step in FAILED_STEPS:
                    self.failed.add(p.allocation_id)
                elif p.step in SHIPPED_STEPS:
                    self.shipped.add(p.allocation_id)

    def shipped_for_good(self, allocation_id: UUID) -> bool:
        """The line shipped at some point of the log and its delivery did not fail."""
        return allocation_id in self.shipped and allocation_id not in self.failed

    def allocated(self) -> list[Allocated]:
        return [line for line in self.decisions if isinstance(line, Allocated)]

    def kept_by_order(self) -> dict[int, int]:
        """Order id (as an integer) -> chips it keeps for good: its lines that shipped and were not lost or refused."""
        kept: dict[int, int] = {}
        seen: set[int] = set()
        for line in self.allocated():
            if line.allocation not in seen and self.shipped_for_good(line.allocation_id):
                seen.add(line.allocation)
                kept[line.order] = kept.get(line.order, 0) + line.quantity
        return kept
