"""Fulfilment read from its inbox (h200.fulfilment.commands, stamped by the broker): it decides nothing by time.
A step is recorded at the time logistics reports for it, whenever the report arrives; the order of steps is checked
on those reported times; only the envelopes of its facts carry the arrival (docs/time.md, "Fulfilment")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders_fulfilment import AT, allocated, hours, report

from schemas.envelope import Arrival, Envelope
from schemas.fulfilment import FulfilmentStepRecorded, FulfilmentStepRejected
from services.common.decider import fold
from services.fulfilment import domain

INBOX = "h200.fulfilment.commands"


def arriving(message: Envelope[Any], late_by: timedelta, offset: int) -> Envelope[Any]:
    return message.arrived(Arrival(INBOX, 0, offset, message.occurred_at + late_by))


def test_a_step_reported_days_late_is_recorded_at_its_reported_time_and_its_envelope_at_arrival() -> None:
    inputs = [
        arriving(allocated(), timedelta(seconds=1), 0),
        arriving(report("packed", hours(1)), timedelta(days=3), 1),
        arriving(report("shipped", hours(2)), timedelta(days=3), 2),
    ]

    _, events = fold(domain, inputs)

    recorded = [e for e in events if isinstance(e.payload, FulfilmentStepRecorded)]
    assert [(e.payload.step, e.payload.at) for e in recorded] == [("packed", hours(1)), ("shipped", hours(2))]  # type: ignore[attr-defined]
    assert [e.occurred_at for e in recorded] == [hours(1) + timedelta(days=3), hours(2) + timedelta(days=3)]


def test_steps_arriving_in_time_order_but_reported_backwards_are_still_refused() -> None:
    inputs = [
        arriving(allocated(), timedelta(0), 0),
        arriving(report("packed", hours(5)), timedelta(0), 1),
        # Arrives later than the packing report, but logistics says it shipped before it was packed.
        arriving(report("shipped", hours(4), occurred_at=AT + timedelta(hours=6)), timedelta(0), 2),
    ]

    _, events = fold(domain, inputs)

    rejected = [e.payload for e in events if isinstance(e.payload, FulfilmentStepRejected)]
    assert [r.reason.code for r in rejected] == ["time_went_backwards"]
