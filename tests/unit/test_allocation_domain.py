"""The order book, as specifications: given these inputs, when this one arrives, then these ledger lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from builders_allocation import (
    AT,
    POOL,
    Book,
    allocations,
    answer,
    approved,
    batch,
    cancelled,
    closings,
    delivery_failed,
    denied,
    grants,
    held,
    minutes,
    order_ids,
    policy,
    recalls,
    reinstated,
    released,
    releases,
    revoked,
    step_recorded,
    suspended,
)

from schemas.allocation import AllocationReinstated, AllocationReleased, ChipsAllocated
from schemas.base import PolicyRef
from schemas.envelope import Envelope, derive_id
from services.allocation.domain.rules import Claim, Stock, first_approved_first_served, largest_remainder_shares

A, B, C = order_ids(3)  # str(A) < str(B) < str(C)


# --------------------------------------------------------------------------------- first approved, first served


def test_first_approved_first_served_fills_the_earliest_approval_first() -> None:
    book = Book().given(approved(B, 100, decided_at=minutes(2)), approved(A, 100, decided_at=minutes(5)))

    events = book.when(batch("B1", 150))

    assert grants(events) == [(B, "B1", 100), (A, "B1", 50)]


def test_first_approved_first_served_breaks_a_tie_in_approval_time_by_order_id() -> None:
    book = Book().given(approved(C, 100, decided_at=AT), approved(A, 100, decided_at=AT))

    events = book.when(batch("B1", 120))

    assert grants(events) == [(A, "B1", 100), (C, "B1", 20)]


def test_an_approval_takes_chips_left_in_the_pool_at_once() -> None:
    book = Book().given(batch("B1", 80), approved(A, 50))

    events = book.when(approved(B, 50))

    assert grants(events) == [(B, "B1", 30)]


def test_a_line_is_never_dated_before_its_batch_was_ready_or_its_order_approved() -> None:
    # The batch is announced before it is ready; an approval from before that moment finds it in the book.
    book = Book().given(batch("B1", 80, ready_at=minutes(30), at=minutes(0)))

    [line] = book.when(approved(A, 50, decided_at=minutes(10)))

    assert isinstance(line, ChipsAllocated) and line.allocated_at == minutes(30)


# ------------------------------------------------------------------------------------------------------ pro rata


def test_pro_rata_shares_scarce_chips_by_largest_remainder() -> None:
    # 100 chips for claims of 100/200/300 (600 in all): exact shares 16.67, 33.33 and 50.
    # Floors 16 + 33 + 50 = 99; the one chip left goes to the largest remainder, 0.67: the order of 100.
    book = Book().given(policy("pro_rata"), approved(A, 100), approved(B, 200), approved(C, 300))

    events = book.when(batch("B1", 100))

    assert grants(events) == [(A, "B1", 17), (B, "B1", 33), (C, "B1", 50)]
    assert {e.rule for e in allocations(events)} == {"pro_rata"}


def test_pro_rata_gives_equal_remainders_to_the_smaller_order_ids() -> None:
    # 2 chips for three claims of 1: each exact share is 0.67, floors are 0; A and B come first by id.
    book = Book().given(policy("pro_rata"), approved(C, 1), approved(B, 1), approved(A, 1))

    events = book.when(batch("B1", 2))

    assert grants(events) == [(A, "B1", 1), (B, "B1", 1)]


def test_pro_rata_fills_every_claim_when_supply_is_enough() -> None:
    book = Book().given(policy("pro_rata"), approved(A, 30), approved(B, 50))

    events = book.when(batch("B1", 100))

    assert grants(events) == [(A, "B1", 30), (B, "B1", 50)]
    assert book.remaining_in("B1") == 20


def test_pro_rata_shares_of_recalled_chips_are_drawn_by_order_id() -> None:
    # X holds 70 of B-late and 50 of B-early; its revocation recalls both lines, and each answer frees its chips
    # for two claims of 100: half each, A (the smaller id) drawing first.
    x = derive_id("test", "order-x")
    book = Book().given(
        approved(x, 120),
        batch("B-late", 70, ready_at=minutes(10)),
        batch("B-early", 50, ready_at=minutes(1)),
        approved(B, 100),
        approved(A, 100),
        policy("pro_rata"),
    )

    late, early = recalls(book.when(revoked(x)))
    first = book.when(answer(late))
    second = book.when(answer(early))

    assert releases(first) == [(x, "B-late", 70, "approval_revoked")]
    assert grants(first) == [(A, "B-late", 35), (B, "B-late", 35)]
    assert releases(second) == [(x, "B-early", 50, "approval_revoked")]
    assert grants(second) == [(A, "B-early", 25), (B, "B-early", 25)]
    assert closings(second) == [(x, "revoked", 0)]


def test_largest_remainder_shares_sum_to_the_chips_available() -> None:
    shares = largest_remainder_shares(100, {A: 100, B: 200, C: 300})

    assert shares == {A: 17, B: 33, C: 50}


# ------------------------------------------------------------------------------------------ batches and orders


def test_an_order_is_filled_from_several_batches_in_supply_order() -> None:
    book = Book().given(
        batch("B-2", 30, ready_at=minutes(1)),
        batch("B-1", 30, ready_at=minutes(2)),
        batch("B-0", 30, ready_at=minutes(2)),
    )

    events = book.when(approved(A, 80))

    assert grants(events) == [(A, "B-2", 30), (A, "B-0", 30), (A, "B-1", 20)]
    assert book.remaining_in("B-1") == 10


def test_an_order_stays_partly_filled_until_more_batches_arrive() -> None:
    book = Book().given(approved(A, 100), batch("B1", 30))
    assert book.summary().orders[0].unfilled == 70

    events = book.when(batch("B2", 50))

    assert grants(events) == [(A, "B2", 50)]
    assert book.summary().orders[0].unfilled == 20


def test_a_batch_is_split_across_orders() -> None:
    book = Book().given(approved(A, 60, decided_at=minutes(1)), approved(B, 60, decided_at=minutes(2)))

    events = book.when(batch("B1", 100))

    assert grants(events) == [(A, "B1", 60), (B, "B1", 40)]
    assert book.remaining_in("B1") == 0


def test_a_ledger_line_names_its_rule_policy_cause_and_time() -> None:
    book = Book().given(approved(A, 10))
    arrival = batch("B1", 10, at=minutes(7))

    (line,) = book.when(arrival)

    assert isinstance(line, ChipsAllocated)
    assert line.allocation_id == derive_id("allocation", "h200", "B1", A, arrival.id)
    assert (line.rule, line.policy_ref) == (
        "first_approved_first_served",
        PolicyRef(policy_id="allocation/h200", revision=1),
    )
    assert (line.cause_event_id, line.allocated_at, line.buyer_id) == (arrival.id, minutes(7), "bytedance")


def test_a_new_allocation_policy_applies_to_later_allocations_and_is_cited() -> None:
    book = Book().given(approved(A, 100), approved(B, 100))

    assert book.when(policy("pro_rata", revision=3)) == []
    (a_line, b_line) = allocations(book.when(batch("B1", 50)))

    assert (a_line.quantity, b_line.quantity) == (25, 25)
    assert a_line.policy_ref == PolicyRef(policy_id="allocation/h200", revision=3)


def test_an_allocation_policy_whose_revision_does_not_grow_is_ignored() -> None:
    book = Book().given(policy("pro_rata", revision=2), approved(A, 100, decided_at=AT), approved(B, 100))

    assert book.when(policy("first_approved_first_served", revision=2)) == []
    assert book.when(policy("first_approved_first_served", revision=1)) == []
    assert grants(book.when(batch("B1", 50))) == [(A, "B1", 25), (B, "B1", 25)]


def test_denied_and_held_orders_never_reach_the_book() -> None:
    book = Book().given(batch("B1", 50))

    assert book.when(denied(A)) == []
    assert book.when(held(B)) == []
    assert book.summary().orders == ()


def test_pools_share_nothing() -> None:
    book = Book("h200-east", "h200-west").given(approved(A, 10, pool="h200-east"))

    assert book.when(batch("B1", 10, pool="h200-west")) == []
    assert grants(book.when(approved(B, 10, pool="h200-west"))) == [(B, "B1", 10)]
    assert book.summary("h200-east").orders[0].unfilled == 10


# ------------------------------------------------------------------------------------ chips coming back to the pool


def test_revocation_recalls_unshipped_lines_and_frees_their_chips_only_when_fulfilment_confirms() -> None:
    book = Book().given(approved(A, 100, decided_at=minutes(1)), batch("B1", 40), batch("B2", 40, ready_at=minutes(1)))
    shipped_line, unshipped_line = allocations(book.ledger)
    book.given(step_recorded(shipped_line, "shipped"), approved(B, 50, decided_at=minutes(2)))

    asked = book.when(revoked(A, at=minutes(9)))

    assert [(r.allocation_id, r.why) for r in recalls(asked)] == [(unshipped_line.allocation_id, "approval_revoked")]
    assert releases(asked) == [] and grants(asked) == []  # nothing moves before fulfilment answers
    confirmation = answer(recalls(asked)[0], at=minutes(10))
    events = book.when(confirmation)

    assert releases(events) == [(A, "B2", 40, "approval_revoked")]
    assert grants(events) == [(B, "B2", 40)]
    assert events[0] == AllocationReleased(
        allocation_id=unshipped_line.allocation_id,
        pool_id="h200",
        order_id=A,
        buyer_id="bytedance",
        batch_id="B2",
        quantity=40,
        why="approval_revoked",
        cause_event_id=confirmation.id,
        released_at=minutes(10),
    )
    assert closings(events) == [(A, "revoked", 40)]  # the shipped chips stay with the order
    assert book.allocated_to(A) == 40


def test_a_recalled_line_that_had_already_shipped_keeps_its_chips() -> None:
    # Fulfilment recorded the shipment before the recall reached it: the book learns it from the answer.
    book = Book().given(approved(A, 40, decided_at=minutes(1)), batch("B1", 40), approved(B, 40, decided_at=minutes(2)))

    events = book.answer_recalls(book.when(revoked(A)), "already_shipped")

    assert releases(events) == [] and grants(events) == []
    assert closings(events) == [(A, "revoked", 40)]
    assert book.allocated_to(A) == 40 and book.allocated_to(B) == 0


def test_a_delivered_allocation_is_not_released_by_revocation() -> None:
    book = Book().given(approved(A, 10), batch("B1", 10))
    book.given(step_recorded(allocations(book.ledger)[0], "delivered"))

    assert closings(book.ledger) == [(A, "delivered", 10)]  # fully delivered: the order closed by itself
    assert book.when(revoked(A)) == []


def test_a_cancelled_order_releases_its_unshipped_allocations_once_recalled() -> None:
    book = Book().given(approved(A, 30, decided_at=minutes(1)), approved(B, 30, decided_at=minutes(2)))
    book.given(batch("B1", 40))

    events = book.answer_recalls(book.when(cancelled(A)))

    assert releases(events) == [(A, "B1", 30, "order_cancelled")]
    assert grants(events) == [(B, "B1", 20)]
    assert closings(events) == [(A, "cancelled", 0)]


def test_a_repeated_recall_answer_moves_nothing_the_second_time() -> None:
    book = Book().given(approved(A, 30, decided_at=minutes(1)), batch("B1", 30), approved(B, 30, decided_at=minutes(2)))
    (recall,) = recalls(book.when(revoked(A)))
    confirmation = answer(recall)
    book.given(confirmation)
    before = book.summary()

    assert book.when(confirmation) == []
    assert book.when(answer(recall)) == []  # the same answer under another id: the line is no longer recalled
    after = book.summary()
    # A closed with nothing kept is done with: the book drops it (its id stays known); nothing else moved.
    assert [o.order_id for o in after.orders] == [o.order_id for o in before.orders if o.order_id != A]
    assert book.state.pools[POOL].known(A)
    assert (after.orders, after.batches, after.allocations) == (
        tuple(o for o in before.orders if o.order_id != A),
        before.batches,
        before.allocations,
    )


def test_an_order_leaving_with_nothing_to_recall_closes_at_once() -> None:
    book = Book().given(approved(A, 30))

    assert closings(book.when(cancelled(A))) == [(A, "cancelled", 0)]


def test_quota_released_after_a_revocation_changes_nothing_more() -> None:
    book = Book().given(approved(A, 30), batch("B1", 40))
    book.answer_recalls(book.when(revoked(A)))

    assert book.when(released(A, "revoked")) == []


def test_a_closed_order_keeps_its_chips_and_takes_no_more() -> None:
    book = Book().given(approved(A, 30), batch("B1", 10))
    book.answer_recalls(book.when(revoked(A)), "already_shipped")

    assert book.when(batch("B2", 10)) == []
    assert book.allocated_to(A) == 10


def test_a_failed_delivery_returns_chips_to_the_batch_and_the_order() -> None:
    book = Book().given(approved(A, 100), batch("B1", 60))
    (line,) = allocations(book.ledger)
    failure = delivery_failed(line)

    events = book.when(failure)

    assert releases(events) == [(A, "B1", 60, "delivery_failed")]
    assert grants(events) == [(A, "B1", 60)]  # still approved: the order takes them again, as a new line
    assert allocations(events)[0].allocation_id == derive_id("allocation", "h200", "B1", A, failure.id)


def test_chips_returned_to_an_earlier_batch_are_drawn_before_a_later_batch() -> None:
    book = Book().given(approved(A, 50), batch("Z-early", 50, ready_at=minutes(1)))
    (line,) = allocations(book.ledger)
    book.given(batch("A-late", 30, ready_at=minutes(2)))

    events = book.when(delivery_failed(line))

    assert grants(events) == [(A, "Z-early", 50)]
    assert book.remaining_in("A-late") == 30


def test_chips_of_a_failed_delivery_go_to_another_order_when_the_first_has_left() -> None:
    book = Book().given(approved(A, 60, decided_at=minutes(1)), batch("B1", 60), approved(B, 60, decided_at=minutes(2)))
    (line,) = allocations(book.ledger)
    book.given(step_recorded(line, "shipped"), revoked(A))
    assert closings(book.ledger) == [(A, "revoked", 60)]
    # Closed, but its shipped line may still fail: A is not done with, so the next input does not drop it.
    book.given(revoked(A))

    events = book.when(delivery_failed(line))

    assert releases(events) == [(A, "B1", 60, "delivery_failed")]
    assert grants(events) == [(B, "B1", 60)]


def test_a_suspended_order_keeps_its_chips_and_gets_no_new_ones() -> None:
    book = Book().given(approved(A, 100, decided_at=minutes(1)), approved(B, 100, decided_at=minutes(2)))
    book.given(batch("B1", 30))

    (line,) = allocations(book.ledger)
    told = book.when(suspended(A))
    assert [(type(e).__name__, e.allocation_id) for e in told] == [("AllocationSuspended", line.allocation_id)]
    assert grants(book.when(batch("B2", 50))) == [(B, "B2", 50)]
    assert book.allocated_to(A) == 30


def test_a_reinstated_order_takes_waiting_chips_at_once() -> None:
    book = Book().given(approved(A, 100), suspended(A), batch("B1", 30))

    events = book.when(reinstated(A))

    assert grants(events) == [(A, "B1", 30)]
    assert not any(isinstance(e, AllocationReinstated) for e in events)  # it had no line to resume


# -------------------------------------------------------------------------------------------------- idempotency

INPUTS: dict[str, Callable[[], list[Envelope[Any]]]] = {
    "approval": lambda: [approved(A, 100)],
    "batch": lambda: [batch("B1", 50)],
    "allocation policy": lambda: [approved(A, 100), policy("pro_rata")],
    "suspension": lambda: [approved(A, 100), suspended(A)],
    "reinstatement": lambda: [approved(A, 100), suspended(A), reinstated(A)],
    "revocation": lambda: [approved(A, 100), batch("B1", 50), revoked(A)],
    "cancellation": lambda: [approved(A, 100), batch("B1", 50), cancelled(A)],
    "closing": lambda: [approved(A, 100), released(A, "closed")],
}


@pytest.mark.parametrize("kind", INPUTS)
def test_the_same_input_twice_decides_nothing_the_second_time(kind: str) -> None:
    *given, last = INPUTS[kind]()
    book = Book().given(approved(B, 10), batch("B0", 5), *given, last)
    before = book.summary()

    assert book.when(last) == []
    assert book.summary() == before


def test_the_same_fulfilment_reports_twice_decide_nothing_the_second_time() -> None:
    book = Book().given(approved(A, 10), batch("B1", 10))
    line = allocations(book.ledger)[0]
    shipped, failed = step_recorded(line), delivery_failed(line)
    book.given(shipped, failed)

    assert book.when(shipped) == []
    assert book.when(failed) == []


def test_a_second_approval_of_an_order_already_in_the_book_is_ignored() -> None:
    book = Book().given(approved(A, 10), batch("B1", 50))

    assert book.when(approved(A, 40)) == []
    assert book.allocated_to(A) == 10


def test_a_batch_announced_twice_adds_no_chips() -> None:
    book = Book().given(batch("B1", 10), approved(A, 50))

    assert book.when(batch("B1", 10)) == []
    assert book.remaining_in("B1") == 0


def test_a_failure_of_an_allocation_already_released_is_ignored() -> None:
    book = Book().given(approved(A, 10), batch("B1", 10))
    line = allocations(book.ledger)[0]
    book.given(delivery_failed(line))

    assert book.when(delivery_failed(line)) == []


def test_a_redelivered_suspension_does_not_undo_a_later_reinstatement() -> None:
    suspension = suspended(A)
    book = Book().given(approved(A, 100), suspension, reinstated(A))

    assert book.when(suspension) == []
    assert grants(book.when(batch("B1", 10))) == [(A, "B1", 10)]


def test_a_redelivered_reinstatement_does_not_undo_a_later_suspension() -> None:
    reinstatement = reinstated(A)
    book = Book().given(approved(A, 100), suspended(A), reinstatement, suspended(A), batch("B1", 10))

    assert book.when(reinstatement) == []
    assert book.allocated_to(A) == 0


def test_a_reinstatement_of_an_order_not_suspended_is_ignored() -> None:
    book = Book().given(approved(A, 100), revoked(A), batch("B1", 10))

    assert book.when(reinstated(A)) == []


# ----------------------------------------------------------------------------------------------- rules and queries


def test_first_approved_first_served_rule_stops_when_supply_runs_out() -> None:
    claims = [Claim(B, "tencent", minutes(2), 50), Claim(A, "alibaba", minutes(1), 50), Claim(C, "x", minutes(3), 9)]
    stock = [Stock("S2", minutes(1), 30), Stock("S1", minutes(1), 40)]

    granted = [(g.order_id, g.batch_id, g.quantity) for g in first_approved_first_served(claims, stock)]

    assert granted == [(A, "S1", 40), (A, "S2", 10), (B, "S2", 20)]


def test_book_summary_shows_each_order_and_batch_position() -> None:
    book = Book().given(approved(A, 100), approved(B, 20), suspended(B), batch("B1", 30), policy("pro_rata"))

    summary = book.summary()

    assert [(o.order_id, o.status, o.allocated, o.unfilled) for o in summary.orders] == [
        (A, "approved", 30, 70),
        (B, "suspended", 0, 20),
    ]
    assert [(b.batch_id, b.allocated, b.remaining) for b in summary.batches] == [("B1", 30, 0)]
    assert (summary.rule, summary.eligible_demand, summary.remaining_supply) == ("pro_rata", 70, 0)
    assert [line.quantity for line in summary.allocations] == [30]
