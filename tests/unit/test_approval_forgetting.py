"""Approval forgets the orders it is done with (issue #9): its state grows with what is open, not with history,
and nothing it decides changes for it (the differential property test in test_approval_properties.py checks any
sequence; these are the cases named)."""

from __future__ import annotations

import pickle
from typing import Any

from builders_approval import (
    denied_party_listed,
    effective_at,
    importer_authorised,
    licence_issued,
    order_cancelled,
    order_closed,
    order_id,
    order_placed,
    tranche_quota_set,
    use_rules_set,
)

from schemas.approval import ApprovalCancelled, ApprovalReleased, OrderApproved, OrderDenied
from schemas.base import Message
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


def held_records(state: ApprovalState) -> int:
    return sum(len(book.orders) for book in state.buyers.values())


def cleared(licence: int, quota: int) -> list[Envelope[Any]]:
    return [
        use_rules_set(),
        licence_issued("bytedance", licence),
        importer_authorised("bytedance"),
        tranche_quota_set("bytedance", quota),
    ]


def test_orders_delivered_and_closed_leave_no_record_behind_but_are_never_decided_again() -> None:
    state = given(*cleared(licence=100_000, quota=100_000))
    for n in range(200):
        assert [type(e) for e in when(state, order_placed("bytedance", f"BD-{n}", 10, minute=n))] == [OrderApproved]
        released = when(state, order_closed("bytedance", f"BD-{n}", 10, 10, "delivered", minute=n))
        assert [type(e) for e in released] == [ApprovalReleased]
    when(state, order_placed("bytedance", "BD-open", 10, minute=300))  # the next input: the last close is forgotten

    assert held_records(state) == 1 and len(state.forgotten) == 200
    # The same order sent again under another message id (other terms): known, decided nothing.
    assert when(state, order_placed("bytedance", "BD-7", 25, minute=301)) == []
    # A cancellation of a forgotten order is not a cancellation before placing.
    assert when(state, order_cancelled("bytedance", "BD-8", minute=302)) == []
    assert order_id("bytedance", "BD-8") not in state.cancelled_unplaced
    # What shipped stays counted against the licence and the quota (domain.md), forgotten or not.
    usage = state.buyers["bytedance"].usage
    assert sum(usage.licence.values()) == sum(usage.tranche.values()) == 200 * 10 + 10


def test_a_denied_order_is_forgotten_and_a_resend_of_it_is_not_decided() -> None:
    state = given(*cleared(licence=100, quota=100), denied_party_listed("bytedance", revision=1))
    assert [type(e) for e in when(state, order_placed("bytedance", "BD-1", 5, minute=1))] == [OrderDenied]
    when(state, order_placed("bytedance", "BD-2", 5, minute=2))

    assert state.order("bytedance", order_id("bytedance", "BD-1")) is None
    assert order_id("bytedance", "BD-1") in state.forgotten
    assert when(state, order_placed("bytedance", "BD-1", 5, minute=3)) == []


def test_an_order_cancelled_in_the_step_that_approves_it_is_kept_until_the_book_closes_it() -> None:
    # The importer's authorisation falls due at minute 60; the cancellation arriving at 61 moves the clock there, so
    # one step approves the held order (what fell due) and cancels it (the input). evolve folds the input first: the
    # order looks done with (cancelled, no approval) until the step's own approval folds. It must not be forgotten:
    # its licence and quota wait for the order book's close.
    state = given(
        use_rules_set(),
        licence_issued("bytedance", 100),
        tranche_quota_set("bytedance", 100),
        effective_at(importer_authorised("bytedance"), 60),
        order_placed("bytedance", "BD-1", 100, minute=1),
    )
    assert [type(e) for e in when(state, order_cancelled("bytedance", "BD-1", minute=61))] == [
        OrderApproved,
        ApprovalCancelled,
    ]
    assert [type(e) for e in when(state, order_placed("bytedance", "BD-2", 100, minute=62))] != [OrderApproved]
    assert state.order("bytedance", order_id("bytedance", "BD-1")) is not None, "forgotten while holding quota"

    released = when(state, order_closed("bytedance", "BD-1", 100, 0, "cancelled", minute=63))
    assert type(released[0]) is ApprovalReleased
    assert OrderApproved in [type(e) for e in released], "BD-2, waiting for the release, was not approved"


def test_a_snapshot_of_a_partition_with_long_history_holds_what_is_open() -> None:
    state = given(*cleared(licence=1_000_000, quota=1_000_000))
    for n in range(2_000):
        when(state, order_placed("bytedance", f"BD-{n}", 10, minute=n))
        when(state, order_closed("bytedance", f"BD-{n}", 10, 10, "delivered", minute=n))
    size = len(pickle.dumps(state, protocol=5))
    # 8,002 envelope ids (inputs and its own events) and 2,000 order ids at 16 bytes, the policies: no order record.
    assert size < 10_002 * 16 + 20_000, size
