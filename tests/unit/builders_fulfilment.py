"""Input envelopes for fulfilment's core: ledger lines copied from allocation and reported steps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from schemas.allocation import AllocationReinstated, AllocationReleased, AllocationSuspended, ChipsAllocated
from schemas.base import Message
from schemas.envelope import Envelope, derive_id, make_envelope, order_id_for
from schemas.fulfilment import RecordFulfilmentStep, Step
from services.common.decider import fold, step
from services.fulfilment import domain
from services.fulfilment.domain import State

AT = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
ORDER_ID = order_id_for("bytedance", "BD-PO-2026-0001")
ALLOCATION_ID = derive_id("allocation", "h200", "TSMC-B001", ORDER_ID)
QUANTITY = 20_000

HAPPY_PATH: tuple[Step, ...] = ("packed", "shipped", "customs_cleared", "delivered")


def hours(n: float) -> datetime:
    return AT + timedelta(hours=n)


def line(allocation_id: UUID = ALLOCATION_ID, quantity: int = QUANTITY) -> dict[str, Any]:
    return {
        "allocation_id": allocation_id,
        "pool_id": "h200",
        "order_id": ORDER_ID,
        "buyer_id": "bytedance",
        "batch_id": "TSMC-B001",
        "quantity": quantity,
        "cause_event_id": derive_id("approval", allocation_id),
    }


def envelope(payload: Message, key: UUID, *, message_id: UUID | None, occurred_at: datetime) -> Envelope[Any]:
    return make_envelope(
        payload, key=str(key), producer="tests", occurred_at=occurred_at, message_id=message_id or uuid4()
    )


def allocated(
    allocation_id: UUID = ALLOCATION_ID, *, quantity: int = QUANTITY, message_id: UUID | None = None
) -> Envelope[ChipsAllocated]:
    payload = ChipsAllocated(
        **line(allocation_id, quantity), rule="first_approved_first_served", policy_ref=None, allocated_at=AT
    )
    return envelope(payload, allocation_id, message_id=message_id, occurred_at=AT)


def released(
    allocation_id: UUID = ALLOCATION_ID,
    *,
    why: Literal["order_cancelled", "approval_revoked", "delivery_failed"] = "order_cancelled",
    message_id: UUID | None = None,
) -> Envelope[AllocationReleased]:
    payload = AllocationReleased(**line(allocation_id), why=why, released_at=AT)
    return envelope(payload, allocation_id, message_id=message_id, occurred_at=AT)


def suspension(
    allocation_id: UUID = ALLOCATION_ID, *, lifted: bool = False, message_id: UUID | None = None
) -> Envelope[AllocationSuspended | AllocationReinstated]:
    """Allocation's word that the line's order is suspended (or, `lifted`, reinstated)."""
    payload: AllocationSuspended | AllocationReinstated = (
        AllocationReinstated(**line(allocation_id), reinstated_at=AT)
        if lifted
        else AllocationSuspended(**line(allocation_id), suspended_at=AT)
    )
    return envelope(payload, allocation_id, message_id=message_id, occurred_at=AT)


def report(
    step_: Step,
    at: datetime,
    allocation_id: UUID = ALLOCATION_ID,
    *,
    note: str | None = None,
    message_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[RecordFulfilmentStep]:
    payload = RecordFulfilmentStep(allocation_id=allocation_id, step=step_, at=at, note=note)
    return envelope(payload, allocation_id, message_id=message_id, occurred_at=occurred_at or at)


def path(*steps: Step, allocation_id: UUID = ALLOCATION_ID) -> list[Envelope[Any]]:
    """The allocation, then each step one hour after the previous one."""
    return [allocated(allocation_id), *(report(s, hours(n + 1), allocation_id) for n, s in enumerate(steps))]


def given(*history: Envelope[Any]) -> State:
    state: State
    state, _ = fold(domain, list(history))
    return state


def when(state: State, message: Envelope[Any]) -> list[Message]:
    _, events = step(domain, state, message)
    return [event.payload for event in events]


def run(*inputs: Envelope[Any]) -> list[Message]:
    _, events = fold(domain, list(inputs))
    return [event.payload for event in events]


def then_only(events: Sequence[Message]) -> Message:
    assert len(events) == 1, events
    return events[0]
