"""Which ledger lines' chips have left the warehouse for good: the facts of fulfilment, whatever the ledger says.

A line has shipped once fulfilment recorded `shipped` or any step that only follows it (customs cleared, a
customs hold or its release, delivered). Its chips are gone from their batch and stay with the buyer unless
the delivery failed (lost or refused), which is the one way shipped chips return to the pool. Steps of one
shipment and the ledger live on different topics, so no order between them is assumed: a line that shipped at
any point of the log counts as shipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded
from services.domain_kit.seen_ids import SeenIds
from services.replay.reading import Read
from services.replay.rows import Names, Rows, id_int, time_fields, time_of

SHIPPED_STEPS = frozenset({"shipped", "customs_cleared", "held", "released", "delivered"})
"""`held` and `released` are a customs hold and its end: both happen only after the chips shipped."""
FAILED_STEPS = frozenset({"lost", "refused"})


class Allocated(NamedTuple):
    """A ChipsAllocated, as much of it as the checks ask about: ids as integers (a UUID object and its integer
    cost twice as much), names kept once (rows.Names)."""

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


ALLOCATED, RELEASED = 0, 1
LAYOUT = "B16s16sI16sqqi"
"""kind, event id, allocation id, name (batch or why) by number, order id, quantity, time (us, offset): 77 bytes."""


class LineFacts:
    """The allocation core's lines and releases in the order written, and which lines shipped: what the chips,
    licence and shipment checks join on, kept as packed rows (services.replay.rows; an envelope would be ~150 times
    larger, a NamedTuple of the same fields ~4 times)."""

    def __init__(self) -> None:
        self.names = Names()
        """Batches and release reasons, by number in the rows."""
        self.decisions: Rows[Allocated | Released] = Rows(LAYOUT, self._row)
        self.allocation_ids = SeenIds()
        self.shipped = SeenIds()
        self.failed = SeenIds()

    def _row(self, fields: tuple[Any, ...]) -> Allocated | Released:
        kind, event, allocation, name, order, quantity, us, offset = fields
        if kind == RELEASED:
            return Released(id_int(event), id_int(allocation), self.names.names[name])
        return Allocated(
            id_int(event), id_int(allocation), self.names.names[name], id_int(order), quantity, time_of(us, offset)
        )

    def see(self, read: Read) -> None:
        if read.inbox:
            return
        e = read.envelope
        match e.payload:
            case ChipsAllocated() as p:
                batch = self.names.index(p.batch_id)
                us, offset = time_fields(e.occurred_at)
                self.decisions.append(
                    ALLOCATED, e.id.bytes, p.allocation_id.bytes, batch, p.order_id.bytes, p.quantity, us, offset
                )
                self.allocation_ids.add(p.allocation_id)
            case AllocationReleased() as p:
                why = self.names.index(p.why)
                self.decisions.append(RELEASED, e.id.bytes, p.allocation_id.bytes, why, bytes(16), 0, 0, 0)
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

    def allocated(self) -> Iterator[Allocated]:
        return (line for line in self.decisions if isinstance(line, Allocated))

    def kept_by_order(self) -> dict[int, int]:
        """Order id (as an integer) -> chips it keeps for good: its lines that shipped and were not lost or refused."""
        kept: dict[int, int] = {}
        counted = SeenIds()  # a line allocated twice counts once (Chips reports it); a set of ints took ~75 B a line
        for line in self.allocated():
            allocation = line.allocation_id
            if self.shipped_for_good(allocation) and counted.add_new(allocation):
                kept[line.order] = kept.get(line.order, 0) + line.quantity
        return kept
