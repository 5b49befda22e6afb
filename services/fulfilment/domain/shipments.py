"""Fulfilment's pure core, in the decider shape of services.common.decider: run it with `step` or `fold`.

Inputs (h200.fulfilment.commands, keyed by allocation id): copies of ChipsAllocated and AllocationReleased,
and RecordFulfilmentStep. Own outputs, folded back: FulfilmentStepRecorded, DeliveryFailed,
FulfilmentStepRejected.

A shipment moves allocated → packed → shipped → customs_cleared → delivered. A customs hold (`held`) may
interrupt shipped or customs_cleared and `released` returns to the stage it interrupted; `lost` may happen
once shipped (also while held), `refused` once cleared. delivered, lost and refused are final; lost and
refused also emit DeliveryFailed so allocation returns the chips to the pool.

AllocationReleased before the shipment leaves (allocated, packed) cancels it: no event, and later steps are
rejected. Once shipped the chips are no longer in the warehouse, so a release is ignored: it is normally
allocation's answer to our own DeliveryFailed, and otherwise the shipment's own outcome must be reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.base import Message, Reason
from schemas.envelope import Envelope
from schemas.fulfilment import (
    DeliveryFailed,
    FulfilmentStepRecorded,
    FulfilmentStepRejected,
    RecordFulfilmentStep,
    Step,
)

NAME = "fulfilment"

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
NOT_YET_SHIPPED: frozenset[Stage] = frozenset({"allocated", "packed"})


@dataclass(frozen=True)
class Line:
    """The ledger line a shipment carries: which chips of which batch go to which order."""

    allocation_id: UUID
    pool_id: str
    order_id: UUID
    buyer_id: str
    batch_id: str
    quantity: int


@dataclass
class Shipment:
    line: Line
    stage: Stage
    held_from: Stage | None = None
    """The stage a customs hold interrupted, to return to when it is released."""
    steps: list[tuple[Step, datetime]] = field(default_factory=list)
    """Every step recorded, in order, with its time."""


@dataclass
class State:
    shipments: dict[UUID, Shipment] = field(default_factory=dict)
    applied: set[UUID] = field(default_factory=set)
    """Ids of the input envelopes already folded: a redelivered input decides nothing."""


def initial_state() -> State:
    return State()


def decide(state: State, message: Envelope[Any]) -> list[Message]:
    """The events an input causes: only a reported step causes any."""
    if message.id in state.applied:
        return []
    payload = message.payload
    match payload:
        case RecordFulfilmentStep():
            return _record_step(state, message, payload)
        case ChipsAllocated() | AllocationReleased():
            return []
        case _:
            raise TypeError(f"fulfilment does not decide on {type(payload).__name__}")


def evolve(state: State, message: Envelope[Any]) -> State:
    """Fold an input or one of fulfilment's own events; updates `state` in place and returns it."""
    payload = message.payload
    match payload:
        case RecordFulfilmentStep() | ChipsAllocated() | AllocationReleased():
            if message.id not in state.applied:
                state.applied.add(message.id)
                if not isinstance(payload, RecordFulfilmentStep):
                    _follow_ledger(state, payload)
        case FulfilmentStepRecorded():
            shipment = state.shipments.get(payload.allocation_id)
            if shipment is not None and payload.step in NEXT_STEPS[shipment.stage]:
                _advance(shipment, payload.step, payload.at)
        case DeliveryFailed() | FulfilmentStepRejected():
            pass
        case _:
            raise TypeError(f"fulfilment cannot fold {type(payload).__name__}")
    return state


def _follow_ledger(state: State, line: ChipsAllocated | AllocationReleased) -> None:
    # The first ledger line seen for an allocation creates its shipment; a release seen first cancels it.
    shipment = state.shipments.get(line.allocation_id)
    if shipment is None:
        stage: Stage = "allocated" if isinstance(line, ChipsAllocated) else "cancelled"
        state.shipments[line.allocation_id] = Shipment(_line_of(line), stage)
    elif isinstance(line, AllocationReleased) and shipment.stage in NOT_YET_SHIPPED:
        shipment.stage = "cancelled"


def _advance(shipment: Shipment, step: Step, at: datetime) -> None:
    if step == "held":
        shipment.held_from, shipment.stage = shipment.stage, "held"
    elif step == "released":
        shipment.stage, shipment.held_from = shipment.held_from or "shipped", None
    else:
        shipment.stage = step
    shipment.steps.append((step, at))


def _record_step(state: State, message: Envelope[Any], command: RecordFulfilmentStep) -> list[Message]:
    shipment = state.shipments.get(command.allocation_id)
    if shipment is None:
        unknown = _reason("unknown_allocation", f"allocation {command.allocation_id} is unknown", "allocation_id")
        return [_rejected(message, command, unknown)]
    if _is_retry(shipment, command):
        return []
    problem = _problem(shipment, command)
    if problem is not None:
        return [_rejected(message, command, problem)]
    return _recorded(shipment.line, message, command)


def _problem(shipment: Shipment, command: RecordFulfilmentStep) -> Reason | None:
    """Why the step cannot be recorded, or None when it can."""
    if shipment.stage == "cancelled":
        text = f"allocation {command.allocation_id} was released before it shipped: its shipment is cancelled"
        return _reason("allocation_released", text, "allocation_id")
    allowed = NEXT_STEPS[shipment.stage]
    if command.step not in allowed:
        then = ", ".join(sorted(allowed)) or "nothing: it is final"
        text = f"a shipment that is {shipment.stage} cannot be {command.step} (it may be {then})"
        return _reason("step_out_of_order", text, "step")
    last_step, last_at = shipment.steps[-1] if shipment.steps else (None, None)
    if last_at is not None and command.at < last_at:
        text = f"{command.step} at {command.at.isoformat()} is earlier than {last_step} at {last_at.isoformat()}"
        return _reason("time_went_backwards", text, "at")
    return None


def _is_retry(shipment: Shipment, command: RecordFulfilmentStep) -> bool:
    """The step just recorded reported again, or any earlier step reported again with its recorded time."""
    return bool(shipment.steps) and (
        shipment.steps[-1][0] == command.step or (command.step, command.at) in shipment.steps
    )


def _recorded(line: Line, message: Envelope[Any], command: RecordFulfilmentStep) -> list[Message]:
    common = {
        "allocation_id": line.allocation_id,
        "pool_id": line.pool_id,
        "order_id": line.order_id,
        "buyer_id": line.buyer_id,
        "batch_id": line.batch_id,
        "quantity": line.quantity,
        "cause_event_id": message.id,
        "at": command.at,
    }
    events: list[Message] = [
        FulfilmentStepRecorded.model_validate({**common, "step": command.step, "note": command.note})
    ]
    if command.step == "lost" or command.step == "refused":
        events.append(DeliveryFailed.model_validate({**common, "outcome": command.step}))
    return events


def _reason(code: str, text: str, field: str) -> Reason:
    return Reason(code=code, message=text, field=field, gate="fulfilment")


def _rejected(message: Envelope[Any], command: RecordFulfilmentStep, reason: Reason) -> FulfilmentStepRejected:
    return FulfilmentStepRejected(
        allocation_id=command.allocation_id,
        step=command.step,
        reason=reason,
        cause_event_id=message.id,
        at=message.occurred_at,
    )


def _line_of(line: ChipsAllocated | AllocationReleased) -> Line:
    return Line(line.allocation_id, line.pool_id, line.order_id, line.buyer_id, line.batch_id, line.quantity)
