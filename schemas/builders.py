"""Builders of scenario data: the messages ops and upstream systems publish, with valid defaults, for the end-to-end
tests, the fault drills and the pipeline benchmark (one market, not three).

Builders return payloads; `services.ops.publish.publish` wraps each in an envelope whose id is derived from
its content and whose time is its business time, exactly as `python -m services.ops publish` does. Every
time is counted in minutes from T0, so a scenario reads as a timeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from schemas.base import Message
from schemas.envelope import order_id_for
from schemas.fulfilment import RecordFulfilmentStep, Step
from schemas.intake import (
    CancelOrder,
    DeclaredUse,
    DeliverySite,
    DomesticChipCommitment,
    SubmitOrder,
    SupportingDocument,
)
from schemas.policy import (
    AllocationPolicySet,
    DeniedPartyListed,
    ExportLicenceIssued,
    ImporterAuthorised,
    ImporterReinstated,
    ImporterRevoked,
    ImporterSuspended,
    ImportUseRulesSet,
    SubmissionWindowSet,
    TrancheQuotaSet,
)
from schemas.supply import BatchManufactured

T0 = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
POOL = "h200"
BIS = "US Department of Commerce, BIS"
MOFCOM = "PRC Ministry of Commerce"
DENIED_LIST = "us-denied-parties"
USE_RULES = "cn-use-rules"
UNIT_PRICE_CENTS = 2_500_000  # about 25,000 USD a chip, as the article implies
RESEARCH_AND_INFERENCE = {"ai_research": 70, "inference": 30}
Rule = Literal["first_approved_first_served", "pro_rata"]


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def order_id(buyer: str, ref: str) -> UUID:
    return order_id_for(buyer, ref)


def licence_id(buyer: str) -> str:
    return f"BIS-H200-{buyer.upper()}"


# --------------------------------------------------------------------------------------------------- policies


def use_rules(
    *,
    revision: int = 1,
    minute: float = 0,
    necessary: tuple[str, ...] = ("ai_research", "ai_training", "inference"),
    documents: tuple[str, ...] = ("end_use_statement",),
    max_inference: int = 50,
    min_domestic: int = 20,
) -> ImportUseRulesSet:
    return ImportUseRulesSet(
        policy_id=USE_RULES,
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        necessary_uses=necessary,
        required_document_kinds=documents,
        max_inference_share_pct=max_inference,
        min_domestic_commitment_pct=min_domestic,
    )


def licence(buyer: str, quantity: int, *, revision: int = 1, minute: float = 0) -> ExportLicenceIssued:
    """A US export licence valid a year either side of T0."""
    return ExportLicenceIssued(
        policy_id=f"us-licence/{licence_id(buyer)}",
        revision=revision,
        effective_at=at(minute),
        issued_by=BIS,
        licence_id=licence_id(buyer),
        buyer_id=buyer,
        quantity=quantity,
        valid_from=T0 - YEAR,
        valid_until=T0 + 10 * YEAR,  # outlasts any run: decisions are made at the time the test runs
    )


def importer(buyer: str, *, revision: int = 1, minute: float = 0) -> ImporterAuthorised:
    return ImporterAuthorised(
        policy_id=f"cn-importer/{buyer}",
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        buyer_id=buyer,
        buyer_name=buyer.title(),
    )


def importer_suspended(buyer: str, *, revision: int, minute: float = 0) -> ImporterSuspended:
    return ImporterSuspended(
        policy_id=f"cn-importer/{buyer}",
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        buyer_id=buyer,
        reason="document review",
    )


def importer_reinstated(buyer: str, *, revision: int, minute: float = 0) -> ImporterReinstated:
    return ImporterReinstated(
        policy_id=f"cn-importer/{buyer}",
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        buyer_id=buyer,
        reason="review passed",
    )


def importer_revoked(buyer: str, *, revision: int, minute: float = 0) -> ImporterRevoked:
    return ImporterRevoked(
        policy_id=f"cn-importer/{buyer}",
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        buyer_id=buyer,
        reason="cybersecurity review",
    )


def quota(buyer: str, quantity: int, *, tranche: str = "T1", revision: int = 1, minute: float = 0) -> TrancheQuotaSet:
    """An import quota in a tranche open a year either side of T0."""
    return TrancheQuotaSet(
        policy_id=f"cn-quota/{tranche}/{buyer}",
        revision=revision,
        effective_at=at(minute),
        issued_by=MOFCOM,
        tranche_id=tranche,
        buyer_id=buyer,
        quantity=quantity,
        opens_at=T0 - YEAR,
        closes_at=T0 + 10 * YEAR,
    )


def denied_party(buyer: str, *, revision: int, minute: float = 0) -> DeniedPartyListed:
    """`revision` counts the listings of the one denied-party list: 1 for the first buyer listed, and so on."""
    return DeniedPartyListed(
        policy_id=DENIED_LIST,
        revision=revision,
        effective_at=at(minute),
        issued_by=BIS,
        buyer_id=buyer,
        reason="entity list",
    )


def submission_window(*, behind: timedelta = 2 * YEAR, ahead: timedelta = timedelta(days=1)) -> SubmissionWindowSet:
    """A window that accepts the claims of these scenarios: their submitted_at are counted from T0, long before
    the broker's time of their arrival (the tests run after T0); in force from before T0 on."""
    return SubmissionWindowSet(
        policy_id="intake/submission-window",
        revision=1,
        effective_at=T0 - YEAR,
        issued_by="ops",
        max_ahead_s=int(ahead.total_seconds()),
        max_behind_s=int(behind.total_seconds()),
    )


def allocation_rule(
    rule: Rule = "first_approved_first_served", *, pool: str = POOL, revision: int = 1
) -> AllocationPolicySet:
    return AllocationPolicySet(
        policy_id=f"allocation/{pool}",
        revision=revision,
        effective_at=at(0),
        issued_by="ops",
        pool_id=pool,
        rule=rule,
    )


def cleared_buyer(buyer: str, quantity: int, *, licensed: int | None = None) -> list[Message]:
    """Both governments' go-ahead for a buyer: a US licence, China's import authorisation and a quota."""
    return [licence(buyer, quantity if licensed is None else licensed), importer(buyer), quota(buyer, quantity)]


# ----------------------------------------------------------------------------------------------- orders, supply


def document(kind: str = "end_use_statement", number: int = 1) -> SupportingDocument:
    return SupportingDocument(document_id=f"DOC-{kind}-{number}", kind=kind, sha256=f"{number:064x}")


def submit(
    buyer: str,
    ref: str,
    quantity: int,
    *,
    minute: float = 0,
    pool: str = POOL,
    uses: dict[str, int] | None = None,
    documents: tuple[str, ...] = ("end_use_statement",),
    domestic_pct: int = 40,
) -> SubmitOrder:
    """A purchase order that passes intake; by default research and inference uses and 40% domestic chips."""
    committed = quantity * domestic_pct // 100
    return SubmitOrder(
        buyer_id=buyer,
        buyer_name=buyer.title(),
        upstream_ref=ref,
        pool_id=pool,
        quantity=quantity,
        unit_price_cents=UNIT_PRICE_CENTS,
        declared_uses=tuple(DeclaredUse(use=u, share_pct=p) for u, p in (uses or RESEARCH_AND_INFERENCE).items()),
        documents=tuple(document(kind, n) for n, kind in enumerate(documents, start=1)),
        domestic_commitment=DomesticChipCommitment(supplier="Huawei Ascend", quantity=committed) if committed else None,
        delivery_site=DeliverySite(site_id="BJ-DC-3", city="Beijing"),
        submitted_at=at(minute),
    )


def cancel(buyer: str, ref: str, *, minute: float = 0) -> CancelOrder:
    return CancelOrder(buyer_id=buyer, upstream_ref=ref, reason="plans changed", requested_at=at(minute))


def batch(batch_id: str, quantity: int, *, minute: float = 0, pool: str = POOL) -> BatchManufactured:
    return BatchManufactured(
        batch_id=batch_id, pool_id=pool, quantity=quantity, site="TSMC Fab 18, Tainan", ready_at=at(minute)
    )


def step(allocation_id: UUID | str, step_: Step, *, minute: float, note: str | None = None) -> RecordFulfilmentStep:
    return RecordFulfilmentStep(allocation_id=UUID(str(allocation_id)), step=step_, at=at(minute), note=note)


def steps(allocation_id: UUID | str, *path: Step, minute: float, every: float = 60) -> list[RecordFulfilmentStep]:
    """A shipment's reported steps, `every` minutes apart from `minute` on."""
    return [step(allocation_id, s, minute=minute + n * every) for n, s in enumerate(path)]


# --------------------------------------------------------------------------------------------------- streams


@dataclass
class Market:
    """Many buyers, each cleared by both governments for `quota` chips, ordering in lots of `lot` chips."""

    prefix: str
    buyers: int
    quota: int
    lot: int
    pool: str = POOL
    orders_per_buyer: int = 5
    submitted: list[SubmitOrder] = field(default_factory=list)

    @property
    def buyer_ids(self) -> list[str]:
        return [f"{self.prefix}-b{n:02d}" for n in range(self.buyers)]

    def policies(self) -> list[Message]:
        """The use rules, each buyer cleared, and the pool's allocation rule (a pool without one allocates nothing)."""
        cleared = (m for buyer in self.buyer_ids for m in cleared_buyer(buyer, self.quota))
        return [use_rules(), *cleared, allocation_rule(pool=self.pool)]

    def orders(self) -> list[SubmitOrder]:
        """Round robin over the buyers, one minute apart: the n-th order of each buyer is ref PO-n."""
        made = [
            submit(buyer, f"{self.prefix}-PO-{n}", self.lot, minute=1 + n * self.buyers + b, pool=self.pool)
            for n in range(self.orders_per_buyer)
            for b, buyer in enumerate(self.buyer_ids)
        ]
        self.submitted.extend(made)
        return made


def interleave(orders: Iterable[Message], batches: Iterable[Message], every: int) -> list[Message]:
    """Orders with a batch after each `every` of them (batches left over go last)."""
    pending = list(batches)
    stream: list[Message] = []
    for n, order in enumerate(orders, start=1):
        stream.append(order)
        if n % every == 0 and pending:
            stream.append(pending.pop(0))
    return stream + pending
