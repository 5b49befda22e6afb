"""Input envelopes for intake's core, with valid defaults drawn from the article's scenario."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from schemas.base import Message
from schemas.envelope import Arrival, Envelope, make_envelope, order_id_for
from schemas.intake import AddOrderDocuments, CancelOrder, SubmitOrder, SupportingDocument
from schemas.policy import SubmissionWindowSet
from schemas.routing import record_key
from services.common.decider import fold, step
from services.intake import domain
from services.intake.domain import State

AT = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
BUYER = "bytedance"
REF = "BD-PO-2026-0001"
ORDER_ID = order_id_for(BUYER, REF)


def document(n: int, *, kind: str = "end_use_statement", digest: str | None = None) -> SupportingDocument:
    return SupportingDocument(document_id=f"DOC-{n}", kind=kind, sha256=digest or f"{n:064x}")


def order_terms(**overrides: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "buyer_id": BUYER,
        "buyer_name": "ByteDance Ltd.",
        "upstream_ref": REF,
        "quantity": 150_000,
        "unit_price_cents": 2_500_000,
        "declared_uses": [{"use": "ai_research", "share_pct": 70}, {"use": "inference", "share_pct": 30}],
        "documents": [document(1)],
        "domestic_commitment": {"supplier": "Huawei Ascend", "quantity": 50_000},
        "delivery_site": {"site_id": "BJ-DC-3", "city": "Beijing"},
    }
    terms.update(overrides)
    return terms


def envelope(
    payload: Message, *, message_id: UUID | None = None, occurred_at: datetime = AT, producer: str = "upstream"
) -> Envelope[Any]:
    return make_envelope(
        payload,
        key=str(getattr(payload, "buyer_id", "")),
        producer=producer,
        occurred_at=occurred_at,
        message_id=message_id or uuid4(),
    )


def submit(
    *, message_id: UUID | None = None, occurred_at: datetime = AT, submitted_at: datetime = AT, **overrides: Any
) -> Envelope[SubmitOrder]:
    command = SubmitOrder(**order_terms(**overrides), submitted_at=submitted_at)
    return envelope(command, message_id=message_id, occurred_at=occurred_at)


def cancel(
    *, buyer_id: str = BUYER, upstream_ref: str = REF, message_id: UUID | None = None, occurred_at: datetime = AT
) -> Envelope[CancelOrder]:
    command = CancelOrder(buyer_id=buyer_id, upstream_ref=upstream_ref, reason="plan changed", requested_at=AT)
    return envelope(command, message_id=message_id, occurred_at=occurred_at)


def add_documents(
    *documents: SupportingDocument,
    buyer_id: str = BUYER,
    upstream_ref: str = REF,
    message_id: UUID | None = None,
    occurred_at: datetime = AT,
) -> Envelope[AddOrderDocuments]:
    command = AddOrderDocuments(buyer_id=buyer_id, upstream_ref=upstream_ref, documents=documents, requested_at=AT)
    return envelope(command, message_id=message_id, occurred_at=occurred_at)


def window(
    *,
    revision: int = 1,
    max_ahead_s: int = 300,
    max_behind_s: int = 7 * 86_400,
    effective_at: datetime = AT,
    **extra: Any,
) -> Envelope[SubmissionWindowSet]:
    """A submission window as ops publishes it (policy intake/submission-window by default)."""
    policy = SubmissionWindowSet(
        **{"policy_id": "intake/submission-window", "issued_by": "H200 intake desk", **extra},
        revision=revision,
        effective_at=effective_at,
        max_ahead_s=max_ahead_s,
        max_behind_s=max_behind_s,
    )
    return make_envelope(policy, key=record_key(policy), producer="ops", occurred_at=effective_at, message_id=uuid4())


def arriving(message: Envelope[Any], at: datetime, offset: int = 0) -> Envelope[Any]:
    """`message` as intake reads it from its inbox: with the broker's time of the record (LogAppendTime)."""
    return message.arrived(Arrival("h200.intake.inbox", 0, offset, at))


def given(*history: Envelope[Any]) -> State:
    """The state after these messages: a command is decided on (its events folded too), an event is folded."""
    state = domain.initial_state()
    for message in history:
        if message.payload.KIND == "command":
            state, _ = step(domain, state, message)
        else:
            state = domain.evolve(state, message)
    return state


def run(*inputs: Envelope[Any]) -> list[Message]:
    """Every event payload a sequence of commands causes, from the initial state."""
    _, events = fold(domain, list(inputs))
    return [event.payload for event in events]


def when(state: State, command: Envelope[Any]) -> list[Message]:
    """The event payloads one command causes in a given state."""
    _, events = step(domain, state, command)
    return [event.payload for event in events]


def then_only(events: Sequence[Message]) -> Message:
    assert len(events) == 1, events
    return events[0]
