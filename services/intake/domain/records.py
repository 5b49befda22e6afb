"""What intake remembers: every submission by order id, with its terms, documents on file and status, and the
submission window in force in the partition."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

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
    SupportingDocument,
)
from schemas.outcomes import SubmissionUnchanged
from schemas.policy import SubmissionWindowSet
from services.domain_kit.seen_ids import SeenIds
from services.intake.domain.terms import TERM_FIELDS, fingerprint, pack_documents, unpack_documents
from services.intake.domain.window import Windows, advance, receive

Status = Literal["submitted", "open", "cancelled", "rejected"]
"""`submitted` lasts only between folding a new SubmitOrder and folding the decision it caused."""


@dataclass(slots=True)
class Submission:
    """One (buyer, upstream reference): the terms first submitted under it and what became of them."""

    buyer_id: str
    upstream_ref: str
    terms: bytes | None
    """The fingerprint of the terms (services.intake.domain.terms); None only for a rejection rebuilt from intake's
    events alone: OrderSubmissionRejected carries no terms."""
    status: Status
    packed_documents: bytes = b""
    """Documents on file (those submitted with the order and those added later), packed: see `documents`."""

    @property
    def documents(self) -> dict[str, SupportingDocument]:
        """Documents on file by document id, in the order they were filed."""
        return unpack_documents(self.packed_documents)

    def file(self, documents: Iterable[SupportingDocument]) -> None:
        on_file = self.documents
        on_file.update((document.document_id, document) for document in documents)
        self.packed_documents = pack_documents(on_file)


@dataclass
class State:
    orders: dict[UUID, Submission] = field(default_factory=dict)
    """By order id, which names (buyer_id, upstream_ref): see schemas.envelope.order_id_for."""
    applied: SeenIds = field(default_factory=SeenIds)
    """Ids of the input envelopes already folded: a redelivered command decides nothing (16 bytes an id:
    services.domain_kit.seen_ids)."""
    windows: Windows = field(default_factory=Windows)
    """The submission window in force, those pending, and the latest arrival seen."""


def initial_state() -> State:
    return State()


def terms_of(payload: OrderTerms) -> OrderTerms:
    """The buyer's terms alone, without the fields of the command or event that carries them."""
    return OrderTerms.model_construct(**{name: getattr(payload, name) for name in TERM_FIELDS})


def evolve(state: State, message: Envelope[Any]) -> State:
    """Fold an input command or one of intake's own events; updates `state` in place and returns it."""
    payload = message.payload
    match payload:
        case SubmitOrder() | CancelOrder() | AddOrderDocuments():
            # Every arrival, a repeated one too, is time the partition has seen pass.
            advance(state.windows, learned_at(message))
            if message.id not in state.applied:
                state.applied.add(message.id)
                if isinstance(payload, SubmitOrder):
                    _remember_submission(state, payload)
        case SubmissionWindowSet():
            receive(advance(state.windows, learned_at(message)), payload)
        case OrderPlaced():
            known = state.orders.get(payload.order_id)
            if known is None or known.status == "submitted":
                placed = Submission(sys.intern(payload.buyer_id), payload.upstream_ref, _fingerprint(payload), "open")
                placed.file(payload.documents)
                state.orders[payload.order_id] = placed
        case OrderSubmissionRejected():
            order_id = order_id_for(payload.buyer_id, payload.upstream_ref)
            known = state.orders.get(order_id)
            if known is None:
                state.orders[order_id] = Submission(
                    sys.intern(payload.buyer_id), payload.upstream_ref, None, "rejected"
                )
            elif known.status == "submitted":
                known.status = "rejected"
            # Otherwise it refused a conflicting resend of a recorded reference, which changes nothing.
        case OrderDocumentsAdded():
            order = state.orders.get(payload.order_id)
            if order is not None:
                order.file(payload.documents)
        case OrderCancelled():
            order = state.orders.get(payload.order_id)
            if order is not None:
                order.status = "cancelled"
        case CommandRejected() | SubmissionUnchanged():
            pass
        case _:
            raise TypeError(f"intake cannot fold {type(payload).__name__}")
    return state


def _remember_submission(state: State, command: SubmitOrder) -> None:
    # The terms of a rejected submission exist only in the command: keep them so a resend can be compared.
    order_id = order_id_for(command.buyer_id, command.upstream_ref)
    if order_id not in state.orders:
        state.orders[order_id] = Submission(
            sys.intern(command.buyer_id), command.upstream_ref, _fingerprint(command), "submitted"
        )


def _fingerprint(payload: OrderTerms) -> bytes:
    return fingerprint(terms_of(payload))
