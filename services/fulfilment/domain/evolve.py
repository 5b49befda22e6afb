"""evolve(state, message) -> fulfilment's state after an input or one of its own events (updated in place)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, cast

from schemas.allocation import (
    AllocationRecallRequested,
    AllocationReinstated,
    AllocationReleased,
    AllocationSuspended,
    ChipsAllocated,
)
from schemas.envelope import Envelope
from schemas.fulfilment import (
    DeliveryFailed,
    FulfilmentStepRecorded,
    FulfilmentStepRejected,
    RecallAnswered,
    RecordFulfilmentStep,
    Step,
)
from services.fulfilment.domain.shipments import NEXT_STEPS, NOT_YET_SHIPPED, Shipment, line_of
from services.fulfilment.domain.state import State


def evolve(state: State, message: Envelope[Any]) -> State:
    """Fold an input or one of fulfilment's own events; updates `state` in place and returns it."""
    payload = message.payload
    match payload:
        case RecordFulfilmentStep() | ChipsAllocated() | AllocationReleased():
            _input(state, message)
        case AllocationRecallRequested() | AllocationSuspended() | AllocationReinstated():
            _input(state, message)
        case FulfilmentStepRecorded():
            shipment = state.shipment(payload.allocation_id)
            if shipment is not None and payload.step in NEXT_STEPS[shipment.stage]:
                _advance(shipment, payload.step, payload.at)
                state.keep(shipment)
        case RecallAnswered():
            shipment = state.shipment(payload.allocation_id)
            if shipment is not None and payload.outcome == "cancelled":
                shipment.stage = "cancelled"
                state.keep(shipment)
        case FulfilmentStepRejected():
            if payload.reason.code == "unknown_allocation":
                # The report came before its ledger line: forget it, so that its identical retry is decided.
                state.applied.discard(payload.cause_event_id)
        case DeliveryFailed():
            pass
        case _:
            raise TypeError(f"fulfilment cannot fold {type(payload).__name__}")
    return state


def _input(state: State, message: Envelope[Any]) -> None:
    if message.id in state.applied:
        return
    state.applied.add(message.id)
    payload = message.payload
    if isinstance(payload, RecordFulfilmentStep):
        return
    shipment = state.shipment(payload.allocation_id)
    if shipment is None:
        # The first word about a line creates its shipment; anything but the ledger line itself means the line
        # is already on its way out of the book (a recall answered `cancelled`, or a release).
        shipment = Shipment(line_of(payload), "allocated")
        if not isinstance(payload, ChipsAllocated | AllocationSuspended | AllocationReinstated):
            shipment.stage = "cancelled"
    if isinstance(payload, AllocationReleased) and shipment.stage in NOT_YET_SHIPPED:
        shipment.stage = "cancelled"
    elif isinstance(payload, AllocationSuspended):
        shipment.suspended = True
    elif isinstance(payload, AllocationReinstated):
        shipment.suspended = False
    state.keep(shipment)


def _advance(shipment: Shipment, step: Step, at: datetime) -> None:
    if step == "held":
        shipment.held_from, shipment.stage = shipment.stage, "held"
    elif step == "released":
        shipment.stage, shipment.held_from = shipment.held_from or "shipped", None
    else:
        shipment.stage = step
    shipment.steps.append((cast(Step, sys.intern(step)), at))  # one copy of each step name, however many shipments
