"""The pool's rule in force at the time of each hand-out: a revision published ahead of its effective_at changes
nothing until the clock reaches it, and every line cites the revision in force when it was allocated."""

from __future__ import annotations

from uuid import uuid4

from builders_allocation import Book, allocations, approved, batch, minutes, policy, tick

from schemas.base import PolicyRef

A, B = uuid4(), uuid4()


def _refs(events: list) -> set[PolicyRef]:  # type: ignore[type-arg]
    return {line.policy_ref for line in allocations(events)}


def test_a_rule_effective_later_is_not_applied_before_its_time() -> None:
    book = Book().given(approved(A, 100, decided_at=minutes(1)), approved(B, 100, decided_at=minutes(2)))
    book.given(policy("pro_rata", 2, at=minutes(3), effective_at=minutes(30)))

    first = book.when(batch("B1", 60, ready_at=minutes(4), at=minutes(4)))

    # still first-approved-first-served under revision 1: A, approved first, takes the whole batch
    assert [(line.order_id, line.quantity, line.rule) for line in allocations(first)] == [
        (A, 60, "first_approved_first_served")
    ]
    assert _refs(first) == {PolicyRef(policy_id="allocation/h200", revision=1)}


def test_the_rule_comes_into_force_on_the_tick_that_reaches_its_effective_at() -> None:
    book = Book().given(approved(A, 100, decided_at=minutes(1)), approved(B, 100, decided_at=minutes(2)))
    book.given(policy("pro_rata", 2, at=minutes(3), effective_at=minutes(30)))
    book.given(tick(minutes(29)))

    book.when(tick(minutes(30)))
    after = book.when(batch("B2", 60, ready_at=minutes(31), at=minutes(31)))

    assert {line.rule for line in allocations(after)} == {"pro_rata"}
    assert _refs(after) == {PolicyRef(policy_id="allocation/h200", revision=2)}
    assert sorted(line.quantity for line in allocations(after)) == [30, 30]


def test_a_pool_whose_first_rule_takes_effect_later_allocates_from_that_moment() -> None:
    book = Book(rule=None).given(
        policy("first_approved_first_served", 1, at=minutes(0), effective_at=minutes(10)),
        approved(A, 50, decided_at=minutes(1)),
    )
    assert book.when(batch("B1", 40, ready_at=minutes(2), at=minutes(2))) == []

    given = book.when(tick(minutes(10)))

    assert [(line.order_id, line.quantity, line.allocated_at) for line in allocations(given)] == [(A, 40, minutes(10))]
    assert _refs(given) == {PolicyRef(policy_id="allocation/h200", revision=1)}


def test_a_repeated_or_stale_revision_changes_nothing_while_a_newer_one_is_pending() -> None:
    book = Book().given(policy("pro_rata", 3, at=minutes(1), effective_at=minutes(30)), approved(A, 10))

    assert book.when(policy("pro_rata", 2, at=minutes(2))) == []
    assert book.when(policy("pro_rata", 3, at=minutes(3), effective_at=minutes(30))) == []
    assert book.summary().rule == "first_approved_first_served"
