"""Intake's own checks of a submission, beyond what the schema enforces: few, and each one a likely mistake.

These are sanity checks of an intake desk, not government rules (those are policy data, applied by approval).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from schemas.base import Reason
from schemas.intake import OrderTerms, SubmitOrder, SupportingDocument
from services.intake.domain.window import Window, span

MIN_UNIT_PRICE_CENTS = 1_000_00
MAX_UNIT_PRICE_CENTS = 100_000_00
"""Intake's sanity band for the price of one chip, 1,000 to 100,000 USD (the article implies about 25,000).
Not a government rule: a price outside it is most likely a unit mistake (dollars for cents, a batch price)."""

MAX_DOMESTIC_COMMITMENT_RATIO = 10
"""A commitment to buy more than 10 domestic chips per H200 ordered is taken for a typing mistake."""

_MAX_MESSAGE = 500  # schemas.base.Text


def submission_problems(command: SubmitOrder, arrival: datetime, window: Window) -> list[Reason]:
    """Every check the submission fails, in a stable order; empty when it may be recorded."""
    return [
        *duplicate_documents(command.documents),
        *_price_problems(command),
        *_commitment_problems(command),
        *claim_problems(command, arrival, window),
    ]


def duplicate_documents(documents: Iterable[SupportingDocument]) -> list[Reason]:
    """Within one order every document has its own id and its own content (sha256)."""
    documents = list(documents)
    reasons = []
    ids = _repeated(document.document_id for document in documents)
    if ids:
        reasons.append(
            intake_reason(
                "duplicate_document_id", f"document ids used by more than one document: {', '.join(ids)}", "documents"
            )
        )
    digests = _repeated(document.sha256 for document in documents)
    if digests:
        shown = ", ".join(f"{digest[:12]}…" for digest in digests)
        reasons.append(
            intake_reason(
                "duplicate_document_content", f"the same content is filed more than once: {shown}", "documents"
            )
        )
    return reasons


def intake_reason(code: str, message: str, field: str | None = None) -> Reason:
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return Reason(code=code, message=message, field=field, gate="intake")


def _price_problems(terms: OrderTerms) -> list[Reason]:
    if MIN_UNIT_PRICE_CENTS <= terms.unit_price_cents <= MAX_UNIT_PRICE_CENTS:
        return []
    return [
        intake_reason(
            "unit_price_out_of_band",
            f"unit price {_usd(terms.unit_price_cents)} per chip is outside intake's sanity band "
            f"{_usd(MIN_UNIT_PRICE_CENTS)} to {_usd(MAX_UNIT_PRICE_CENTS)}; check the unit (US cents per chip)",
            "unit_price_cents",
        )
    ]


def _commitment_problems(terms: OrderTerms) -> list[Reason]:
    commitment = terms.domestic_commitment
    if commitment is None or commitment.quantity <= MAX_DOMESTIC_COMMITMENT_RATIO * terms.quantity:
        return []
    return [
        intake_reason(
            "domestic_commitment_implausible",
            f"a commitment to {commitment.quantity} domestic chips is more than {MAX_DOMESTIC_COMMITMENT_RATIO} "
            f"times the {terms.quantity} H200 ordered",
            "domestic_commitment.quantity",
        )
    ]


def claim_problems(command: SubmitOrder, arrival: datetime, window: Window) -> list[Reason]:
    """A submitted_at too far after or before the submission's arrival: the sender's clock, or a backdating."""
    claim = command.submitted_at
    if arrival - window.max_behind <= claim <= arrival + window.max_ahead:
        return []
    offset = claim - arrival
    side = "after" if offset > timedelta(0) else "before"
    return [
        intake_reason(
            "implausible_submitted_at",
            f"submitted_at {claim.isoformat()} is {span(abs(offset))} {side} the submission arrived "
            f"({arrival.isoformat()}), outside {window.describe()}",
            "submitted_at",
        )
    ]


def _repeated(values: Iterable[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


def _usd(cents: int) -> str:
    return f"{cents / 100:,.2f} USD"
