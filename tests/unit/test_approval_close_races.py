"""An order cancelled or revoked while the order book closes it as fully delivered: the book sends no second close,
so approval must take the delivered close as the end of the ended order too, or its release never comes and the
buyer's next orders wait for it (awaiting_release) for ever."""

from __future__ import annotations

from typing import Any

import pytest
from builders_approval import (
    importer_authorised,
    importer_revoked,
    licence_issued,
    order_cancelled,
    order_closed,
    order_placed,
    tranche_quota_set,
    use_rules_set,
)

from schemas.approval import ApprovalCancelled, ApprovalReleased, ApprovalRevoked, Decision, OrderDenied
from schemas.envelope import Envelope
from services.approval import domain as approval
from services.approval.domain import ApprovalState
from services.common.decider import fold, step


def given(*inputs: Envelope[Any]) -> ApprovalState:
    state: ApprovalState = fold(approval, list(inputs), approval.initial_state())[0]
    return state


def when(state: ApprovalState, message: Envelope[Any]) -> list[Decision]:
    _, outputs = step(approval, state, message)
    return [output.payload for output in outputs if isinstance(output.payload, Decision)]


def cleared(licence: int = 100, quota: int = 100) -> list[Envelope[Any]]:
    return [
        use_rules_set(),
        licence_issued("bytedance", licence),
        importer_authorised("bytedance"),
        tranche_quota_set("bytedance", quota),
    ]


@pytest.mark.parametrize(
    ("ending", "ended_by", "why"),
    [
        (order_cancelled("bytedance", "BD-1", minute=1), ApprovalCancelled, "cancelled"),
        (importer_revoked("bytedance", revision=2, minute=1), ApprovalRevoked, "revoked"),
    ],
)
def test_an_order_ended_while_the_book_closes_it_as_delivered_is_released_by_that_close(
    ending: Envelope[Any], ended_by: type[Decision], why: str
) -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 100))
    assert [type(e) for e in when(state, ending)] == [ended_by]

    decided = when(state, order_closed("bytedance", "BD-1", 100, 100, "delivered", minute=2))

    (released,) = decided
    assert isinstance(released, ApprovalReleased)
    assert (released.why, released.quantity) == (why, 0)
    assert not state.order("bytedance", released.order_id).awaiting_close  # type: ignore[union-attr]


def test_after_that_close_a_new_order_is_decided_not_held_for_a_release() -> None:
    state = given(
        *cleared(),
        order_placed("bytedance", "BD-1", 100),
        order_cancelled("bytedance", "BD-1", minute=1),
        order_closed("bytedance", "BD-1", 100, 100, "delivered", minute=2),
    )

    decided = when(state, order_placed("bytedance", "BD-2", 100, minute=3))

    # the 100 chips delivered stay counted against the licence and quota: nothing is left, and nothing is pending
    assert [type(e) for e in decided] == [OrderDenied]


def test_a_delivered_close_of_an_open_approval_is_still_released_as_closed() -> None:
    state = given(*cleared(), order_placed("bytedance", "BD-1", 100))

    (released,) = when(state, order_closed("bytedance", "BD-1", 100, 100, "delivered", minute=2))

    assert isinstance(released, ApprovalReleased) and released.why == "closed"
    assert [type(e) for e in when(state, order_placed("bytedance", "BD-2", 10, minute=3))] == [OrderDenied]
