"""Fulfilment's pure core, in the decider shape of services.common.decider: run it with `step` or `fold`.

Inputs (h200.fulfilment.commands, keyed by allocation id): copies of the ledger lines (ChipsAllocated,
AllocationReleased), allocation's questions about them (AllocationRecallRequested, AllocationSuspended,
AllocationReinstated) and RecordFulfilmentStep from logistics. Own outputs, folded back:
FulfilmentStepRecorded, DeliveryFailed, FulfilmentStepRejected, RecallAnswered.

Fulfilment is the one writer of a shipment's history, so it alone answers whether a line's chips left the
warehouse: a recall is answered `cancelled` (the chips may go back to the pool) or `already_shipped` (they stay
with the order), and from then on the answer holds. See shipments.py for the stages.
"""

from services.fulfilment.domain.decide import decide
from services.fulfilment.domain.evolve import evolve
from services.fulfilment.domain.shipments import (
    FINAL_STAGES,
    NEXT_STEPS,
    NOT_YET_SHIPPED,
    Line,
    Shipment,
    Stage,
)
from services.fulfilment.domain.state import State, initial_state

NAME = "fulfilment"

__all__ = [
    "FINAL_STAGES",
    "NAME",
    "NEXT_STEPS",
    "NOT_YET_SHIPPED",
    "Line",
    "Shipment",
    "Stage",
    "State",
    "decide",
    "evolve",
    "initial_state",
]
