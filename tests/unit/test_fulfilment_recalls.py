"""Fulfilment's side of the recall protocol: it alone answers whether a line's chips left the warehouse."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

import pytest
from builders_fulfilment import (
    ALLOCATION_ID,
    AT,
    allocated,
    envelope,
    given,
    hours,
    line,
    path,
    report,
    then_only,
    when,
)

from schemas.allocation import AllocationRecallRequested, AllocationReinstated, AllocationSuspended
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded, FulfilmentStepRejected, RecallAnswered, Step


def recall(
    allocation_id: UUID = ALLOCATION_ID, why: Literal["order_cancelled", "approval_revoked"] = "approval_revoked"
) -> Envelope[AllocationRecallRequested]:
    payload = AllocationRecallRequested(**line(allocation_id), why=why, requested_at=AT)
    return envelope(payload, allocation_id, message_id=uuid4(), occurred_at=hours(5))


def suspension(allocation_id: UUID = ALLOCATION_ID) -> Envelope[AllocationSuspended]:
    return envelope(
        AllocationSuspended(**line(allocation_id), suspended_at=AT), allocation_id, message_id=None, occurred_at=AT
    )


def reinstatement(allocation_id: UUID = ALLOCATION_ID) -> Envelope[AllocationReinstated]:
    payload = AllocationReinstated(**line(allocation_id), reinstated_at=AT)
    return envelope(payload, allocation_id, message_id=None, occurred_at=AT)


@pytest.mark.parametrize(("steps", "outcome"), [((), "cancelled"), (("packed",), "cancelled")])
def test_a_recall_before_the_chips_leave_cancels_the_shipment(steps: tuple[Step, ...], outcome: str) -> None:
    state = given(*path(*steps))

    answer = then_only(when(state, recall()))

    assert isinstance(answer, RecallAnswered) and answer.outcome == outcome
    refused = then_only(when(state, report("shipped", hours(9))))
    assert isinstance(refused, FulfilmentStepRejected) and refused.reason.code == "allocation_released"


@pytest.mark.parametrize("steps", [("packed", "shipped"), ("packed", "shipped", "customs_cleared", "delivered")])
def test_a_recall_after_the_chips_left_is_answered_already_shipped(steps: tuple[Step, ...]) -> None:
    # The reproduced defect: the shipment raced the revocation, and the chips went out twice.
    state = given(*path(*steps))

    answer = then_only(when(state, recall()))

    assert isinstance(answer, RecallAnswered)
    assert (answer.outcome, answer.stage) == ("already_shipped", steps[-1])


def test_a_shipment_report_after_a_confirmed_recall_is_refused() -> None:
    state = given(*path("packed"), recall())

    refused = then_only(when(state, report("shipped", hours(9))))

    assert isinstance(refused, FulfilmentStepRejected) and refused.reason.code == "allocation_released"


def test_a_recall_for_a_line_never_seen_is_answered_cancelled_and_its_ledger_line_arrives_cancelled() -> None:
    state = given(recall())

    refused = [*when(state, allocated()), *when(state, report("packed", hours(1)))]

    assert isinstance(refused[0], FulfilmentStepRejected) and refused[0].reason.code == "allocation_released"


@pytest.mark.parametrize("step", ["packed", "shipped"])
def test_a_suspended_line_may_not_be_packed_or_shipped(step: Step) -> None:
    history: list[Envelope[Any]] = path() if step == "packed" else path("packed")
    state = given(*history, suspension())

    refused = then_only(when(state, report(step, hours(3))))

    assert isinstance(refused, FulfilmentStepRejected) and refused.reason.code == "approval_suspended"


def test_a_reinstated_line_may_be_shipped_again() -> None:
    state = given(*path("packed"), suspension(), reinstatement())

    recorded = then_only(when(state, report("shipped", hours(3))))

    assert isinstance(recorded, FulfilmentStepRecorded) and recorded.step == "shipped"


def test_chips_already_on_their_way_go_on_while_the_order_is_suspended() -> None:
    state = given(*path("packed", "shipped"), suspension())

    recorded = then_only(when(state, report("customs_cleared", hours(4))))

    assert isinstance(recorded, FulfilmentStepRecorded)


def test_a_report_refused_as_unknown_allocation_is_decided_when_retried_after_the_ledger_line() -> None:
    # The reproduced defect: the refused report was marked applied, so its identical retry was dropped.
    early = report("packed", hours(1))
    state = given(early, allocated())

    recorded = then_only(when(state, early))

    assert isinstance(recorded, FulfilmentStepRecorded) and recorded.step == "packed"
