"""Input envelopes for the approval core (h200.approval.inbox), drawn from the article's scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from schemas.allocation import OrderClosed
from schemas.base import Message
from schemas.clock import ClockTicked
from schemas.envelope import Arrival, Envelope, derive_id, make_envelope, order_id_for
from schemas.intake import (
    DeclaredUse,
    DeliverySite,
    DomesticChipCommitment,
    OrderCancelled,
    OrderDocumentsAdded,
    OrderPlaced,
    SupportingDocument,
)
from schemas.policy import (
    DeniedPartyDelisted,
    DeniedPartyListed,
    ExportLicenceIssued,
    ExportLicenceRevoked,
    ImporterAuthorised,
    ImporterReinstated,
    ImporterRevoked,
    ImporterSuspended,
    ImportUseRulesSet,
    TrancheQuotaSet,
)

T0 = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
NAMES = {"bytedance": "ByteDance Ltd.", "alibaba": "Alibaba Group", "tencent": "Tencent Holdings", "baidu": "Baidu"}
DENIED_LIST = "us-denied-parties"
USE_RULES = "cn-use-rules"
RESEARCH_AND_INFERENCE = {"ai_research": 70, "inference": 30}


def at(minutes: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes)


def envelope(payload: Message, key: str, when: datetime, message_id: UUID | None = None) -> Envelope[Any]:
    return make_envelope(payload, key=key, producer="test", occurred_at=when, message_id=message_id or uuid4())


def document(kind: str, number: int = 1) -> SupportingDocument:
    return SupportingDocument(document_id=f"DOC-{kind}-{number}", kind=kind, sha256=f"{number:064x}")


def arrived(message: Envelope[Any], minute: int, partition: int = 0, offset: int = 0) -> Envelope[Any]:
    """`message` as read from approval inbox partition `partition`, appended by the broker at `minute`."""
    return message.arrived(Arrival("h200.approval.inbox", partition, offset, at(minute)))


def tick(minute: int, *, partition: int | None = None) -> Envelope[Any]:
    """The clock at `minute`; read from inbox partition `partition` (arriving that minute) if given."""
    ticked = envelope(ClockTicked(at=at(minute)), "h200", at(minute), derive_id("test-tick", minute))
    return ticked if partition is None else arrived(ticked, minute, partition, offset=minute)


def effective_at(policy: Envelope[Any], minute: int) -> Envelope[Any]:
    """The same policy event (sent at the same time), but in force only from `minute`."""
    payload = policy.payload.model_copy(update={"effective_at": at(minute)})
    return envelope(payload, policy.key, policy.occurred_at, policy.id)


# ----------------------------------------------------------------------------------------------------- orders


def order_id(buyer: str, ref: str) -> UUID:
    return order_id_for(buyer, ref)


def order_placed(
    buyer: str,
    ref: str,
    quantity: int,
    *,
    minute: int = 0,
    uses: dict[str, int] | None = None,
    documents: tuple[str, ...] = ("end_use_statement",),
    domestic: int | None = None,
) -> Envelope[Any]:
    """An order as intake recorded it; by default research and inference uses and a 40% domestic commitment."""
    committed = quantity * 40 // 100 if domestic is None else domestic
    payload = OrderPlaced(
        order_id=order_id(buyer, ref),
        buyer_id=buyer,
        buyer_name=NAMES.get(buyer, buyer),
        upstream_ref=ref,
        quantity=quantity,
        unit_price_cents=2_500_000,
        declared_uses=tuple(
            DeclaredUse(use=use, share_pct=pct) for use, pct in (uses or RESEARCH_AND_INFERENCE).items()
        ),
        documents=tuple(document(kind) for kind in documents),
        domestic_commitment=DomesticChipCommitment(supplier="Huawei Ascend", quantity=committed) if committed else None,
        delivery_site=DeliverySite(site_id="BJ-DC-3", city="Beijing"),
        placed_at=at(minute),
    )
    return envelope(payload, buyer, at(minute))


def documents_added(buyer: str, ref: str, kinds: tuple[str, ...], *, minute: int = 0) -> Envelope[Any]:
    payload = OrderDocumentsAdded(
        order_id=order_id(buyer, ref),
        buyer_id=buyer,
        documents=tuple(document(kind, 2) for kind in kinds),
        added_at=at(minute),
    )
    return envelope(payload, buyer, at(minute))


def order_cancelled(buyer: str, ref: str, *, minute: int = 0) -> Envelope[Any]:
    payload = OrderCancelled(
        order_id=order_id(buyer, ref), buyer_id=buyer, reason="plan changed", cancelled_at=at(minute)
    )
    return envelope(payload, buyer, at(minute))


# --------------------------------------------------------------------------------------------------- policies


def _policy(revision: int, minute: int, issued_by: str) -> dict[str, Any]:
    return {"revision": revision, "effective_at": at(minute), "issued_by": issued_by}


BIS = "US Department of Commerce, BIS"
MOFCOM = "PRC Ministry of Commerce"


def licence_id(buyer: str) -> str:
    return f"BIS-H200-{buyer.upper()}"


def licence_issued(
    buyer: str,
    quantity: int,
    *,
    licence: str | None = None,
    revision: int = 1,
    minute: int = 0,
    valid_from: datetime = T0 - YEAR,
    valid_until: datetime = T0 + YEAR,
) -> Envelope[Any]:
    licence = licence or licence_id(buyer)
    payload = ExportLicenceIssued(
        **_policy(revision, minute, BIS),
        policy_id=f"us-licence/{licence}",
        licence_id=licence,
        buyer_id=buyer,
        quantity=quantity,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    return envelope(payload, buyer, at(minute))


def licence_revoked(buyer: str, *, licence: str | None = None, revision: int = 2, minute: int = 0) -> Envelope[Any]:
    licence = licence or licence_id(buyer)
    payload = ExportLicenceRevoked(
        **_policy(revision, minute, BIS),
        policy_id=f"us-licence/{licence}",
        licence_id=licence,
        buyer_id=buyer,
        reason="licence withdrawn",
    )
    return envelope(payload, buyer, at(minute))


def denied_party_listed(buyer: str, *, revision: int, minute: int = 0, list_id: str = DENIED_LIST) -> Envelope[Any]:
    payload = DeniedPartyListed(**_policy(revision, minute, BIS), policy_id=list_id, buyer_id=buyer, reason="listed")
    return envelope(payload, buyer, at(minute))


def denied_party_delisted(buyer: str, *, revision: int, minute: int = 0, list_id: str = DENIED_LIST) -> Envelope[Any]:
    payload = DeniedPartyDelisted(
        **_policy(revision, minute, BIS), policy_id=list_id, buyer_id=buyer, reason="delisted"
    )
    return envelope(payload, buyer, at(minute))


def order_closed(
    buyer: str, ref: str, approved: int, kept: int, why: str = "cancelled", *, minute: int = 0
) -> Envelope[Any]:
    """The order book's word that an order is done, keeping `kept` chips that shipped."""
    payload = OrderClosed(
        order_id=order_id(buyer, ref),
        pool_id="h200",
        buyer_id=buyer,
        approved_quantity=approved,
        kept_quantity=kept,
        why=why,  # type: ignore[arg-type]
        cause_event_id=derive_id("test-close", buyer, ref, minute),
        closed_at=at(minute),
    )
    return envelope(payload, buyer, at(minute))


def importer_authorised(buyer: str, *, revision: int = 1, minute: int = 0) -> Envelope[Any]:
    payload = ImporterAuthorised(
        **_policy(revision, minute, MOFCOM),
        policy_id=f"cn-importer/{buyer}",
        buyer_id=buyer,
        buyer_name=NAMES.get(buyer, buyer),
    )
    return envelope(payload, buyer, at(minute))


def importer_suspended(buyer: str, *, revision: int, minute: int = 0) -> Envelope[Any]:
    payload = ImporterSuspended(
        **_policy(revision, minute, MOFCOM), policy_id=f"cn-importer/{buyer}", buyer_id=buyer, reason="review"
    )
    return envelope(payload, buyer, at(minute))


def importer_reinstated(buyer: str, *, revision: int, minute: int = 0) -> Envelope[Any]:
    payload = ImporterReinstated(
        **_policy(revision, minute, MOFCOM), policy_id=f"cn-importer/{buyer}", buyer_id=buyer, reason="review done"
    )
    return envelope(payload, buyer, at(minute))


def importer_revoked(buyer: str, *, revision: int, minute: int = 0) -> Envelope[Any]:
    payload = ImporterRevoked(
        **_policy(revision, minute, MOFCOM), policy_id=f"cn-importer/{buyer}", buyer_id=buyer, reason="security"
    )
    return envelope(payload, buyer, at(minute))


def tranche_quota_set(
    buyer: str,
    quantity: int,
    *,
    tranche: str = "T1",
    revision: int = 1,
    minute: int = 0,
    opens_at: datetime = T0 - YEAR,
    closes_at: datetime = T0 + YEAR,
) -> Envelope[Any]:
    payload = TrancheQuotaSet(
        **_policy(revision, minute, MOFCOM),
        policy_id=f"cn-quota/{tranche}/{buyer}",
        tranche_id=tranche,
        buyer_id=buyer,
        quantity=quantity,
        opens_at=opens_at,
        closes_at=closes_at,
    )
    return envelope(payload, buyer, at(minute))


def use_rules_set(
    *,
    revision: int = 1,
    minute: int = 0,
    necessary: tuple[str, ...] = ("ai_research", "ai_training", "inference"),
    documents: tuple[str, ...] = ("end_use_statement",),
    max_inference: int = 50,
    min_domestic: int = 20,
) -> Envelope[Any]:
    payload = ImportUseRulesSet(
        **_policy(revision, minute, MOFCOM),
        policy_id=USE_RULES,
        necessary_uses=necessary,
        required_document_kinds=documents,
        max_inference_share_pct=max_inference,
        min_domestic_commitment_pct=min_domestic,
    )
    return envelope(payload, USE_RULES, at(minute))


# The article: ByteDance, Alibaba and Tencent authorised for more than 400,000 H200 in total.
ARTICLE_QUOTAS = {"bytedance": 150_000, "alibaba": 150_000, "tencent": 120_000}


def article_policies() -> list[Envelope[Any]]:
    """US licences for the three and for Baidu, China's use rules, and import approval for the three only."""
    inputs = [use_rules_set()]
    for buyer, quota in ARTICLE_QUOTAS.items():
        inputs += [licence_issued(buyer, quota), importer_authorised(buyer), tranche_quota_set(buyer, quota)]
    inputs.append(licence_issued("baidu", 100_000))
    return inputs
