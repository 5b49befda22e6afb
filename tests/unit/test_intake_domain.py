"""Intake's core as a specification: given what happened, when a command arrives, then these events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from builders_intake import (
    AT,
    BUYER,
    ORDER_ID,
    REF,
    add_documents,
    cancel,
    document,
    envelope,
    given,
    order_terms,
    run,
    submit,
    then_only,
    when,
)
from pydantic import ValidationError

from schemas.base import Message
from schemas.envelope import Envelope, order_id_for
from schemas.intake import (
    CommandRejected,
    OrderCancelled,
    OrderDocumentsAdded,
    OrderPlaced,
    OrderSubmissionRejected,
    SubmitOrder,
)
from schemas.outcomes import SubmissionUnchanged
from services.common.decider import fold, step
from services.intake import domain

LATER = AT + timedelta(hours=2)


def unchanged_because(events: list[Message]) -> str:
    """The reason code of the one SubmissionUnchanged `events` must be: the command's answer when it records nothing."""
    event = then_only(events)
    assert isinstance(event, SubmissionUnchanged), event
    return event.reason.code


def rejection_codes(event: object) -> list[str]:
    assert isinstance(event, OrderSubmissionRejected | CommandRejected), event
    return [reason.code for reason in event.reasons]


# Placing an order


def test_a_valid_submission_places_the_order_under_the_id_named_by_buyer_and_reference() -> None:
    placed = then_only(run(submit()))
    assert placed == OrderPlaced.model_validate(
        {**order_terms(), "order_id": ORDER_ID, "placed_at": AT, "submitted_at": AT}
    )
    assert placed.order_id == order_id_for(BUYER, REF)


def test_other_buyers_may_use_the_same_upstream_reference() -> None:
    events = run(submit(), submit(buyer_id="alibaba", buyer_name="Alibaba Group"))
    assert [type(event) for event in events] == [OrderPlaced, OrderPlaced]
    assert events[1] == OrderPlaced.model_validate(
        {
            **order_terms(buyer_id="alibaba", buyer_name="Alibaba Group"),
            "order_id": order_id_for("alibaba", REF),
            "placed_at": AT,
            "submitted_at": AT,
        }
    )


# Intake's checks


def test_two_documents_under_one_id_are_rejected() -> None:
    twins = [document(1), document(1, kind="business_licence", digest="f" * 64)]
    rejected = then_only(run(submit(documents=twins)))
    assert rejection_codes(rejected) == ["duplicate_document_id"]


def test_the_same_content_filed_twice_is_rejected() -> None:
    copies = [document(1), document(2, digest=document(1).sha256)]
    rejected = then_only(run(submit(documents=copies)))
    assert rejection_codes(rejected) == ["duplicate_document_content"]


@pytest.mark.parametrize("cents", [99_999, 10_000_001, 25])
def test_a_unit_price_outside_the_sanity_band_is_rejected(cents: int) -> None:
    rejected = then_only(run(submit(unit_price_cents=cents)))
    assert rejection_codes(rejected) == ["unit_price_out_of_band"]


@pytest.mark.parametrize("cents", [domain.MIN_UNIT_PRICE_CENTS, domain.MAX_UNIT_PRICE_CENTS])
def test_a_unit_price_on_the_edge_of_the_sanity_band_is_accepted(cents: int) -> None:
    assert isinstance(then_only(run(submit(unit_price_cents=cents))), OrderPlaced)


def test_a_domestic_commitment_more_than_ten_times_the_order_is_rejected() -> None:
    commitment = {"supplier": "Huawei Ascend", "quantity": 10 * 150_000 + 1}
    rejected = then_only(run(submit(domestic_commitment=commitment)))
    assert rejection_codes(rejected) == ["domestic_commitment_implausible"]


def test_a_domestic_commitment_of_ten_times_the_order_is_accepted() -> None:
    commitment = {"supplier": "Huawei Ascend", "quantity": 10 * 150_000}
    assert isinstance(then_only(run(submit(domestic_commitment=commitment))), OrderPlaced)


@pytest.mark.parametrize("offset", [timedelta(days=1, seconds=1), -timedelta(days=1, seconds=1)])
def test_until_a_window_is_published_a_claim_more_than_a_day_from_its_arrival_is_refused(offset: timedelta) -> None:
    rejected = then_only(run(submit(submitted_at=AT + offset)))
    assert rejection_codes(rejected) == ["implausible_submitted_at"]
    assert "fallback window" in rejected.reasons[0].message  # type: ignore[attr-defined]


@pytest.mark.parametrize("offset", [domain.FALLBACK_WINDOW, -domain.FALLBACK_WINDOW])
def test_until_a_window_is_published_a_claim_up_to_a_day_from_its_arrival_is_accepted(offset: timedelta) -> None:
    assert isinstance(then_only(run(submit(submitted_at=AT + offset))), OrderPlaced)


def test_every_failed_check_is_listed_in_one_rejection() -> None:
    rejected = then_only(
        run(
            submit(
                documents=[document(1), document(1)],
                unit_price_cents=1,
                domestic_commitment={"supplier": "Huawei Ascend", "quantity": 9_000_000},
                submitted_at=AT + timedelta(days=3),
            )
        )
    )
    assert isinstance(rejected, OrderSubmissionRejected)
    assert [(reason.code, reason.field, reason.gate) for reason in rejected.reasons] == [
        ("duplicate_document_id", "documents", "intake"),
        ("duplicate_document_content", "documents", "intake"),
        ("unit_price_out_of_band", "unit_price_cents", "intake"),
        ("domestic_commitment_implausible", "domestic_commitment.quantity", "intake"),
        ("implausible_submitted_at", "submitted_at", "intake"),
    ]
    assert (rejected.buyer_id, rejected.upstream_ref, rejected.rejected_at) == (BUYER, REF, AT)


def test_a_long_list_of_duplicates_is_reported_within_the_message_limit() -> None:
    documents = [document(n % 25, digest=f"{n:064x}") for n in range(50)]
    documents = [doc.model_copy(update={"document_id": f"{doc.document_id}-{'x' * 100}"}) for doc in documents]
    rejected = then_only(run(submit(documents=documents)))
    assert isinstance(rejected, OrderSubmissionRejected)
    assert len(rejected.reasons[0].message) == 500


def test_a_use_declared_twice_is_refused_by_the_contract_before_intake_sees_it() -> None:
    uses = [{"use": "inference", "share_pct": 50}, {"use": "inference", "share_pct": 50}]
    with pytest.raises(ValidationError, match="each use may appear once"):
        SubmitOrder(**order_terms(declared_uses=uses), submitted_at=AT)


# Resubmissions of a reference


def test_the_same_submission_envelope_twice_places_the_order_once() -> None:
    command = submit()
    assert [type(event) for event in run(command, command)] == [OrderPlaced]


def test_a_resent_submission_with_identical_terms_records_nothing_and_answers_unchanged() -> None:
    state = given(submit())
    assert unchanged_because(when(state, submit(submitted_at=LATER, occurred_at=LATER))) == "already_placed"


def test_a_resent_submission_listing_uses_and_documents_in_another_order_records_nothing() -> None:
    state = given(submit(documents=[document(1), document(2)]))
    reordered = submit(
        documents=[document(2), document(1)],
        declared_uses=[{"use": "inference", "share_pct": 30}, {"use": "ai_research", "share_pct": 70}],
    )
    assert unchanged_because(when(state, reordered)) == "already_placed"


def test_a_resubmission_with_other_terms_is_rejected_naming_each_differing_field() -> None:
    state = given(submit())
    rejected = then_only(when(state, submit(quantity=200_000, unit_price_cents=2_400_000)))
    assert isinstance(rejected, OrderSubmissionRejected)
    assert [(reason.code, reason.field) for reason in rejected.reasons] == [
        ("conflicting_resubmission", "quantity"),
        ("conflicting_resubmission", "unit_price_cents"),
    ]


def test_a_conflicting_resubmission_leaves_the_placed_order_open() -> None:
    state = given(submit(), submit(quantity=1))
    assert isinstance(then_only(when(state, cancel())), OrderCancelled)


def test_a_rejected_submission_resent_unchanged_is_answered_already_rejected() -> None:
    state = given(submit(unit_price_cents=1))
    assert unchanged_because(when(state, submit(unit_price_cents=1))) == "already_rejected"


def test_a_rejected_reference_cannot_be_reused_with_corrected_terms() -> None:
    state = given(submit(unit_price_cents=1))
    rejected = then_only(when(state, submit()))
    assert isinstance(rejected, OrderSubmissionRejected)
    assert [(reason.code, reason.field) for reason in rejected.reasons] == [
        ("conflicting_resubmission", "unit_price_cents")
    ]


def test_a_rejection_rebuilt_from_events_alone_refuses_any_resend() -> None:
    # OrderSubmissionRejected carries no terms, so intake cannot tell an identical resend from a changed one.
    rejection = OrderSubmissionRejected.model_validate(
        {
            "buyer_id": BUYER,
            "upstream_ref": REF,
            "reasons": [{"code": "unit_price_out_of_band", "message": "too cheap", "gate": "intake"}],
            "rejected_at": AT,
        }
    )
    state = given(envelope(rejection, producer="intake"))
    assert rejection_codes(then_only(when(state, submit()))) == ["conflicting_resubmission"]


def test_an_order_rebuilt_from_its_placed_event_recognises_a_resend() -> None:
    placed = OrderPlaced.model_validate({**order_terms(), "order_id": ORDER_ID, "placed_at": AT})
    state = given(envelope(placed, producer="intake"))
    assert unchanged_because(when(state, submit())) == "already_placed"


def test_a_resend_of_the_original_submission_after_documents_were_added_records_nothing() -> None:
    state = given(submit(), add_documents(document(2)))
    assert unchanged_because(when(state, submit())) == "already_placed"


# Cancelling an order


def test_cancelling_an_open_order_records_the_cancellation() -> None:
    state = given(submit())
    cancelled = then_only(when(state, cancel(occurred_at=LATER)))
    assert cancelled == OrderCancelled(order_id=ORDER_ID, buyer_id=BUYER, reason="plan changed", cancelled_at=LATER)


def test_the_same_cancellation_envelope_twice_cancels_once() -> None:
    command = cancel()
    assert [type(event) for event in run(submit(), command, command)] == [OrderPlaced, OrderCancelled]


def test_cancelling_an_already_cancelled_order_records_nothing_and_answers_unchanged() -> None:
    state = given(submit(), cancel())
    assert unchanged_because(when(state, cancel(occurred_at=LATER))) == "already_cancelled"


def test_cancelling_an_unknown_order_is_rejected() -> None:
    command = cancel(upstream_ref="BD-PO-404")
    rejected = then_only(run(command))
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.command_type, rejected.upstream_ref) == (
        command.id,
        "CancelOrder",
        "BD-PO-404",
    )
    assert rejection_codes(rejected) == ["unknown_order"]
    assert "never submitted" in rejected.reasons[0].message


def test_cancelling_a_rejected_submission_is_rejected_as_an_unknown_order() -> None:
    state = given(submit(unit_price_cents=1))
    rejected = then_only(when(state, cancel()))
    assert isinstance(rejected, CommandRejected)
    assert rejection_codes(rejected) == ["unknown_order"]
    assert "was rejected" in rejected.reasons[0].message


# Adding documents


def test_documents_added_to_an_open_order_are_recorded() -> None:
    state = given(submit())
    added = then_only(when(state, add_documents(document(2), document(3), occurred_at=LATER)))
    assert added == OrderDocumentsAdded(
        order_id=ORDER_ID, buyer_id=BUYER, documents=(document(2), document(3)), added_at=LATER
    )


def test_only_documents_not_already_on_file_are_recorded() -> None:
    state = given(submit(), add_documents(document(2)))
    added = then_only(when(state, add_documents(document(1), document(2), document(3))))
    assert isinstance(added, OrderDocumentsAdded)
    assert added.documents == (document(3),)


def test_filing_only_documents_already_on_file_records_nothing() -> None:
    state = given(submit(), add_documents(document(2)))
    assert unchanged_because(when(state, add_documents(document(2)))) == "documents_on_file"


def test_the_same_document_filing_envelope_twice_records_once() -> None:
    command = add_documents(document(2))
    assert [type(event) for event in run(submit(), command, command)] == [OrderPlaced, OrderDocumentsAdded]


def test_documents_for_a_cancelled_order_are_rejected() -> None:
    state = given(submit(), cancel())
    rejected = then_only(when(state, add_documents(document(2))))
    assert rejection_codes(rejected) == ["order_cancelled"]


def test_documents_for_an_unknown_order_are_rejected() -> None:
    command = add_documents(document(2))
    rejected = then_only(run(command))
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.command_type) == (command.id, "AddOrderDocuments")
    assert rejection_codes(rejected) == ["unknown_order"]


def test_a_document_revised_under_an_id_already_on_file_is_rejected() -> None:
    state = given(submit())
    rejected = then_only(when(state, add_documents(document(1, digest="e" * 64))))
    assert rejection_codes(rejected) == ["duplicate_document_id"]


def test_a_document_whose_content_is_already_on_file_under_another_id_is_rejected() -> None:
    state = given(submit())
    rejected = then_only(when(state, add_documents(document(9, digest=document(1).sha256))))
    assert rejection_codes(rejected) == ["duplicate_document_content"]


# The core as a whole


def test_replaying_the_same_commands_gives_the_same_events() -> None:
    commands: list[Envelope[Any]] = [
        submit(),
        submit(buyer_id="tencent", unit_price_cents=1),
        add_documents(document(2)),
        cancel(),
    ]
    _, first = fold(domain, commands)
    _, again = fold(domain, commands)
    assert first == again
    assert len(first) == 4


def test_intake_decides_only_on_its_commands() -> None:
    placed = OrderPlaced.model_validate({**order_terms(), "order_id": ORDER_ID, "placed_at": AT})
    with pytest.raises(TypeError, match="intake does not decide on OrderPlaced"):
        step(domain, domain.initial_state(), envelope(placed, message_id=uuid4()))
