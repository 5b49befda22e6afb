"""Chips are handed out only as of approval's frontier (docs/time.md): the earliest (lane, source) marker, before
which approval has written everything it decided, the ends of approvals included. Every ChipsAllocated is dated
min(now, frontier); a batch ready, or an approval decided, after that time waits for a marker or a tick that
passes it."""

from __future__ import annotations

from datetime import datetime, timedelta

from builders_allocation import (
    AT,
    Book,
    all_passed,
    allocations,
    approved,
    batch,
    closings,
    expired,
    grants,
    order_ids,
    passed,
    recalls,
    revoked,
    tick,
)

from schemas.clock import ApprovalsPassed
from schemas.envelope import Envelope

A, B = order_ids(2, seed="frontier")


def hours(n: float) -> datetime:
    return AT + timedelta(hours=n)


def marker(
    at: datetime, *, source: int = 0, sources: int = 1, learned: datetime | None = None
) -> Envelope[ApprovalsPassed]:
    return passed(at, source=source, sources=sources, learned=learned)


def test_no_chips_go_to_an_approval_whose_expiry_was_decided_before_the_batch_but_copied_after_it() -> None:
    # Seed 90: A's licence ends at 09:00 (approval expires it then and writes that ahead of its marker), but the
    # copy of the expiry reaches the book after a batch that arrived at 19:00. The markers still say 08:00.
    book = Book().given(marker(hours(-1)), approved(A, 10, decided_at=hours(-1.5)))

    assert book.when(batch("B1", 10, ready_at=hours(10), at=hours(10))) == []  # ready after the frontier: waits
    events = book.when(expired(A, at=hours(10.1)))
    assert closings(events) == [(A, "expired", 0)]
    assert book.when(marker(hours(10.2), learned=hours(10.2))) == []

    assert book.allocated_to(A) == 0
    assert book.remaining_in("B1") == 10


def test_chips_handed_out_before_the_expiry_arrives_are_dated_at_the_frontier_and_recalled() -> None:
    book = Book().given(marker(hours(-1)), approved(A, 10, decided_at=hours(-1.5)))

    [line] = allocations(book.when(batch("B1", 10, ready_at=hours(-2), at=hours(10))))
    assert line.allocated_at == hours(-1)  # as of the frontier, not the clock (19:00): before the licence ended
    assert [recall.allocation_id for recall in recalls(book.when(expired(A, at=hours(10.1))))] == [line.allocation_id]


def test_with_markers_lagging_the_hand_out_waits_then_happens_at_the_marker_that_passes_the_batch() -> None:
    book = Book().given(marker(hours(-1)), approved(A, 10, decided_at=hours(-1.5)))

    assert book.when(batch("B1", 10, ready_at=hours(1), at=hours(1))) == []
    assert book.when(marker(hours(0.5), learned=hours(1.1))) == []  # the frontier has not reached 10:00 yet
    [line] = allocations(book.when(marker(hours(1.5), learned=hours(1.6))))

    assert (line.order_id, line.quantity, line.allocated_at) == (A, 10, hours(1.5))


def test_a_batch_ready_after_the_frontier_waits_even_on_an_approval_that_would_take_it() -> None:
    book = Book().given(marker(hours(-1)), batch("B1", 10, ready_at=hours(0), at=hours(0)))

    assert book.when(approved(A, 10, decided_at=hours(-1.5))) == []  # admitted, but B1 is ready after 08:00
    assert grants(book.when(marker(hours(0)))) == [(A, "B1", 10)]


def test_no_chips_go_to_an_approval_revoked_before_the_frontier_reaches_the_batch() -> None:
    # Seed 1590: chips handed out a day after an ApprovalRevoked whose copy had not reached the book.
    book = Book().given(
        marker(hours(-1)), approved(A, 10, decided_at=hours(-1.5)), approved(B, 10, decided_at=hours(-1.2))
    )

    assert book.when(batch("B1", 10, ready_at=hours(0), at=hours(24))) == []
    book.when(revoked(A, at=hours(24.1)))  # decided at 09:30, written ahead of the marker that passes it
    assert grants(book.when(marker(hours(1), learned=hours(24.2)))) == [(B, "B1", 10)]
    assert book.allocated_to(A) == 0


def test_when_the_frontier_is_ahead_of_the_clock_a_tick_hands_out_what_became_ready() -> None:
    # Approval has seen later ticks than this partition: the markers are ahead of its clock, so chips are dated at
    # the clock, and a batch ready after it waits for the tick that passes its ready_at.
    book = Book().given(marker(hours(3), learned=hours(0)), approved(A, 10, decided_at=hours(-0.5)))

    assert book.when(batch("B1", 10, ready_at=hours(1), at=hours(0.5))) == []
    [line] = allocations(book.when(tick(hours(1))))

    assert (line.order_id, line.allocated_at) == (A, hours(1))


def test_nothing_is_handed_out_while_a_source_is_unheard() -> None:
    book = Book().given(marker(hours(-2), source=0, sources=2), batch("B1", 10, ready_at=hours(-3)))
    book.given(approved(A, 10, decided_at=AT - timedelta(hours=5)))

    assert book.allocated_to(A) == 0  # source 1 may still carry an end of A
    assert grants(book.when(marker(hours(-2), source=1, sources=2))) == [(A, "B1", 10)]


def test_with_a_tick_every_second_and_markers_a_second_behind_chips_go_within_two_ticks() -> None:
    book = Book().given(*all_passed(hours(0)), approved(A, 10, decided_at=hours(-1)))
    ready = AT + timedelta(seconds=5)
    assert book.when(batch("B1", 10, ready_at=ready, at=ready)) == []
    given_at: list[datetime] = []
    for second in range(6, 12):
        now = AT + timedelta(seconds=second)
        book.when(tick(now))
        given_at += [
            line.allocated_at for line in allocations(book.when(marker(now - timedelta(seconds=1), learned=now)))
        ]
    assert given_at == [ready]  # at the marker that first passes the batch's ready_at, no later


def test_chips_given_back_are_not_handed_out_as_of_a_time_before_they_came_back() -> None:
    from uuid import uuid4

    from builders_allocation import Book, all_passed, allocations, approved, batch, minutes, revoked

    first, second = uuid4(), uuid4()
    book = Book().given(
        *all_passed(minutes(0)),
        approved(first, 40, decided_at=minutes(1)),
        approved(second, 40, decided_at=minutes(2)),
        batch("B1", 40, ready_at=minutes(0)),
        *all_passed(minutes(3)),
    )
    assert [line.order_id for line in allocations(book.ledger)] == [first]

    # The first approval is revoked; its line is recalled and released at minute 10, while approval's markers
    # are still at minute 3: the chips may not go to the second order as of minute 3
    asked = book.when(revoked(first, at=minutes(10)))
    released = book.answer_recalls(asked)
    assert allocations(released) == []

    # once the frontier passes the release, they do, dated then
    given = [event for marker in all_passed(minutes(11)) for event in book.when(marker)]
    assert [(line.order_id, line.quantity, line.allocated_at) for line in allocations(given)] == [
        (second, 40, minutes(11))
    ]
