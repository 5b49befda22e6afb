"""Intake keeps an order's terms as a fingerprint (issue #9): a resend must be told exactly the terms that differ
from the first submission, as comparing the terms themselves tells (lists whose order means nothing compared as
sets), and the documents on file come back as they were filed."""

from __future__ import annotations

from typing import Any

from builders_intake import document, order_terms
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.intake import OrderTerms, SupportingDocument
from services.intake.domain.terms import (
    TERM_FIELDS,
    changed_terms,
    fingerprint,
    pack_documents,
    unpack_documents,
)

USES = [{"use": "ai_research", "share_pct": 70}, {"use": "inference", "share_pct": 30}]
OTHER_USES = [{"use": "ai_research", "share_pct": 60}, {"use": "inference", "share_pct": 40}]

variants: dict[str, st.SearchStrategy[Any]] = {
    "buyer_name": st.sampled_from(["ByteDance Ltd.", "ByteDance"]),
    "upstream_ref": st.sampled_from(["BD-PO-1", "BD-PO-2"]),
    "quantity": st.sampled_from([150_000, 150_001]),
    "unit_price_cents": st.sampled_from([2_500_000, 2_400_000]),
    "declared_uses": st.sampled_from([USES, USES[::-1], OTHER_USES, [{"use": "ai_research", "share_pct": 100}]]),
    "documents": st.sampled_from(
        [[document(1)], [document(1), document(2)], [document(2), document(1)], [document(1), document(1)], []]
    ),
    "domestic_commitment": st.sampled_from(
        [None, {"supplier": "Huawei Ascend", "quantity": 50_000}, {"supplier": "Cambricon", "quantity": 50_000}]
    ),
    "delivery_site": st.sampled_from(
        [{"site_id": "BJ-DC-3", "city": "Beijing"}, {"site_id": "SH-1", "city": "Shanghai"}]
    ),
}
terms_strategy = st.fixed_dictionaries({}, optional=variants).map(lambda chosen: OrderTerms(**order_terms(**chosen)))


def differing(first: OrderTerms, second: OrderTerms) -> list[str]:
    """The oracle: compare the values, lists of uses and documents as sets (intake's rule, docs: a resend)."""

    def comparable(terms: OrderTerms, name: str) -> object:
        value = getattr(terms, name)
        return frozenset(value) if name in ("declared_uses", "documents") else value

    return [name for name in TERM_FIELDS if comparable(first, name) != comparable(second, name)]


@settings(max_examples=400, deadline=None)
@given(terms_strategy, terms_strategy)
def test_the_fingerprints_name_exactly_the_terms_that_differ(first: OrderTerms, second: OrderTerms) -> None:
    assert changed_terms(fingerprint(first), fingerprint(second)) == differing(first, second)


def test_documents_on_file_come_back_as_filed_in_filing_order() -> None:
    filed: dict[str, SupportingDocument] = {d.document_id: d for d in (document(3), document(1), document(2))}
    assert list(unpack_documents(pack_documents(filed)).items()) == list(filed.items())
    assert unpack_documents(pack_documents({})) == {}
