"""The order book in business time (docs/time.md): its clock, admission by approval's markers, expiry, orders
closed unfilled, and a rule that is always a published policy."""

from __future__ import annotations

from datetime import timedelta

from builders_allocation import (
    AT,
    Book,
    all_passed,
    allocations,
    answer,
    approved,
    batch,
    cancelled,
    closings,
    delivery_failed,
    expired,
    grants,
    minutes,
    order_ids,
    passed,
    policy,
    recalls,
    reinstated,
    releases,
    revoked,
    step_recorded,
    suspended,
    tick,
)

from schemas.allocation import AllocationRecallRequested, ChipsAllocated, OrderClosed
from schemas.base import PolicyRef
from schemas.envelope import Arrival
from services.allocation import domain
from services.common.decider import step

A, B, C = order_ids(3, seed="time")
X, Y = A, B  # X decided first, Y later

# ------------------------------------------------------------------------------------------------------ admission


def test_an_approval_decided_earlier_but_copied_later_is_served_first_once_the_markers_pass_both() -> None:
    # The fafs-inversion: Y (source 1, decided at minute 2) reaches the book before X (source 0, minute 1), and a
    # batch arrives between them. Neither takes chips until both sources have passed both decisions.
    book = Book().given(*all_passed(minutes(0), sources=2))
    assert book.when(approved(Y, 20, decided_at=minutes(2))) == []
    assert book.when(batch("B1", 20, at=minutes(3))) == []
    assert book.when(approved(X, 20, decided_at=minutes(1))) == []

    assert book.when(passed(minutes(3), source=0, sources=2)) == []  # source 1 has not passed yet
    events = book.when(passed(minutes(3), source=1, sources=2))

    assert grants(events) == [(X, "B1", 20)]
    assert book.allocated_to(Y) == 0


def test_a_marker_at_the_decision_time_itself_does_not_admit_it() -> None:
    # A later decision of the same source may carry the same time: only a marker strictly after admits.
    book = Book().given(passed(minutes(0)), batch("B1", 10), approved(A, 10, decided_at=minutes(5)))

    assert book.when(passed(minutes(5))) == []
    assert grants(book.when(passed(minutes(6)))) == [(A, "B1", 10)]


def test_every_lane_must_be_heard_from_before_an_approval_is_admitted() -> None:
    book = Book().given(passed(minutes(0), lane=0, lanes=2), batch("B1", 10), approved(A, 10, decided_at=minutes(1)))

    assert book.when(passed(minutes(2), lane=0, lanes=2)) == []
    assert grants(book.when(passed(minutes(2), lane=1, lanes=2))) == [(A, "B1", 10)]


def test_without_any_marker_an_approval_takes_chips_on_arrival() -> None:
    # A log written before markers existed: the later-decided approval that arrives first is served first.
    book = Book().given(approved(Y, 20, decided_at=minutes(2)))

    assert grants(book.when(batch("B1", 20, at=minutes(3)))) == [(Y, "B1", 20)]
    assert book.when(approved(X, 20, decided_at=minutes(1))) == []


def test_approvals_admitted_before_the_first_marker_stay_in_the_queue() -> None:
    book = Book().given(approved(A, 10, decided_at=minutes(1)), passed(minutes(0), sources=2))

    # Source 1 is still unheard: an end it wrote is maybe on its way, so nothing is handed out yet.
    assert grants(book.when(batch("B1", 10))) == []
    assert [o.admitted for o in book.summary().orders] == [True]
    assert grants(book.when(passed(minutes(2), source=1, sources=2))) == []  # both passed, not A's approval
    assert grants(book.when(passed(minutes(2), source=0, sources=2))) == [(A, "B1", 10)]


def test_pro_rata_shares_only_among_admitted_approvals() -> None:
    book = Book().given(policy("pro_rata"), passed(minutes(2)))
    book.given(approved(A, 50, decided_at=minutes(1)), approved(B, 50, decided_at=minutes(3)))

    assert grants(book.when(batch("B1", 60))) == [(A, "B1", 50)]
    assert grants(book.when(passed(minutes(4)))) == [(B, "B1", 10)]


def test_an_approval_not_admitted_yet_that_is_revoked_simply_leaves() -> None:
    book = Book().given(passed(minutes(0)), batch("B1", 10), approved(A, 10, decided_at=minutes(1)))

    assert closings(book.when(revoked(A, at=minutes(2)))) == [(A, "revoked", 0)]
    assert book.when(passed(minutes(5))) == []
    assert book.remaining_in("B1") == 10


def test_a_suspended_approval_is_admitted_but_takes_chips_only_once_reinstated() -> None:
    book = Book().given(passed(minutes(0)), batch("B1", 10), approved(A, 10, decided_at=minutes(1)), suspended(A))

    assert book.when(passed(minutes(5))) == []
    assert grants(book.when(reinstated(A, at=minutes(6)))) == [(A, "B1", 10)]


def test_a_reinstatement_before_admission_takes_no_chips() -> None:
    book = Book().given(passed(minutes(0)), batch("B1", 10), approved(A, 10, decided_at=minutes(1)), suspended(A))

    assert book.when(reinstated(A, at=minutes(2))) == []
    assert grants(book.when(passed(minutes(5)))) == [(A, "B1", 10)]


def test_repeated_markers_and_ticks_decide_nothing_the_second_time() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        passed(minutes(0)),
        batch("B1", 5),
        approved(A, 10, decided_at=minutes(1)),
    )
    marker, clock = passed(minutes(5)), tick(minutes(20))
    assert grants(book.when(marker)) == [(A, "B1", 5)]
    assert len(recalls(book.when(clock))) == 1
    before = book.summary()

    assert book.when(marker) == [] and book.when(clock) == []
    assert book.summary() == before


def test_ticks_and_markers_are_decided_on_an_empty_book_without_failing() -> None:
    book = Book(rule=None)

    assert book.when(tick(AT)) == []
    assert book.when(passed(AT, source=3, sources=6, lane=2, lanes=3)) == []


# ---------------------------------------------------------------------------------------------------------- clock


def test_decisions_are_dated_by_the_partition_clock_which_never_goes_back() -> None:
    book = Book().given(approved(A, 10), tick(minutes(30)))
    late = batch("B1", 10, at=minutes(5))  # sent at minute 5, reaching the book after the tick of minute 30

    state, outputs = step(domain, book.state, late)

    (line,) = [output for output in outputs if isinstance(output.payload, ChipsAllocated)]
    assert (line.occurred_at, line.payload.allocated_at) == (minutes(30), minutes(30))
    assert state.now == minutes(30)


def test_the_time_of_a_decision_is_when_the_book_learned_of_its_input_not_when_the_sender_says() -> None:
    book = Book().given(approved(A, 10))
    claimed = batch("B1", 10, at=minutes(1)).arrived(Arrival("h200.allocation.inbox", 0, 7, minutes(9)))

    assert domain.time_of(book.state, claimed) == minutes(9)
    (line,) = allocations(book.when(claimed))
    assert line.allocated_at == minutes(9)


def test_recalls_and_closings_are_dated_by_the_clock() -> None:
    book = Book().given(approved(A, 10), batch("B1", 10), tick(minutes(50)))

    (recall,) = recalls(book.when(revoked(A, at=minutes(10))))
    (closing,) = [e for e in book.when(answer(recall, at=minutes(20))) if isinstance(e, OrderClosed)]

    assert (recall.requested_at, closing.closed_at) == (minutes(50), minutes(50))


# ------------------------------------------------------------------------------------------------------- expiry


def test_an_expired_approval_recalls_its_unshipped_lines_and_closes_as_expired_keeping_what_shipped() -> None:
    book = Book().given(approved(A, 100, decided_at=minutes(1)), batch("B1", 40), batch("B2", 40, ready_at=minutes(1)))
    shipped_line, unshipped_line = allocations(book.ledger)
    book.given(step_recorded(shipped_line), approved(B, 50, decided_at=minutes(2)))

    asked = book.when(expired(A, at=minutes(9)))

    assert [(r.allocation_id, r.why) for r in recalls(asked)] == [(unshipped_line.allocation_id, "approval_expired")]
    events = book.answer_recalls(asked)
    assert releases(events) == [(A, "B2", 40, "approval_expired")]
    assert grants(events) == [(B, "B2", 40)]
    assert closings(events) == [(A, "expired", 40)]
    assert book.summary().orders[0].status == "closed"


def test_an_expired_approval_without_lines_closes_at_once_and_a_repeat_decides_nothing() -> None:
    expiry = expired(A)
    book = Book().given(approved(A, 30))

    assert closings(book.when(expiry)) == [(A, "expired", 0)]
    assert book.when(expiry) == []
    assert book.when(batch("B1", 30)) == []


# ------------------------------------------------------------------------------------------- closing unfilled


def test_an_order_not_filled_in_time_leaves_the_book_on_the_tick_that_reaches_its_deadline() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(hours=1)),
        approved(A, 100, decided_at=AT),
        batch("B1", 40),
        batch("B2", 20, ready_at=minutes(1)),
    )
    shipped_line, unshipped_line = allocations(book.ledger)
    book.given(step_recorded(shipped_line), approved(B, 50, decided_at=minutes(30)))

    assert book.when(tick(minutes(59))) == []
    asked = book.when(tick(minutes(60)))

    assert [(r.allocation_id, r.why, r.requested_at) for r in recalls(asked)] == [
        (unshipped_line.allocation_id, "order_unfilled", minutes(60))
    ]
    events = book.answer_recalls(asked)
    assert releases(events) == [(A, "B2", 20, "order_unfilled")]
    assert grants(events) == [(B, "B2", 20)]
    assert closings(events) == [(A, "unfilled", 40)]


def test_an_unfilled_order_with_nothing_to_recall_closes_on_the_tick() -> None:
    book = Book().given(policy("pro_rata", close_unfilled_after=timedelta(minutes=10)), approved(A, 10))

    events = book.when(tick(minutes(15)))

    assert closings(events) == [(A, "unfilled", 0)]
    assert [e.closed_at for e in events if isinstance(e, OrderClosed)] == [minutes(15)]
    assert book.when(tick(minutes(16))) == []
    assert book.when(batch("B1", 10)) == []


def test_only_orders_still_unfilled_are_closed() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        approved(A, 10, decided_at=AT),
        approved(B, 10, decided_at=minutes(1)),
        batch("B1", 10),
    )

    assert closings(book.when(tick(minutes(15)))) == [(B, "unfilled", 0)]


def test_an_order_that_is_owed_chips_again_after_its_deadline_closes_on_the_next_tick_not_on_a_repeat() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        approved(A, 10),
        batch("B1", 10),
    )
    old_tick = tick(minutes(15))
    assert book.when(old_tick) == []  # filled in time
    (line,) = allocations(book.ledger)
    # Suspended, then its only line is lost at sea: the order is owed chips again, and takes none while suspended.
    book.given(step_recorded(line), suspended(A), delivery_failed(line, at=minutes(16)))

    assert book.when(old_tick) == []  # a repeat decides nothing, even what is due now
    assert book.when(tick(minutes(15))) == []  # nor does a copy of it
    assert closings(book.when(tick(minutes(17)))) == [(A, "unfilled", 0)]


def test_orders_wait_forever_once_a_rule_without_close_unfilled_after_replaces_one_with_it() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        approved(A, 10, decided_at=AT),
        approved(B, 10, decided_at=minutes(20)),
    )
    assert closings(book.when(tick(minutes(15)))) == [(A, "unfilled", 0)]
    book.given(policy("first_approved_first_served", revision=3, at=minutes(16)))

    assert book.when(tick(AT + timedelta(days=3650))) == []


def test_an_approval_not_admitted_yet_is_not_closed_unfilled() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        passed(minutes(0)),
        approved(A, 10, decided_at=minutes(1)),
    )

    assert book.when(tick(minutes(30))) == []
    book.given(passed(minutes(31)))  # admitted now, with no chips to take

    assert closings(book.when(tick(minutes(32)))) == [(A, "unfilled", 0)]


def test_a_cancelled_order_is_not_also_closed_unfilled() -> None:
    book = Book().given(
        policy("first_approved_first_served", close_unfilled_after=timedelta(minutes=10)),
        approved(A, 10),
        batch("B1", 5),
        approved(B, 10),
    )
    (recall,) = recalls(book.when(cancelled(A, at=minutes(1))))

    assert closings(book.when(tick(minutes(30)))) == [(B, "unfilled", 0)]
    assert closings(book.when(answer(recall))) == [(A, "cancelled", 0)]


# ------------------------------------------------------------------------------------------------ the pool's rule


def test_a_pool_without_a_published_rule_allocates_nothing_until_its_rule_arrives() -> None:
    book = Book(rule=None).given(approved(A, 50), approved(B, 50))

    assert book.when(batch("B1", 60)) == []
    assert book.summary().rule is None
    events = book.when(policy("pro_rata", revision=1, at=minutes(5)))

    assert grants(events) == [(A, "B1", 30), (B, "B1", 30)]
    assert {line.policy_ref for line in allocations(events)} == {PolicyRef(policy_id="allocation/h200", revision=1)}


def test_chips_recalled_in_a_pool_without_a_rule_wait_in_the_pool() -> None:
    book = Book(rule=None).given(approved(A, 10), approved(B, 10))
    book.given(policy("first_approved_first_served", revision=1, pool="other"))  # another pool's rule

    assert book.when(batch("B1", 10)) == []
    assert isinstance(book.when(cancelled(A))[0], OrderClosed)
    assert not any(isinstance(e, AllocationRecallRequested) for e in book.ledger)
    assert book.remaining_in("B1") == 10
