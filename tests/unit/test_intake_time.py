"""Intake decides in business time: at a submission's arrival in its inbox (the broker's LogAppendTime), with the
sender's submitted_at kept as a claim and refused when it lies outside the submission window (docs/time.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders_intake import AT, ORDER_ID, arriving, cancel, given, submit, then_only, when, window

from schemas.codec import encode
from schemas.envelope import Envelope
from schemas.intake import OrderCancelled, OrderPlaced, OrderSubmissionRejected
from services.common.decider import fold, step
from services.common.records import LOG_APPEND_TIME, Record, decode_record
from services.intake import domain

ARRIVAL = AT + timedelta(hours=3)
MONTH = timedelta(days=30)


def placed_or_refused(*inputs: Envelope[Any]) -> OrderPlaced | OrderSubmissionRejected:
    _, events = fold(domain, list(inputs))
    decided = then_only([event.payload for event in events])
    assert isinstance(decided, OrderPlaced | OrderSubmissionRejected), decided
    return decided


def test_a_submission_is_placed_at_its_arrival_with_the_claim_kept() -> None:
    claim = ARRIVAL - timedelta(minutes=5)
    message = arriving(submit(submitted_at=claim, occurred_at=AT), ARRIVAL)

    _, events = step(domain, domain.initial_state(), message)

    placed = then_only([event.payload for event in events])
    assert isinstance(placed, OrderPlaced)
    assert (placed.placed_at, placed.submitted_at) == (ARRIVAL, claim)
    assert events[0].occurred_at == ARRIVAL  # the envelope of the decision too, not the sender's occurred_at


def test_a_submission_backdated_30_days_is_refused_by_the_fallback_window_naming_claim_and_arrival() -> None:
    refused = placed_or_refused(arriving(submit(submitted_at=ARRIVAL - MONTH, occurred_at=ARRIVAL - MONTH), ARRIVAL))

    assert isinstance(refused, OrderSubmissionRejected)
    assert refused.rejected_at == ARRIVAL
    (reason,) = refused.reasons
    assert (reason.code, reason.field) == ("implausible_submitted_at", "submitted_at")
    assert (ARRIVAL - MONTH).isoformat() in reason.message
    assert ARRIVAL.isoformat() in reason.message
    assert "30 days before" in reason.message
    assert "fallback window" in reason.message


def test_a_submission_backdated_30_days_inside_a_wider_window_is_placed_at_its_arrival_behind_earlier_arrivals() -> (
    None
):
    wide = window(max_behind_s=31 * 86_400)
    earlier = arriving(submit(upstream_ref="BD-EARLY", submitted_at=AT), AT, offset=1)
    backdated = arriving(submit(submitted_at=ARRIVAL - MONTH, occurred_at=ARRIVAL - MONTH), ARRIVAL, offset=2)

    _, events = fold(domain, [arriving(wide, AT - timedelta(hours=1)), earlier, backdated])

    first, second = (event.payload for event in events)
    assert isinstance(first, OrderPlaced) and isinstance(second, OrderPlaced)
    assert second.order_id == ORDER_ID
    # Its claim is a month older than the first order's, but it arrived later and is placed later: no queue jump.
    assert (second.placed_at, second.submitted_at) == (ARRIVAL, ARRIVAL - MONTH)
    assert first.placed_at < second.placed_at


def test_the_window_of_the_policy_refuses_what_the_fallback_would_accept_and_names_its_revision() -> None:
    narrow = window(revision=4, max_ahead_s=300, max_behind_s=3600)
    claim = ARRIVAL - timedelta(hours=2)

    refused = placed_or_refused(arriving(narrow, AT), arriving(submit(submitted_at=claim), ARRIVAL))

    assert isinstance(refused, OrderSubmissionRejected)
    (reason,) = refused.reasons
    assert reason.code == "implausible_submitted_at"
    assert "intake/submission-window@4" in reason.message
    assert "fallback" not in reason.message


def test_a_claim_ahead_of_its_arrival_by_more_than_max_ahead_is_refused() -> None:
    state = given(arriving(window(max_ahead_s=300), AT))
    ahead = then_only(when(state, arriving(submit(submitted_at=ARRIVAL + timedelta(seconds=301)), ARRIVAL)))
    assert isinstance(ahead, OrderSubmissionRejected)
    assert "301 s after" in ahead.reasons[0].message
    edge = submit(upstream_ref="BD-EDGE", submitted_at=ARRIVAL + timedelta(seconds=300))
    on_the_edge = then_only(when(state, arriving(edge, ARRIVAL)))
    assert isinstance(on_the_edge, OrderPlaced)


def test_a_newer_revision_replaces_the_window_and_a_stale_or_repeated_one_is_ignored() -> None:
    two_hours_behind = submit(submitted_at=ARRIVAL - timedelta(hours=2))
    narrow, wide = window(revision=1, max_behind_s=3600), window(revision=2, max_behind_s=86_400)

    assert isinstance(placed_or_refused(narrow, two_hours_behind), OrderSubmissionRejected)
    widened = given(arriving(narrow, AT), arriving(wide, AT))
    assert isinstance(then_only(when(widened, arriving(two_hours_behind, ARRIVAL))), OrderPlaced)
    # Revision 1 again (a stale copy) and revision 2 again (a repeat under another id) change nothing.
    stale = given(arriving(narrow, AT), arriving(wide, AT), arriving(window(revision=1, max_behind_s=3600), AT))
    again = given(arriving(wide, AT), arriving(window(revision=2, max_behind_s=60), AT))
    assert isinstance(then_only(when(stale, arriving(two_hours_behind, ARRIVAL))), OrderPlaced)
    assert isinstance(then_only(when(again, arriving(two_hours_behind, ARRIVAL))), OrderPlaced)


def test_a_window_takes_effect_when_the_partition_s_arrivals_reach_its_effective_at() -> None:
    takes_effect = ARRIVAL + timedelta(hours=1)
    narrow = window(max_behind_s=60, effective_at=takes_effect)
    state = given(arriving(narrow, AT))

    before = then_only(when(state, arriving(submit(submitted_at=ARRIVAL - timedelta(hours=2)), ARRIVAL)))
    assert isinstance(before, OrderPlaced)  # still the fallback: the narrow window is pending

    later = submit(upstream_ref="BD-LATER", submitted_at=takes_effect - timedelta(hours=2))
    at_effect = then_only(when(state, arriving(later, takes_effect)))
    assert isinstance(at_effect, OrderSubmissionRejected)
    assert "intake/submission-window@1" in at_effect.reasons[0].message


def test_a_window_in_force_is_kept_when_the_pending_one_of_a_lower_revision_falls_due_later() -> None:
    # Revision 2 takes effect at once; revision 1, published earlier for a later time, must not undo it.
    later = window(revision=1, max_behind_s=60, effective_at=ARRIVAL)
    now = window(revision=2, max_behind_s=86_400, effective_at=AT)
    state = given(arriving(later, AT), arriving(now, AT))
    decided = then_only(when(state, arriving(submit(submitted_at=ARRIVAL - timedelta(hours=2)), ARRIVAL)))
    assert isinstance(decided, OrderPlaced)


def test_intake_folds_a_window_without_deciding_anything() -> None:
    _, events = step(domain, domain.initial_state(), arriving(window(), AT))
    assert events == []


def test_a_cancellation_is_recorded_at_its_arrival_not_at_its_request_time() -> None:
    state = given(arriving(submit(), AT))
    cancelled = then_only(when(state, arriving(cancel(occurred_at=AT), ARRIVAL)))
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.cancelled_at == ARRIVAL


def record(message: Envelope[Any], timestamp_type: int, at_ms: int, offset: int = 0) -> Record:
    return Record("h200.intake.inbox", 2, offset, b"bytedance", encode(message), (), at_ms, timestamp_type)


def test_the_arrival_is_the_broker_s_log_append_time_of_the_inbox_record_end_to_end() -> None:
    backdated = submit(submitted_at=AT - MONTH, occurred_at=AT - MONTH)
    wide = window(max_behind_s=31 * 86_400)
    arrival_ms = int(ARRIVAL.timestamp() * 1000)

    read = [
        decode_record(record(wide, LOG_APPEND_TIME, int(AT.timestamp() * 1000)), 1_000_000),
        decode_record(record(backdated, LOG_APPEND_TIME, arrival_ms, offset=1), 1_000_000),
    ]

    assert read[1].arrival is not None and read[1].arrival.at == ARRIVAL
    assert (read[1].arrival.topic, read[1].arrival.partition, read[1].arrival.offset) == ("h200.intake.inbox", 2, 1)
    _, events = fold(domain, read)
    placed = then_only([event.payload for event in events])
    assert isinstance(placed, OrderPlaced)
    assert (placed.placed_at, placed.submitted_at, events[0].occurred_at) == (ARRIVAL, AT - MONTH, ARRIVAL)


def test_a_record_stamped_with_the_producer_s_create_time_gets_no_arrival() -> None:
    message = submit(occurred_at=AT)
    create_time = 0
    read = decode_record(record(message, create_time, int(ARRIVAL.timestamp() * 1000)), 1_000_000)
    assert read.arrival is None
    placed = then_only(when(domain.initial_state(), read))
    assert isinstance(placed, OrderPlaced)
    assert placed.placed_at == AT  # the producer's time, for a message read without an arrival (no inbox record)


def test_the_same_inbox_read_twice_gives_the_same_decisions() -> None:
    inputs = [
        arriving(window(max_behind_s=3600, effective_at=ARRIVAL), AT, offset=0),
        arriving(submit(submitted_at=AT - timedelta(hours=2)), AT + timedelta(minutes=1), offset=1),
        arriving(submit(upstream_ref="BD-2", submitted_at=ARRIVAL - timedelta(hours=2)), ARRIVAL, offset=2),
    ]
    _, first = fold(domain, inputs)
    _, again = fold(domain, inputs)
    assert first == again
    assert [type(event.payload) for event in first] == [OrderPlaced, OrderSubmissionRejected]
