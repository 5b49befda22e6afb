"""The approval core, as specifications: given inputs on h200.approval.inbox / when one more / then decisions."""

from __future__ import annotations

from typing import Any

from builders_approval import (
    ARTICLE_QUOTAS,
    T0,
    YEAR,
    article_policies,
    at,
    denied_party_delisted,
    denied_party_listed,
    documents_added,
    importer_authorised,
    importer_reinstated,
    importer_revoked,
    importer_suspended,
    licence_issued,
    licence_revoked,
    order_cancelled,
    order_closed,
    order_id,
    order_placed,
    tranche_quota_set,
    use_rules_set,
)

from schemas.approval import (
    ApprovalCancelled,
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    Decision,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.base import PolicyRef
from schemas.envelope import Envelope
from services.approval import domain as approval
from services.approval.domain import ApprovalState
from services.common.decider import fold, step


def given(*inputs: Envelope[Any]) -> ApprovalState:
    state: ApprovalState = fold(approval, list(inputs), approval.initial_state())[0]
    return state


def when(state: ApprovalState, message: Envelope[Any]) -> list[Decision]:
    _, outputs = step(approval, state, message)
    decided = [output.payload for output in outputs if isinstance(output.payload, Decision)]
    assert len(decided) == len(outputs), "approval decided something that is not a decision"
    return decided


def reason_code(event: Decision) -> str:
    assert isinstance(event, ApprovalSuspended | ApprovalReinstated | ApprovalRevoked)
    return event.reason.code


def ready(buyer: str = "bytedance", licence: int = 150_000, quota: int = 150_000) -> list[Envelope[Any]]:
    """One buyer cleared by both governments, and China's use rules."""
    return [
        use_rules_set(),
        licence_issued(buyer, licence),
        importer_authorised(buyer),
        tranche_quota_set(buyer, quota),
    ]


def codes(event: Decision) -> list[str]:
    assert isinstance(event, OrderDenied | OrderHeld)
    return [reason.code for reason in event.reasons]


def only(events: list[Decision], kind: type[Decision]) -> Any:
    assert [type(event) for event in events] == [kind], events
    return events[0]


# ------------------------------------------------------------------------------------------------ approvals


def test_an_order_within_licence_and_quota_is_approved_in_full() -> None:
    approved = only(when(given(*ready()), order_placed("bytedance", "BD-1", 100_000)), OrderApproved)
    assert approved.approved_quantity == approved.requested_quantity == 100_000
    assert (approved.licence_id, approved.tranche_id, approved.conditions) == ("BIS-H200-BYTEDANCE", "T1", ())


def test_an_order_above_what_is_left_on_the_licence_is_approved_for_the_rest_with_a_condition() -> None:
    state = given(*ready(licence=120_000), order_placed("bytedance", "BD-1", 100_000))
    approved = only(when(state, order_placed("bytedance", "BD-2", 50_000)), OrderApproved)
    assert approved.approved_quantity == 20_000
    assert [condition.code for condition in approved.conditions] == ["reduced_to_licence"]


def test_an_order_above_what_is_left_of_the_quota_is_reduced_to_the_quota() -> None:
    approved = only(when(given(*ready(quota=30_000)), order_placed("bytedance", "BD-1", 50_000)), OrderApproved)
    assert approved.approved_quantity == 30_000
    assert [condition.code for condition in approved.conditions] == ["reduced_to_quota"]


def test_an_order_after_the_quota_is_used_up_is_denied_quota_exhausted() -> None:
    state = given(*ready(quota=100_000), order_placed("bytedance", "BD-1", 100_000))
    assert codes(only(when(state, order_placed("bytedance", "BD-2", 10)), OrderDenied)) == ["quota_exhausted"]


def test_an_order_after_the_licence_is_used_up_is_denied_licence_exhausted() -> None:
    state = given(*ready(licence=100_000), order_placed("bytedance", "BD-1", 100_000))
    assert codes(only(when(state, order_placed("bytedance", "BD-2", 10)), OrderDenied)) == ["licence_exhausted"]


def test_the_licence_expiring_first_is_drawn_on_first() -> None:
    late = licence_issued("bytedance", 50_000, licence="BIS-LATE", valid_until=T0 + 2 * YEAR)
    state = given(*ready(), late)
    assert only(when(state, order_placed("bytedance", "BD-1", 10)), OrderApproved).licence_id == "BIS-H200-BYTEDANCE"


def test_the_article_buyers_are_approved_for_more_than_400000_chips_in_total() -> None:
    state = given(*article_policies())
    total = 0
    for buyer, quota in ARTICLE_QUOTAS.items():
        total += only(when(state, order_placed(buyer, f"{buyer}-1", quota)), OrderApproved).approved_quantity
    assert total == sum(ARTICLE_QUOTAS.values()) > 400_000


# ----------------------------------------------------------------------------------------- the US export gate


def test_a_denied_party_is_denied_with_every_failed_check_listed() -> None:
    state = given(*ready(), denied_party_listed("bytedance", revision=1))
    denied = only(when(state, order_placed("bytedance", "BD-1", 10, documents=())), OrderDenied)
    assert codes(denied) == ["denied_party", "document_missing"]
    assert [reason.gate for reason in denied.reasons] == ["us_export", "cn_import"]


def test_a_buyer_without_any_export_licence_is_held() -> None:
    state = given(use_rules_set(), importer_authorised("alibaba"), tranche_quota_set("alibaba", 10))
    assert codes(only(when(state, order_placed("alibaba", "AL-1", 10)), OrderHeld)) == ["no_export_licence"]


def test_a_licence_not_yet_valid_holds_the_order() -> None:
    future = licence_issued("alibaba", 10, valid_from=T0 + YEAR, valid_until=T0 + 2 * YEAR)
    state = given(use_rules_set(), future, importer_authorised("alibaba"), tranche_quota_set("alibaba", 10))
    assert codes(only(when(state, order_placed("alibaba", "AL-1", 10)), OrderHeld)) == ["licence_not_in_window"]


def test_an_expired_licence_holds_the_order() -> None:
    expired = licence_issued("alibaba", 10, valid_from=T0 - YEAR, valid_until=T0)
    state = given(use_rules_set(), expired, importer_authorised("alibaba"), tranche_quota_set("alibaba", 10))
    assert codes(only(when(state, order_placed("alibaba", "AL-1", 10)), OrderHeld)) == ["licence_not_in_window"]


def test_a_buyer_whose_licences_are_all_revoked_is_denied() -> None:
    state = given(*ready(), licence_revoked("bytedance"))
    assert codes(only(when(state, order_placed("bytedance", "BD-1", 10)), OrderDenied)) == ["licence_revoked"]


def test_a_delisted_buyer_is_approved_again() -> None:
    state = given(
        *ready(), denied_party_listed("bytedance", revision=1), denied_party_delisted("bytedance", revision=2)
    )
    only(when(state, order_placed("bytedance", "BD-1", 10)), OrderApproved)


# ---------------------------------------------------------------------------------------- the China import gate


def test_a_suspended_importer_s_orders_are_held() -> None:
    state = given(*ready(), importer_suspended("bytedance", revision=2))
    assert codes(only(when(state, order_placed("bytedance", "BD-1", 10)), OrderHeld)) == ["importer_suspended"]


def test_a_revoked_importer_s_orders_are_denied() -> None:
    state = given(*ready(), importer_revoked("bytedance", revision=2))
    assert codes(only(when(state, order_placed("bytedance", "BD-1", 10)), OrderDenied)) == ["importer_revoked"]


def test_an_order_outside_every_tranche_is_held() -> None:
    closed = tranche_quota_set("tencent", 10, opens_at=T0 - YEAR, closes_at=T0)
    state = given(use_rules_set(), licence_issued("tencent", 10), importer_authorised("tencent"), closed)
    assert codes(only(when(state, order_placed("tencent", "TC-1", 10)), OrderHeld)) == ["no_open_tranche"]


def test_uses_not_deemed_necessary_are_denied_by_name() -> None:
    uses = {"ai_research": 50, "crypto_mining": 30, "gaming": 20}
    denied = only(when(given(*ready()), order_placed("bytedance", "BD-1", 10, uses=uses)), OrderDenied)
    assert codes(denied) == ["use_not_necessary"]
    assert "crypto_mining, gaming" in denied.reasons[0].message


def test_an_inference_share_above_the_maximum_is_denied() -> None:
    uses = {"ai_research": 40, "inference": 60}
    denied = only(when(given(*ready()), order_placed("bytedance", "BD-1", 10, uses=uses)), OrderDenied)
    assert codes(denied) == ["inference_share_too_high"]


def test_a_domestic_commitment_below_the_minimum_is_denied() -> None:
    state = given(*ready())
    assert codes(only(when(state, order_placed("bytedance", "BD-1", 1000, domestic=199)), OrderDenied)) == [
        "domestic_commitment_too_low"
    ]


def test_a_domestic_commitment_exactly_at_the_minimum_is_enough() -> None:
    only(when(given(*ready()), order_placed("bytedance", "BD-1", 1000, domestic=200)), OrderApproved)


def test_missing_documents_hold_the_order_and_filing_them_approves_it() -> None:
    rules = use_rules_set(revision=2, documents=("end_use_statement", "training_plan"))
    state = given(*ready(), rules)
    held = only(when(state, order_placed("bytedance", "BD-1", 10)), OrderHeld)
    assert codes(held) == ["document_missing"]
    assert "training_plan" in held.reasons[0].message
    only(when(state, documents_added("bytedance", "BD-1", ("training_plan",), minute=5)), OrderApproved)


def test_filing_documents_that_do_not_lift_the_hold_decides_nothing_new() -> None:
    rules = use_rules_set(revision=2, documents=("end_use_statement", "training_plan"))
    state = given(*ready(), rules, order_placed("bytedance", "BD-1", 10))
    assert when(state, documents_added("bytedance", "BD-1", ("annual_report",), minute=5)) == []


def test_an_order_is_held_until_china_publishes_use_rules() -> None:
    state = given(licence_issued("bytedance", 10), importer_authorised("bytedance"), tranche_quota_set("bytedance", 10))
    assert codes(only(when(state, order_placed("bytedance", "BD-1", 10)), OrderHeld)) == ["no_use_rules"]
    only(when(state, use_rules_set(minute=5)), OrderApproved)


# ------------------------------------------------------------------------------------------------ held orders


def test_an_unauthorised_buyer_is_held_then_approved_after_authorisation_and_quota() -> None:
    state = given(*article_policies())
    held = only(when(state, order_placed("baidu", "BA-1", 80_000)), OrderHeld)
    assert codes(held) == ["importer_not_authorised", "no_open_tranche"]
    held_again = only(when(state, importer_authorised("baidu", minute=60)), OrderHeld)
    assert codes(held_again) == ["no_open_tranche"]
    approved = only(when(state, tranche_quota_set("baidu", 50_000, minute=90)), OrderApproved)
    assert approved.approved_quantity == 50_000
    assert approved.decided_at == at(90)


def test_a_policy_change_that_does_not_change_the_reasons_decides_nothing_new() -> None:
    state = given(*article_policies(), order_placed("baidu", "BA-1", 80_000))
    assert when(state, licence_issued("baidu", 200_000, revision=2, minute=30)) == []


def test_held_orders_are_reconsidered_oldest_hold_first() -> None:
    state = given(
        use_rules_set(),
        licence_issued("baidu", 100_000),
        order_placed("baidu", "BA-LATE", 30_000, minute=10),
        order_placed("baidu", "BA-EARLY", 30_000, minute=5),
        importer_authorised("baidu", minute=20),
    )
    decided = when(state, tranche_quota_set("baidu", 40_000, minute=30))
    assert [type(event) for event in decided] == [OrderApproved, OrderApproved]
    assert [(event.order_id, event.approved_quantity) for event in decided if isinstance(event, OrderApproved)] == [
        (order_id("baidu", "BA-EARLY"), 30_000),
        (order_id("baidu", "BA-LATE"), 10_000),
    ]


def test_new_use_rules_reconsider_the_held_orders_of_every_buyer() -> None:
    state = given(
        *ready("alibaba"),
        *ready("tencent")[1:],
        use_rules_set(revision=2, documents=("end_use_statement", "training_plan")),
        order_placed("alibaba", "AL-1", 10, minute=1),
        order_placed("tencent", "TC-1", 10, minute=2),
    )
    decided = when(state, use_rules_set(revision=3, minute=10))
    assert [(type(event), event.buyer_id) for event in decided] == [
        (OrderApproved, "alibaba"),
        (OrderApproved, "tencent"),
    ]


def test_a_revoked_importer_s_held_orders_are_denied_at_once() -> None:
    state = given(*ready(), use_rules_set(revision=2, documents=("training_plan",)), order_placed("bytedance", "B", 10))
    denied = only(when(state, importer_revoked("bytedance", revision=2, minute=5)), OrderDenied)
    assert codes(denied) == ["importer_revoked", "document_missing"]


def test_a_cancelled_held_order_is_never_approved_later() -> None:
    state = given(*article_policies(), order_placed("baidu", "BA-1", 10), order_cancelled("baidu", "BA-1", minute=1))
    assert when(state, importer_authorised("baidu", minute=2)) == []
    assert when(state, tranche_quota_set("baidu", 10, minute=3)) == []


# -------------------------------------------------------------------------------------- later policy changes


def test_importer_suspension_suspends_open_approvals_and_reinstatement_restores_them() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10), order_placed("bytedance", "BD-2", 20, minute=1))
    suspended = when(state, importer_suspended("bytedance", revision=2, minute=5))
    assert [type(event) for event in suspended] == [ApprovalSuspended, ApprovalSuspended]
    assert [event.order_id for event in suspended] == [order_id("bytedance", "BD-1"), order_id("bytedance", "BD-2")]
    assert when(state, importer_suspended("bytedance", revision=3, minute=6)) == []
    reinstated = when(state, importer_reinstated("bytedance", revision=4, minute=7))
    assert [type(event) for event in reinstated] == [ApprovalReinstated, ApprovalReinstated]


def test_importer_revocation_revokes_and_releases_every_open_or_suspended_approval() -> None:
    state = given(
        *ready(),
        order_placed("bytedance", "BD-1", 10),
        importer_suspended("bytedance", revision=2, minute=1),
        importer_reinstated("bytedance", revision=3, minute=2),
        order_placed("bytedance", "BD-2", 20, minute=3),
        importer_suspended("bytedance", revision=4, minute=4),
    )
    decided = when(state, importer_revoked("bytedance", revision=5, minute=5))
    assert [type(event) for event in decided] == [ApprovalRevoked] * 2  # released once the book closes them
    released = when(state, order_closed("bytedance", "BD-1", 10, 4, "revoked", minute=6))
    assert [(type(e), e.why, e.quantity) for e in released] == [(ApprovalReleased, "revoked", 6)]


def test_licence_revocation_revokes_only_the_approvals_under_that_licence() -> None:
    other = licence_issued("bytedance", 5, licence="BIS-OTHER", valid_until=T0 + 2 * YEAR)
    state = given(
        *ready(licence=10), other, order_placed("bytedance", "BD-1", 10), order_placed("bytedance", "BD-2", 5)
    )
    decided = when(state, licence_revoked("bytedance", minute=5))
    assert [(type(event), event.order_id) for event in decided] == [(ApprovalRevoked, order_id("bytedance", "BD-1"))]


def test_denied_party_listing_revokes_open_approvals() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10))
    decided = when(state, denied_party_listed("bytedance", revision=1, minute=5))
    assert [type(event) for event in decided] == [ApprovalRevoked]
    assert reason_code(decided[0]) == "denied_party"


def test_a_buyer_delisted_from_one_list_but_named_by_another_stays_denied() -> None:
    state = given(
        *ready(),
        denied_party_listed("bytedance", revision=1, list_id="us-entity-list"),
        denied_party_listed("bytedance", revision=1, list_id="us-meu-list"),
        denied_party_delisted("bytedance", revision=2, minute=1, list_id="us-entity-list"),
    )
    denied = only(when(state, order_placed("bytedance", "BD-1", 10, minute=2)), OrderDenied)
    assert "denied_party" in codes(denied)
    assert "us-meu-list" in next(r.message for r in denied.reasons if r.code == "denied_party")
    when(state, denied_party_delisted("bytedance", revision=2, minute=3, list_id="us-meu-list"))
    assert state.buyers["bytedance"].policy.denied_by == {}


def test_a_licence_cut_below_what_is_approved_revokes_the_newest_approvals_until_the_rest_fit() -> None:
    state = given(
        *ready(licence=100), order_placed("bytedance", "OLD", 60), order_placed("bytedance", "NEW", 40, minute=1)
    )
    decided = when(state, licence_issued("bytedance", 70, revision=2, minute=5))
    assert [(type(event), event.order_id) for event in decided] == [(ApprovalRevoked, order_id("bytedance", "NEW"))]
    assert reason_code(decided[0]) == "licence_reduced"


def test_a_quota_cut_below_what_is_approved_revokes_the_newest_approvals() -> None:
    state = given(
        *ready(quota=100), order_placed("bytedance", "OLD", 60), order_placed("bytedance", "NEW", 40, minute=1)
    )
    decided = when(state, tranche_quota_set("bytedance", 60, revision=2, minute=5))
    assert [type(event) for event in decided] == [ApprovalRevoked]
    assert reason_code(decided[0]) == "quota_reduced"


def test_quota_released_by_a_licence_revocation_can_be_approved_to_another_order() -> None:
    state = given(
        *ready(licence=100, quota=100),
        licence_issued("bytedance", 100, licence="BIS-2", valid_until=T0 + 2 * YEAR),
        order_placed("bytedance", "BD-1", 100),
        licence_revoked("bytedance", minute=1),
    )
    held = only(when(state, order_placed("bytedance", "BD-2", 100, minute=2)), OrderHeld)
    assert "awaiting_release" in codes(held)  # the quota comes back only when the book closes BD-1
    decided = when(state, order_closed("bytedance", "BD-1", 100, 0, "revoked", minute=3))
    assert [type(event) for event in decided] == [ApprovalReleased, OrderApproved]
    approved = decided[1]
    assert (approved.licence_id, approved.approved_quantity) == ("BIS-2", 100)


# ----------------------------------------------------------------------------------------------- cancellation


def test_cancelling_an_approved_order_releases_its_licence_and_quota_use_once_closed() -> None:
    state = given(*ready(licence=100), order_placed("bytedance", "BD-1", 100))
    only(when(state, order_cancelled("bytedance", "BD-1", minute=1)), ApprovalCancelled)
    released = only(when(state, order_closed("bytedance", "BD-1", 100, 0, minute=2)), ApprovalReleased)
    assert (released.why, released.quantity, released.licence_id, released.tranche_id) == (
        "cancelled",
        100,
        "BIS-H200-BYTEDANCE",
        "T1",
    )
    only(when(state, order_placed("bytedance", "BD-2", 100, minute=3)), OrderApproved)


def test_chips_that_shipped_stay_counted_against_licence_and_quota_after_a_cancel() -> None:
    # The reproduced defect: cancel after delivery gave back the whole licence, so a second order was approved
    # for the same 1,000 chips (2,000 on a 1,000-chip licence and quota).
    state = given(*ready(licence=1000, quota=1000), order_placed("bytedance", "BD-1", 1000))
    when(state, order_cancelled("bytedance", "BD-1", minute=1))
    released = only(when(state, order_closed("bytedance", "BD-1", 1000, 1000, minute=2)), ApprovalReleased)
    assert released.quantity == 0
    denied = only(when(state, order_placed("bytedance", "BD-2", 1000, minute=3)), OrderDenied)
    assert {"licence_exhausted", "quota_exhausted"} & set(codes(denied))


def test_a_closing_repeated_or_for_an_unknown_order_decides_nothing() -> None:
    state = given(*ready(licence=100), order_placed("bytedance", "BD-1", 100), order_cancelled("bytedance", "BD-1"))
    closing = order_closed("bytedance", "BD-1", 100, 30, minute=2)
    assert len(when(state, closing)) == 1
    assert when(state, order_closed("bytedance", "BD-1", 100, 30, minute=3)) == []
    assert when(state, order_closed("bytedance", "NEVER", 100, 0, minute=4)) == []


def test_cancelling_a_denied_or_revoked_order_decides_nothing() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10, uses={"gaming": 100}))
    assert when(state, order_cancelled("bytedance", "BD-1", minute=1)) == []
    state = given(*ready(), order_placed("bytedance", "BD-2", 10), licence_revoked("bytedance", minute=1))
    assert when(state, order_cancelled("bytedance", "BD-2", minute=2)) == []


# --------------------------------------------------------------------------------- idempotency and the trail


def test_a_repeated_input_decides_nothing() -> None:
    placed = order_placed("bytedance", "BD-1", 10)
    state = given(*ready(), placed)
    assert when(state, placed) == []


def test_an_order_placed_again_under_another_envelope_is_not_decided_again() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10))
    assert when(state, order_placed("bytedance", "BD-1", 10, minute=1)) == []


def test_a_stale_policy_revision_is_ignored() -> None:
    state = given(*ready(licence=10), licence_issued("bytedance", 100, revision=2))
    assert when(state, licence_issued("bytedance", 10, revision=1, minute=1)) == []
    assert only(when(state, order_placed("bytedance", "BD-1", 100, minute=2)), OrderApproved).approved_quantity == 100


def test_a_repeated_policy_revision_is_ignored() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10), importer_suspended("bytedance", revision=2))
    assert when(state, importer_suspended("bytedance", revision=2, minute=1)) == []
    assert when(state, importer_reinstated("bytedance", revision=2, minute=2)) == []


def test_a_decision_cites_every_policy_consulted_and_the_input_that_caused_it() -> None:
    state = given(*ready(), denied_party_listed("alibaba", revision=3))
    placed = order_placed("bytedance", "BD-1", 10, minute=7)
    approved = only(when(state, placed), OrderApproved)
    assert set(approved.policy_refs) == {
        PolicyRef(policy_id="us-denied-parties", revision=3),
        PolicyRef(policy_id="us-licence/BIS-H200-BYTEDANCE", revision=1),
        PolicyRef(policy_id="cn-importer/bytedance", revision=1),
        PolicyRef(policy_id="cn-quota/T1/bytedance", revision=1),
        PolicyRef(policy_id="cn-use-rules", revision=1),
    }
    assert (approved.cause_event_id, approved.decided_at) == (placed.id, at(7))


def test_a_release_cites_the_policy_that_caused_it() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10))
    revocation = importer_revoked("bytedance", revision=2, minute=5)
    for event in when(state, revocation):
        assert isinstance(event, ApprovalRevoked | ApprovalReleased)
        assert event.policy_refs[0] == PolicyRef(policy_id="cn-importer/bytedance", revision=2)
        assert event.cause_event_id == revocation.id


def test_a_fresh_authorisation_of_a_suspended_importer_reinstates_its_approvals() -> None:
    state = given(*ready(), order_placed("bytedance", "BD-1", 10), importer_suspended("bytedance", revision=2))
    only(when(state, importer_authorised("bytedance", revision=3, minute=5)), ApprovalReinstated)


def test_a_licence_issued_again_after_its_revocation_is_in_force_again() -> None:
    state = given(*ready(), licence_revoked("bytedance", revision=2), licence_issued("bytedance", 50, revision=3))
    assert only(when(state, order_placed("bytedance", "BD-1", 80)), OrderApproved).approved_quantity == 50


def test_a_decision_triggered_by_an_older_policy_is_dated_no_earlier_than_the_order() -> None:
    # The order reached approval before the importer's authorisation, which took effect earlier: the
    # approval answers the order as it stands, so it cannot be dated before the order was placed.
    state = given(
        use_rules_set(), licence_issued("bytedance", 150_000), order_placed("bytedance", "BD-1", 1_000, minute=30)
    )
    state = given_more(state, tranche_quota_set("bytedance", 150_000, minute=5))
    approved = only(when(state, importer_authorised("bytedance", minute=10)), OrderApproved)
    assert approved.decided_at == at(30)


def given_more(state: ApprovalState, *inputs: Envelope[Any]) -> ApprovalState:
    folded: ApprovalState = fold(approval, list(inputs), state)[0]
    return folded
