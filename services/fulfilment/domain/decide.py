"""decide(state, input) -> the events an input causes: a reported step, or allocation asking for a recall."""

from __future__ import annotations

from typing import Any

from schemas.allocation import (
    AllocationRecallRequested,
    AllocationReinstated,
    AllocationReleased,
    AllocationSuspended,
    ChipsAllocated,
)
from schemas.base import Message, Reason
from schemas.envelope import Envelope
from schemas.fulfilment import (
    DeliveryFailed,
    FulfilmentStepRecorded,
    FulfilmentStepRejected,
    RecallAnswered,
    RecordFulfilmentStep,
)
from services.fulfilment.domain.shipments import LEAVING_STEPS, NEXT_STEPS, NOT_YET_SHIPPED, Line, Shipment
from services.fulfilment.domain.state import State


def decide(state: State, message: Envelope[Any]) -> list[Message]:
    if message.id in state.applied:
        return []
    payload = message.payload
    match payload:
        case RecordFulfilmentStep():
            return _record_step(state, message, payload)
        case AllocationRecallRequested():
            return [_answer(state.shipment(payload.allocation_id), message, payload)]
        case ChipsAllocated() | AllocationReleased() | AllocationSuspended() | AllocationReinstated():
            return []
        case _:
            raise TypeError(f"fulfilment does not decide on {type(payload).__name__}")


def _answer(shipment: Shipment | None, message: Envelope[Any], recall: AllocationRecallRequested) -> RecallAnswered:
    """Cancelled if the chips are still in the warehouse (or the line was never seen here), else already shipped."""
    stage = "cancelled" if shipment is None else shipment.stage
    outcome = (
        "cancelled" if shipment is None or shipment.stage in NOT_YET_SHIPPED | {"cancelled"} else "already_shipped"
    )
    return RecallAnswered(
        allocation_id=recall.allocation_id,
        pool_id=recall.pool_id,
        order_id=recall.order_id,
        buyer_id=recall.buyer_id,
        batch_id=recall.batch_id,
        quantity=recall.quantity,
        outcome=outcome,
        stage=stage,
        cause_event_id=message.id,
        at=message.occurred_at,
    )


def _record_step(state: State, message: Envelope[Any], command: RecordFulfilmentStep) -> list[Message]:
    shipment = state.shipment(command.allocation_id)
    if shipment is None:
        text = f"allocation {command.allocation_id} is unknown (yet): report the step again once it is on the ledger"
        return [_rejected(message, command, _reason("unknown_allocation", text, "allocation_id"))]
    if _is_retry(shipment, command):
        return []
    problem = _problem(shipment, command)
    if problem is not None:
        return [_rejected(message, command, problem)]
    return _recorded(shipment.line, message, command)


def _problem(shipment: Shipment, command: RecordFulfilmentStep) -> Reason | None:
    """Why the step cannot be recorded, or None when it can."""
    if shipment.stage == "cancelled":
        text = f"allocation {command.allocation_id} was recalled or released before it shipped: no step may follow"
        return _reason("allocation_released", text, "allocation_id")
    if shipment.suspended and command.step in LEAVING_STEPS:
        order = shipment.line.order_id
        text = (
            f"the approval of order {order} is suspended: allocation {command.allocation_id} may not be {command.step}"
        )
        return _reason("approval_suspended", text, "step")
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
    return Reason(code=code, message=text[:500], field=field, gate="fulfilment")


def _rejected(message: Envelope[Any], command: RecordFulfilmentStep, reason: Reason) -> FulfilmentStepRejected:
    return FulfilmentStepRejected(
        allocation_id=command.allocation_id,
        step=command.step,
        reason=reason,
        cause_event_id=message.id,
        at=message.occurred_at,
    )
