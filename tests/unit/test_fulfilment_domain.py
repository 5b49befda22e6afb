"""Fulfilment's core as a specification: the shipment of an allocation, step by step."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any, get_args

import pytest
from builders_fulfilment import (
    ALLOCATION_ID,
    HAPPY_PATH,
    QUANTITY,
    allocated,
    given,
    hours,
    line,
    path,
    released,
    report,
    run,
    suspension,
    then_only,
    when,
)
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from schemas.envelope import Envelope, derive_id
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, FulfilmentStepRejected, Step
from services.common.decider import fold, step
from services.fulfilment import domain

STEPS: tuple[Step, ...] = get_args(Step)
OTHER = derive_id("allocation", "h200", "TSMC-B002", "another order")


def recorded_steps(events: list[Any]) -> list[Step]:
    return [event.step for event in events if isinstance(event, FulfilmentStepRecorded)]


def rejection(events: list[Any]) -> tuple[str, str]:
    rejected = then_only(events)
    assert isinstance(rejected, FulfilmentStepRejected)
    assert rejected.reason.gate == "fulfilment"
    return rejected.reason.code, rejected.reason.message


def domain_stage(state: domain.State, allocation_id: Any = ALLOCATION_ID) -> str:
    shipment = state.shipment(allocation_id)
    assert shipment is not None, f"no shipment of {allocation_id}"
    return shipment.stage


# The way to delivery


def test_a_shipment_is_packed_shipped_cleared_by_customs_and_delivered() -> None:
    assert recorded_steps(run(*path(*HAPPY_PATH))) == list(HAPPY_PATH)


def test_a_recorded_step_carries_the_ledger_line_the_report_and_its_cause() -> None:
    state = given(allocated())
    command = report("packed", hours(1), note="crated at Tainan", occurred_at=hours(2))
    recorded = then_only(when(state, command))
    expected = {**line(), "cause_event_id": command.id, "step": "packed", "note": "crated at Tainan", "at": hours(1)}
    assert recorded == FulfilmentStepRecorded.model_validate(expected)


def test_ledger_lines_cause_no_events() -> None:
    assert run(allocated(), released()) == []


def test_a_step_for_an_unknown_allocation_is_rejected() -> None:
    code, message = rejection(run(report("packed", hours(1))))
    assert code == "unknown_allocation"
    assert str(ALLOCATION_ID) in message


def test_delivering_before_shipping_is_rejected_naming_the_stage_and_the_step() -> None:
    state = given(*path("packed"))
    code, message = rejection(when(state, report("delivered", hours(5))))
    assert code == "step_out_of_order"
    assert message == "a shipment that is packed cannot be delivered (it may be shipped)"


def test_a_step_dated_before_the_previous_step_is_rejected() -> None:
    state = given(*path("packed", "shipped"))
    code, message = rejection(when(state, report("customs_cleared", hours(1))))
    assert code == "time_went_backwards"
    assert "earlier than shipped" in message


def test_a_step_at_the_same_time_as_the_previous_one_is_recorded() -> None:
    state = given(*path("packed"))
    assert recorded_steps(when(state, report("shipped", hours(1)))) == ["shipped"]


def test_a_rejected_step_leaves_the_shipment_where_it_was() -> None:
    state = given(*path("packed"), report("delivered", hours(2)))
    assert recorded_steps(when(state, report("shipped", hours(3)))) == ["shipped"]


# Retries


def test_the_same_report_envelope_twice_records_the_step_once() -> None:
    command = report("packed", hours(1))
    assert recorded_steps(run(allocated(), command, command)) == ["packed"]


def test_a_step_reported_again_is_a_retry_and_records_nothing() -> None:
    state = given(*path("packed"))
    assert when(state, report("packed", hours(3))) == []


def test_a_late_retry_of_an_earlier_step_records_nothing() -> None:
    state = given(*path("packed", "shipped"))
    assert when(state, report("packed", hours(1))) == []


def test_an_earlier_step_reported_with_another_time_is_out_of_order() -> None:
    state = given(*path("packed", "shipped"))
    assert rejection(when(state, report("packed", hours(9))))[0] == "step_out_of_order"


# Customs holds


@pytest.mark.parametrize(("interrupted", "then"), [("shipped", "customs_cleared"), ("customs_cleared", "delivered")])
def test_a_released_customs_hold_returns_to_the_stage_it_interrupted(interrupted: Step, then: Step) -> None:
    before = HAPPY_PATH[: HAPPY_PATH.index(interrupted) + 1]
    events = run(*path(*before, "held", "released", then))
    assert recorded_steps(events) == [*before, "held", "released", then]


def test_a_held_shipment_cannot_be_delivered() -> None:
    state = given(*path("packed", "shipped", "customs_cleared", "held"))
    code, message = rejection(when(state, report("delivered", hours(9))))
    assert (code, message) == (
        "step_out_of_order",
        "a shipment that is held cannot be delivered (it may be lost, released)",
    )


def test_a_second_customs_hold_after_a_release_is_recorded() -> None:
    events = run(*path("packed", "shipped", "held", "released", "held"))
    assert recorded_steps(events)[-1] == "held"


def test_a_hold_before_shipping_is_out_of_order() -> None:
    state = given(*path("packed"))
    assert rejection(when(state, report("held", hours(9))))[0] == "step_out_of_order"


# Failed deliveries


@pytest.mark.parametrize(
    "before",
    [("packed", "shipped"), ("packed", "shipped", "customs_cleared"), ("packed", "shipped", "held")],
)
def test_a_lost_shipment_fails_the_delivery(before: tuple[Step, ...]) -> None:
    state = given(*path(*before))
    command = report("lost", hours(9))
    recorded, failed = when(state, command)
    assert isinstance(recorded, FulfilmentStepRecorded)
    assert recorded.step == "lost"
    expected = {**line(), "cause_event_id": command.id, "outcome": "lost", "at": hours(9)}
    assert failed == DeliveryFailed.model_validate(expected)


def test_a_shipment_refused_after_customs_clearance_fails_the_delivery() -> None:
    state = given(*path("packed", "shipped", "customs_cleared"))
    events = when(state, report("refused", hours(9)))
    assert recorded_steps(events) == ["refused"]
    assert isinstance(events[1], DeliveryFailed)
    assert events[1].outcome == "refused"


@pytest.mark.parametrize(("before", "failure"), [(("packed",), "lost"), (("packed", "shipped"), "refused")])
def test_a_failure_before_its_stage_is_out_of_order(before: tuple[Step, ...], failure: Step) -> None:
    state = given(*path(*before))
    assert rejection(when(state, report(failure, hours(9))))[0] == "step_out_of_order"


def test_a_loss_reported_again_fails_the_delivery_only_once() -> None:
    events = run(*path("packed", "shipped", "lost"), report("lost", hours(7)))
    assert sum(isinstance(event, DeliveryFailed) for event in events) == 1


@pytest.mark.parametrize("final", [("customs_cleared", "delivered"), ("lost",), ("customs_cleared", "refused")])
def test_no_step_follows_a_final_one(final: tuple[Step, ...]) -> None:
    state = given(*path("packed", "shipped", *final))
    for later in STEPS:
        if later != final[-1]:
            code, message = rejection(when(state, report(later, hours(9))))
            assert code == "step_out_of_order"
            assert message.endswith("(it may be nothing: it is final)")


# Allocation released


@pytest.mark.parametrize("before", [(), ("packed",)])
def test_a_release_before_shipping_cancels_the_shipment(before: tuple[Step, ...]) -> None:
    state = given(*path(*before), released())
    code, _ = rejection(when(state, report("shipped", hours(9))))
    assert code == "allocation_released"


def test_a_release_after_shipping_is_ignored() -> None:
    state = given(*path("packed", "shipped"), released(why="approval_revoked"))
    assert recorded_steps(when(state, report("customs_cleared", hours(9)))) == ["customs_cleared"]


def test_the_release_that_answers_a_failed_delivery_changes_nothing() -> None:
    state = given(*path("packed", "shipped", "lost"), released(why="delivery_failed"))
    assert domain_stage(state) == "lost"


def test_a_release_seen_before_its_allocation_cancels_the_shipment() -> None:
    state = given(released(), allocated())
    assert rejection(when(state, report("packed", hours(1))))[0] == "allocation_released"


def test_a_ledger_line_copied_again_does_not_reset_the_shipment() -> None:
    state = given(*path("packed", "shipped"), allocated())
    assert domain_stage(state) == "shipped"


# Properties over any history


SPEC: dict[str, set[str]] = {
    "allocated": {"packed"},
    "packed": {"shipped"},
    "shipped": {"customs_cleared", "held", "lost"},
    "customs_cleared": {"delivered", "held", "lost", "refused"},
    "held": {"released", "lost"},
}
"""The shipment state machine of the domain, written out again independently of the core's table."""
FINAL = {"delivered", "lost", "refused"}
ALLOCATIONS = (ALLOCATION_ID, OTHER)
UNKNOWN = derive_id("allocation", "never allocated")

KINDS = ("walk",) * 8 + ("any",) * 3 + ("late", "allocate", "release", "redeliver", "unknown", "suspend", "reinstate")


@st.composite
def histories(draw: st.DrawFn) -> list[Envelope[Any]]:
    """Mostly plausible reports (a walk on SPEC), mixed with random and stale steps, ledger copies arriving
    late or twice, releases, suspensions and reinstatements, reports for an allocation never made, and redelivered
    envelopes (a step refused while suspended leaves the walk's idea of the stage behind: it only picks steps)."""
    messages: list[Envelope[Any]] = [allocated(ALLOCATION_ID)]
    stage: dict[Any, str] = {ALLOCATION_ID: "allocated"}
    held_from: dict[Any, str] = {}
    clock = 0
    for _ in range(draw(st.integers(min_value=0, max_value=40))):
        kind = draw(st.sampled_from(KINDS))
        allocation_id = draw(st.sampled_from(ALLOCATIONS))
        if kind == "allocate":
            messages.append(allocated(allocation_id, quantity=QUANTITY + ALLOCATIONS.index(allocation_id)))
            stage.setdefault(allocation_id, "allocated")
        elif kind == "release":
            messages.append(released(allocation_id))
            if stage.get(allocation_id, "allocated") in {"allocated", "packed"}:
                stage[allocation_id] = "cancelled"
        elif kind in ("suspend", "reinstate"):
            messages.append(suspension(allocation_id, lifted=kind == "reinstate"))
        elif kind == "redeliver":
            messages.append(messages[draw(st.integers(min_value=0, max_value=len(messages) - 1))])
        elif kind == "late":
            messages.append(report(draw(st.sampled_from(STEPS)), hours(clock - draw(st.integers(1, 3))), allocation_id))
        else:
            clock += 1
            allowed = sorted(SPEC.get(stage.get(allocation_id, ""), set()))
            step: Step = draw(st.sampled_from(allowed if kind == "walk" and allowed else STEPS))
            if kind == "unknown":
                allocation_id = UNKNOWN
            messages.append(report(step, hours(clock), allocation_id))
            if step in SPEC.get(stage.get(allocation_id, ""), set()):
                if step == "held":
                    held_from[allocation_id] = stage[allocation_id]
                stage[allocation_id] = held_from.pop(allocation_id) if step == "released" else step
    return messages


def outcome(messages: list[Envelope[Any]]) -> tuple[domain.State, list[Any]]:
    state: domain.State
    state, events = fold(domain, messages)
    return state, [event.payload for event in events]


@settings(deadline=None)
@for_all(histories())
def test_any_history_keeps_every_shipment_on_the_state_machine(messages: list[Envelope[Any]]) -> None:
    state, events = outcome(messages)
    stages: dict[Any, str] = defaultdict(lambda: "allocated")
    held_from: dict[Any, str] = {}
    last_at: dict[Any, datetime] = {}
    for event in events:
        if isinstance(event, FulfilmentStepRecorded):
            current = stages[event.allocation_id]
            assert event.step in SPEC.get(current, set()), (current, event.step)
            assert event.at >= last_at.get(event.allocation_id, event.at)
            last_at[event.allocation_id] = event.at
            if event.step == "held":
                held_from[event.allocation_id] = current
            stages[event.allocation_id] = held_from.pop(event.allocation_id) if event.step == "released" else event.step
    for allocation_id, shipment in ((s.line.allocation_id, s) for s in state.every_shipment()):
        expected = stages[allocation_id]
        if shipment.stage == "cancelled":
            assert expected in {"allocated", "packed"}
        else:
            assert shipment.stage == expected
    assert UNKNOWN not in stages


@settings(deadline=None)
@for_all(histories())
def test_delivered_lost_and_refused_are_final(messages: list[Envelope[Any]]) -> None:
    _, events = outcome(messages)
    closed: set[Any] = set()
    for event in events:
        if isinstance(event, FulfilmentStepRecorded):
            assert event.allocation_id not in closed
            if event.step in FINAL:
                closed.add(event.allocation_id)


@settings(deadline=None)
@for_all(histories())
def test_a_delivery_fails_at_most_once_per_allocation(messages: list[Envelope[Any]]) -> None:
    state, events = outcome(messages)
    failures = Counter(event.allocation_id for event in events if isinstance(event, DeliveryFailed))
    assert all(count == 1 for count in failures.values())
    assert set(failures) == {s.line.allocation_id for s in state.every_shipment() if s.stage in {"lost", "refused"}}


@settings(deadline=None)
@for_all(histories())
def test_delivered_never_exceeds_shipped_nor_shipped_allocated(messages: list[Envelope[Any]]) -> None:
    state, events = outcome(messages)
    moved: dict[tuple[Any, str], int] = Counter()
    for event in events:
        if isinstance(event, FulfilmentStepRecorded):
            moved[event.allocation_id, event.step] += event.quantity
    for allocation_id, shipment in ((s.line.allocation_id, s) for s in state.every_shipment()):
        assert moved[allocation_id, "delivered"] <= moved[allocation_id, "shipped"] <= shipment.line.quantity


@settings(deadline=None)
@for_all(histories())
def test_a_redelivered_history_decides_nothing_new(messages: list[Envelope[Any]]) -> None:
    # A report refused as unknown_allocation may be decided again (that is what makes its retry work), but it
    # is refused under the same id, which every reader already dedups: nothing new reaches the topics.
    state, first = fold(domain, messages)
    _, again = fold(domain, messages, state)
    unknown_then = {
        event.causation_id
        for event in first
        if isinstance(event.payload, FulfilmentStepRejected) and event.payload.reason.code == "unknown_allocation"
    }
    assert all(event.causation_id in unknown_then for event in again)


@settings(deadline=None)
@for_all(histories())
def test_replaying_a_history_gives_the_same_events(messages: list[Envelope[Any]]) -> None:
    assert fold(domain, messages)[1] == fold(domain, messages)[1]


class _NeverPacked(domain.State):
    """Fulfilment's state as it was before ended shipments were packed: every shipment an object."""

    def keep(self, shipment: domain.Shipment) -> None:
        self.shipments[shipment.line.allocation_id] = shipment


@settings(deadline=None)
@for_all(histories())
def test_packing_ended_shipments_decides_exactly_what_keeping_them_as_objects_would(
    messages: list[Envelope[Any]],
) -> None:
    # Ended shipments are kept as bytes (issue #9: fulfilment keeps every shipment, so each must cost little).
    # The reference is the same core keeping objects: every decision, in order, must be the same.
    packed, unpacked = domain.initial_state(), _NeverPacked()
    for message in messages:
        packed, decided = step(domain, packed, message)
        unpacked, expected = step(domain, unpacked, message)
        assert decided == expected, f"packing changed what {message.type} decided"
    assert {s.line.allocation_id: s for s in packed.every_shipment()} == unpacked.shipments
    assert all(domain.Shipment is type(s) for s in packed.every_shipment())
    ended = [s for s in unpacked.shipments.values() if s.stage in {"delivered", "lost", "refused", "cancelled"}]
    assert len(packed.ended) == len(ended) and not set(packed.shipments) & {s.line.allocation_id for s in ended}
