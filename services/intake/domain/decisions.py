"""What intake decides on each command.

Times: intake decides when it learned of a command, its arrival in h200.intake.inbox (`learned_at`: the broker's
LogAppendTime, docs/time.md). placed_at, rejected_at, cancelled_at and added_at are that arrival, never the
command's own submitted_at/requested_at: those are the sender's claims, and a backdated submitted_at would move an
order ahead of others. The claim is kept on OrderPlaced and checked against the arrival (the submission window).
The arrival is also the time `services.common.decider.wrap` gives the events' envelopes.

A reference is bound to its first submission for good: a resend with the same terms records nothing, with
other terms it is rejected as a conflict. That holds for a rejected first submission too (a fixed order
needs a new upstream_ref), so every (buyer, reference) has exactly one outcome on h200.orders.

Every command gets exactly one answer (schemas/outcomes.py): the fact it caused, or SubmissionUnchanged when its
effect is already recorded (an identical resend under a new id, a second cancellation, documents already on
file). A redelivered envelope (an id already applied) gets none: its answer was given under the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.base import Message, Reason
from schemas.envelope import Envelope, learned_at, order_id_for
from schemas.intake import (
    AddOrderDocuments,
    CancelOrder,
    CommandRejected,
    OrderCancelled,
    OrderDocumentsAdded,
    OrderPlaced,
    OrderSubmissionRejected,
    OrderTerms,
    SubmitOrder,
)
from schemas.outcomes import SubmissionUnchanged
from schemas.policy import SubmissionWindowSet
from services.intake.domain.checks import duplicate_documents, intake_reason, submission_problems
from services.intake.domain.records import State, Submission, terms_of
from services.intake.domain.terms import TERM_FIELDS, changed_terms, fingerprint
from services.intake.domain.window import Window, window_at


def decide(state: State, message: Envelope[Any]) -> list[Message]:
    """The events a command causes; none for an envelope already applied or for a window (it is only folded)."""
    if message.id in state.applied:
        return []
    payload = message.payload
    match payload:
        case SubmitOrder():
            at = learned_at(message)
            return _submit(state, message, payload, at, window_at(state.windows, at))
        case SubmissionWindowSet():
            return []
        case CancelOrder():
            return _cancel(state, message, payload)
        case AddOrderDocuments():
            return _add_documents(state, message, payload)
        case _:
            raise TypeError(f"intake does not decide on {type(payload).__name__}")


def _submit(state: State, message: Envelope[Any], command: SubmitOrder, at: datetime, window: Window) -> list[Message]:
    order_id = order_id_for(command.buyer_id, command.upstream_ref)
    known = state.orders.get(order_id)
    if known is not None:
        conflicts = _conflicts(known, terms_of(command))
        return [_rejected(command, conflicts, at) if conflicts else _unchanged(message, command, _standing(known))]
    problems = submission_problems(command, at, window)
    if problems:
        return [_rejected(command, problems, at)]
    terms = {name: getattr(command, name) for name in TERM_FIELDS}
    placed = {**terms, "order_id": order_id, "placed_at": at, "submitted_at": command.submitted_at}
    return [OrderPlaced.model_validate(placed)]


def _conflicts(known: Submission, resent: OrderTerms) -> list[Reason]:
    """One reason per term that differs from the reference's first submission (order of lists ignored)."""
    ref = f"{known.buyer_id}/{known.upstream_ref}"
    if known.terms is None:
        return [intake_reason("conflicting_resubmission", f"{ref} was already used by a rejected submission")]
    return [
        intake_reason("conflicting_resubmission", f"{ref} was already submitted with another {name}", name)
        for name in changed_terms(known.terms, fingerprint(resent))
    ]


def _rejected(command: SubmitOrder, reasons: list[Reason], at: datetime) -> OrderSubmissionRejected:
    return OrderSubmissionRejected(
        buyer_id=command.buyer_id, upstream_ref=command.upstream_ref, reasons=tuple(reasons), rejected_at=at
    )


def _cancel(state: State, message: Envelope[Any], command: CancelOrder) -> list[Message]:
    order_id = order_id_for(command.buyer_id, command.upstream_ref)
    order = state.orders.get(order_id)
    if order is None or order.status not in ("open", "cancelled"):
        return [_command_rejected(message, command, [_unknown_order(command, order)])]
    if order.status == "cancelled":
        return [_unchanged(message, command, _standing(order))]
    return [
        OrderCancelled(
            order_id=order_id, buyer_id=command.buyer_id, reason=command.reason, cancelled_at=learned_at(message)
        )
    ]


def _add_documents(state: State, message: Envelope[Any], command: AddOrderDocuments) -> list[Message]:
    order_id = order_id_for(command.buyer_id, command.upstream_ref)
    order = state.orders.get(order_id)
    if order is None or order.status not in ("open", "cancelled"):
        return [_command_rejected(message, command, [_unknown_order(command, order)])]
    if order.status == "cancelled":
        cancelled = intake_reason(
            "order_cancelled",
            f"order {command.buyer_id}/{command.upstream_ref} is cancelled: no documents may be added",
        )
        return [_command_rejected(message, command, [cancelled])]
    filed = order.documents
    new = [document for document in command.documents if filed.get(document.document_id) != document]
    if not new:
        on_file = intake_reason(
            "documents_on_file",
            f"every document filed is already on file for {command.buyer_id}/{command.upstream_ref}",
            "documents",
        )
        return [_unchanged(message, command, on_file)]
    # Ids and contents stay unique across everything on file: a revised document needs a new id.
    problems = duplicate_documents([*filed.values(), *new])
    if problems:
        return [_command_rejected(message, command, problems)]
    return [
        OrderDocumentsAdded(
            order_id=order_id, buyer_id=command.buyer_id, documents=tuple(new), added_at=learned_at(message)
        )
    ]


def _standing(order: Submission) -> Reason:
    """Why a command changes nothing about a reference already decided: what became of it."""
    ref = f"{order.buyer_id}/{order.upstream_ref}"
    if order.status == "rejected":
        return intake_reason("already_rejected", f"{ref} was rejected before; a corrected order needs a new reference")
    if order.status == "cancelled":
        return intake_reason("already_cancelled", f"order {ref} is already cancelled")
    return intake_reason("already_placed", f"order {ref} is already placed with these terms")


def _unchanged(
    message: Envelope[Any], command: SubmitOrder | CancelOrder | AddOrderDocuments, reason: Reason
) -> SubmissionUnchanged:
    return SubmissionUnchanged(
        command_id=message.id,
        command_type=command.TYPE,
        buyer_id=command.buyer_id,
        upstream_ref=command.upstream_ref,
        order_id=order_id_for(command.buyer_id, command.upstream_ref),
        reason=reason,
        decided_at=learned_at(message),
    )


def _unknown_order(command: CancelOrder | AddOrderDocuments, order: Submission | None) -> Reason:
    ref = f"{command.buyer_id}/{command.upstream_ref}"
    why = "its submission was rejected" if order is not None else "it was never submitted"
    return intake_reason("unknown_order", f"there is no order {ref}: {why}")


def _command_rejected(
    message: Envelope[Any], command: CancelOrder | AddOrderDocuments, reasons: list[Reason]
) -> CommandRejected:
    return CommandRejected(
        command_id=message.id,
        command_type=command.TYPE,
        buyer_id=command.buyer_id,
        upstream_ref=command.upstream_ref,
        reasons=tuple(reasons),
        rejected_at=learned_at(message),
    )
