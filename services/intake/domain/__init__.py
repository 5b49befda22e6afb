"""Intake's pure core, in the decider shape of services.common.decider: run it with `step` or `fold`.

Inputs (h200.intake.inbox, re-keyed by buyer): SubmitOrder, CancelOrder, AddOrderDocuments, and the policy
SubmissionWindowSet in every partition (folded, decides nothing). Own outputs, folded: OrderPlaced,
OrderSubmissionRejected, OrderDocumentsAdded, OrderCancelled, CommandRejected.
Every time intake writes into an event is the input's arrival, `learned_at` (see decisions.py for why).
"""

from __future__ import annotations

from services.intake.domain.checks import (
    MAX_DOMESTIC_COMMITMENT_RATIO,
    MAX_UNIT_PRICE_CENTS,
    MIN_UNIT_PRICE_CENTS,
)
from services.intake.domain.decisions import decide
from services.intake.domain.records import State, Submission, evolve, initial_state
from services.intake.domain.window import FALLBACK_WINDOW

NAME = "intake"

__all__ = [
    "FALLBACK_WINDOW",
    "MAX_DOMESTIC_COMMITMENT_RATIO",
    "MAX_UNIT_PRICE_CENTS",
    "MIN_UNIT_PRICE_CENTS",
    "NAME",
    "State",
    "Submission",
    "decide",
    "evolve",
    "initial_state",
]
