"""Approval in business time (docs/time.md, "Approval"): a partition clock dates every decision, policies take
effect at their effective_at, licences expire and tranches open as ticks pass, and markers follow every tick."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from builders_approval import (
    T0,
    YEAR,
    arrived,
    at,
    effective_at,
    importer_authorised,
    importer_reinstated,
    importer_suspended,
    licence_issued,
    licence_revoked,
    order_closed,
    order_id,
    order_placed,
    tick,
    tranche_quota_set,
    use_rules_set,
)

from schemas.approval import (
    ApprovalExpired,
    ApprovalReleased,
    ApprovalRevoked,
    Decision,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.base import Message
from schemas.clock import ApprovalsPassed
from schemas.envelope import Envelope
from services.approval import domain as approval
from services.approval.domain import ApprovalState
from services.common.decider import fold, step


def given(*inputs: Envelope[Any]) -> ApprovalState:
    state: ApprovalState = fold(approval, list(inputs))[0]
    return state


def when(state: ApprovalState, message: Envelope[Any]) -> list[Message]:
    _, outputs = step(approval, state, message)
    return [output.payload for output in outputs]


def kinds(events: list[Message]) -> list[type[Message]]:
    return [type(event) for event in events]


def codes(event: Message) -> list[str]:
    assert isinstance(event, OrderHeld | OrderDenied)
    return [reason.code for reason in event.reasons]


def cleared(licence: int = 100, quota: int = 100, **window: Any) -> list[Envelope[Any]]:
    return [
        use_rules_set(),
        licence_issued("bytedance", licence, **window),
        importer_authorised("bytedance"),
        tranche_quota_set("bytedance", quota),
    ]


# ------------------------------------------------------------------------------------- policies in force later


def test_an_authorisation_effective_later_does_not_approve_today_s_order_but_does_on_the_tick_that_reaches_it() -> None:
    later = effective_at(importer_authorised("bytedance"), 60)
    state = given(use_rules_set(), licence_issued("bytedance", 100), tranche_quota_set("bytedance", 100), later)

    assert codes(*when(state, order_placed("bytedance", "BD-1", 10, minute=1))) == ["importer_not_authorised"]
    assert when(state, tick(59)) == []
    approved = when(state, tick(60))

    assert kinds(approved) == [OrderApproved]
    assert isinstance(approved[0], OrderApproved) and approved[0].decided_at == at(60)
    assert approved[0].cause_event_id == tick(60).id


def test_a_revocation_effective_later_neither_denies_nor_revokes_today_but_does_at_its_time() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 10, minute=1))

    assert when(state, effective_at(licence_revoked("bytedance", minute=2), 60)) == []
    assert kinds(when(state, order_placed("bytedance", "BD-2", 10, minute=3))) == [OrderApproved]
    revoked = when(state, tick(61))

    assert kinds(revoked) == [ApprovalRevoked, ApprovalRevoked]
    assert [event.decided_at for event in revoked if isinstance(event, Decision)] == [at(61), at(61)]
    assert codes(*when(state, order_placed("bytedance", "BD-3", 10, minute=62))) == ["licence_revoked"]


def test_what_falls_due_is_in_force_before_the_input_that_moved_the_clock_is_decided() -> None:
    later = effective_at(importer_authorised("bytedance"), 60)
    state = given(use_rules_set(), licence_issued("bytedance", 100), tranche_quota_set("bytedance", 100), later)
    when(state, order_placed("bytedance", "BD-1", 10, minute=1))

    decided = when(state, order_placed("bytedance", "BD-2", 10, minute=70))

    assert [(type(e), e.order_id) for e in decided if isinstance(e, Decision)] == [
        (OrderApproved, order_id("bytedance", "BD-1")),
        (OrderApproved, order_id("bytedance", "BD-2")),
    ]


def test_a_pending_revision_overtaken_by_a_later_one_in_force_never_comes_into_force() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 10, minute=1))
    assert when(state, effective_at(importer_suspended("bytedance", revision=2, minute=2), 60)) == []
    assert when(state, importer_reinstated("bytedance", revision=3, minute=3)) == []

    assert when(state, tick(60)) == []
    assert kinds(when(state, order_placed("bytedance", "BD-2", 10, minute=61))) == [OrderApproved]


def test_a_pending_policy_sent_again_is_ignored_and_comes_into_force_once() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 10, minute=1))
    suspension = effective_at(importer_suspended("bytedance", revision=2, minute=2), 60)
    when(state, suspension)
    again = effective_at(importer_suspended("bytedance", revision=2, minute=3), 60)

    assert when(state, again) == []
    assert [event.TYPE for event in when(state, tick(60))] == ["ApprovalSuspended"]


def held_for_quota_until(minute: int) -> ApprovalState:
    """A cleared buyer whose quota comes into force only at `minute`, with an order held for want of it."""
    later_quota = effective_at(tranche_quota_set("bytedance", 100), minute)
    state = given(use_rules_set(), licence_issued("bytedance", 100), importer_authorised("bytedance"), later_quota)
    (held,) = when(state, order_placed("bytedance", "BD-1", 10, minute=1))
    assert isinstance(held, OrderHeld) and "importer_suspended" not in codes(held)
    return state


def test_a_suspension_arriving_when_a_pending_quota_falls_due_keeps_the_order_held_not_approved_then_suspended() -> (
    None
):
    # The simulation's seed 129: the suspension that moved the clock is in force at that very `now`, like the quota.
    state = held_for_quota_until(30)

    (held,) = when(state, importer_suspended("bytedance", revision=2, minute=30))

    assert isinstance(held, OrderHeld) and held.decided_at == at(30)
    assert "importer_suspended" in codes(held)


def test_two_pending_policies_due_on_one_tick_are_both_in_force_before_any_decision() -> None:
    state = held_for_quota_until(30)
    when(state, effective_at(importer_suspended("bytedance", revision=2, minute=2), 30))

    (held,) = when(state, tick(30))

    assert isinstance(held, OrderHeld) and "importer_suspended" in codes(held)


def test_a_licence_revoked_at_the_moment_it_opens_keeps_the_held_order_held() -> None:
    state = given(*cleared(valid_from=at(30), valid_until=T0 + YEAR))
    assert codes(*when(state, order_placed("bytedance", "BD-1", 10, minute=1))) == ["licence_not_in_window"]

    decided = when(state, licence_revoked("bytedance", minute=30))

    assert OrderApproved not in kinds(decided) and ApprovalRevoked not in kinds(decided)
    (held,) = decided
    assert "licence_revoked" in codes(held)


def test_a_suspension_overtaken_by_a_reinstatement_before_the_clock_gets_there_suspends_nothing() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 10, minute=1))
    when(state, effective_at(importer_suspended("bytedance", revision=2, minute=2), 30))
    when(state, effective_at(importer_reinstated("bytedance", revision=3, minute=3), 40))

    assert when(state, tick(45)) == []
    assert kinds(when(state, order_placed("bytedance", "BD-2", 10, minute=46))) == [OrderApproved]


# ----------------------------------------------------------------------------------- licences and tranches


def test_a_licence_expiring_mid_allocation_expires_its_open_approvals_and_the_close_releases_what_did_not_ship() -> (
    None
):
    state = given(*cleared(valid_until=at(30)), order_placed("bytedance", "BD-1", 100, minute=1))

    assert when(state, tick(29)) == []
    (expired,) = when(state, tick(31))
    assert isinstance(expired, ApprovalExpired)
    assert (expired.licence_id, expired.decided_at, expired.reason.code) == (
        "BIS-H200-BYTEDANCE",
        at(31),
        "licence_expired",
    )
    assert when(state, tick(32)) == []

    (released,) = when(state, order_closed("bytedance", "BD-1", 100, 40, "expired", minute=33))
    assert isinstance(released, ApprovalReleased)
    assert (released.why, released.quantity) == ("expired", 60)
    # The 40 chips that shipped stay counted: renewed, the licence has 60 left.
    when(state, licence_issued("bytedance", 100, revision=2, minute=34, valid_until=T0 + YEAR))
    approved = when(state, order_placed("bytedance", "BD-2", 100, minute=35))
    assert isinstance(approved[0], OrderApproved) and approved[0].approved_quantity == 60


def test_a_licence_renewed_before_it_ends_expires_nothing() -> None:
    state = given(*cleared(valid_until=at(30)), order_placed("bytedance", "BD-1", 100, minute=1))
    when(state, licence_issued("bytedance", 100, revision=2, minute=10, valid_until=T0 + YEAR))

    assert when(state, tick(31)) == []


def test_a_licence_issued_again_with_a_validity_already_over_expires_its_approvals_at_once() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 100, minute=10))

    decided = when(state, licence_issued("bytedance", 100, revision=2, minute=11, valid_until=at(5)))

    assert kinds(decided) == [ApprovalExpired]


def test_a_tranche_opening_later_re_examines_the_held_order_on_the_tick() -> None:
    state = given(
        use_rules_set(),
        licence_issued("bytedance", 100),
        importer_authorised("bytedance"),
        tranche_quota_set("bytedance", 100, opens_at=at(30), closes_at=T0 + YEAR),
    )
    assert codes(*when(state, order_placed("bytedance", "BD-1", 10, minute=1))) == ["no_open_tranche"]

    approved = when(state, tick(30))

    assert kinds(approved) == [OrderApproved]
    assert isinstance(approved[0], OrderApproved) and approved[0].decided_at == at(30)


def test_a_licence_becoming_valid_later_re_examines_the_held_order() -> None:
    state = given(*cleared(valid_from=at(30), valid_until=T0 + YEAR))
    assert codes(*when(state, order_placed("bytedance", "BD-1", 10, minute=1))) == ["licence_not_in_window"]

    assert kinds(when(state, tick(45))) == [OrderApproved]


def test_a_tranche_closing_changes_nothing_for_approvals_already_given() -> None:
    state = given(
        use_rules_set(),
        licence_issued("bytedance", 100),
        importer_authorised("bytedance"),
        tranche_quota_set("bytedance", 100, closes_at=at(30)),
        order_placed("bytedance", "BD-1", 10, minute=1),
    )

    assert when(state, tick(31)) == []


def test_an_order_closed_unfilled_gives_back_what_it_did_not_keep() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 100, minute=1))

    (released,) = when(state, order_closed("bytedance", "BD-1", 100, 30, "unfilled", minute=2))

    assert isinstance(released, ApprovalReleased) and (released.why, released.quantity) == ("unfilled", 70)
    assert state.order("bytedance", order_id("bytedance", "BD-1")).status == "closed"  # type: ignore[union-attr]
    assert when(state, order_closed("bytedance", "BD-1", 100, 30, "unfilled", minute=3)) == []


# ------------------------------------------------------------------------------------------ the partition clock


def test_decisions_are_stamped_with_the_partition_clock_never_earlier_than_the_last_tick() -> None:
    state = given(*cleared(), tick(50))

    _, outputs = step(approval, state, order_placed("bytedance", "BD-1", 10, minute=10))

    (approved,) = outputs
    assert isinstance(approved.payload, OrderApproved)
    assert approved.payload.decided_at == approved.occurred_at == at(50)


def test_the_clock_is_the_arrival_not_the_sender_s_time_and_never_goes_back() -> None:
    state = given(*cleared())
    late = arrived(order_placed("bytedance", "BD-1", 10, minute=10), minute=20)
    (approved,) = when(state, late)
    assert isinstance(approved, OrderApproved) and approved.decided_at == at(20)

    assert when(state, tick(15)) == []
    assert state.now == at(20)


def test_a_tick_read_from_the_inbox_writes_a_marker_to_every_lane_after_what_fell_due() -> None:
    state = given(*cleared(valid_until=at(30)), order_placed("bytedance", "BD-1", 100, minute=1))

    decided = when(state, tick(40, partition=4))

    assert kinds(decided) == [ApprovalExpired, ApprovalsPassed, ApprovalsPassed, ApprovalsPassed]
    markers = [event for event in decided if isinstance(event, ApprovalsPassed)]
    assert [(m.source_partition, m.sources, m.lane, m.lanes, m.at, m.lane_only) for m in markers] == [
        (4, 6, lane, 3, at(40), True) for lane in range(3)
    ]


def test_a_marker_is_never_overtaken_by_an_earlier_decision() -> None:
    state = given(*cleared())
    (marker, *_) = when(state, tick(40, partition=0))
    assert isinstance(marker, ApprovalsPassed)

    (approved,) = when(state, order_placed("bytedance", "BD-1", 10, minute=5))

    assert isinstance(approved, OrderApproved) and approved.decided_at >= marker.at


def test_a_tick_without_an_arrival_writes_no_marker_and_a_repeated_tick_nothing() -> None:
    state = given(*cleared())
    assert when(state, tick(40)) == []
    ticked = tick(41, partition=1)
    assert len(when(state, ticked)) == 3
    assert when(state, ticked) == []


def test_a_tick_on_an_empty_partition_decides_nothing() -> None:
    assert when(approval.initial_state(), tick(0)) == []


def test_deciding_what_falls_due_leaves_the_state_unchanged() -> None:
    later = effective_at(importer_authorised("bytedance"), 60)
    state = given(*cleared(valid_until=at(30)), order_placed("bytedance", "BD-1", 10, minute=1), later)
    before = deepcopy(state)

    assert approval.decide(state, tick(70)) != []

    assert state == before


def test_the_same_inputs_with_ticks_decide_the_same_events() -> None:
    inputs = [
        *cleared(valid_until=at(30)),
        order_placed("bytedance", "BD-1", 60, minute=1),
        effective_at(importer_suspended("bytedance", revision=2, minute=2), 20),
        tick(10, partition=2),
        tick(25, partition=2),
        order_placed("bytedance", "BD-2", 10, minute=26),
        tick(31, partition=2),
    ]
    first, second = fold(approval, inputs)[1], fold(approval, inputs)[1]
    assert first == second
    twice = fold(approval, [message for message in inputs for _ in (1, 2)])[1]
    assert twice == first
