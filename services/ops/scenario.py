"""The article's story as data: who is authorised, who asks for what, which batches arrive, what changes.

ByteDance, Alibaba and Tencent are authorised to import a little over 400,000 H200 at about $25,000 a chip;
eleven orders ask for 2.31 million; TSMC batches arrive over weeks, far short of demand; a later policy
change authorises more buyers and switches the pool to pro-rata; China revokes one importer; one shipment
is held at customs, one is lost. Every number here is scenario data, not a rule of the system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from schemas.base import Message
from schemas.intake import AddOrderDocuments, SubmitOrder, SupportingDocument
from schemas.policy import (
    AllocationPolicySet,
    DeniedPartyListed,
    ExportLicenceIssued,
    ImporterAuthorised,
    ImporterRevoked,
    ImportUseRulesSet,
    SubmissionWindowSet,
    TrancheQuotaSet,
)
from schemas.supply import BatchManufactured

PRICE_CENTS = 2_500_000  # about $25,000 a chip: $10 billion for 400,000
NAMES = {
    "bytedance": "ByteDance Ltd.",
    "alibaba": "Alibaba Group",
    "tencent": "Tencent Holdings",
    "baidu": "Baidu Inc.",
    "deepseek": "DeepSeek AI",
    "moonshot": "Moonshot AI",
    "zhipu": "Zhipu AI",
    "sugon": "Sugon Information",
    "iflytek": "iFlytek Co.",
}


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


LICENCES_END = datetime(2036, 12, 31, tzinfo=UTC)
"""When the story's licences and tranches end. The story is told in January 2026, but its decisions are made at
the time the demo runs (the broker stamps arrivals, docs/time.md): the windows must outlast any run of the demo,
or every approval would be expired on the first tick."""


def _doc(buyer: str, ref: str, kind: str) -> SupportingDocument:
    digest = sha256(f"{buyer}/{ref}/{kind}".encode()).hexdigest()
    return SupportingDocument(document_id=f"{ref}-{kind}", kind=kind, sha256=digest)


def order(
    buyer: str,
    ref: str,
    quantity: int,
    uses: dict[str, int],
    when: datetime,
    docs: tuple[str, ...] = ("end_use_statement", "usage_plan"),
) -> SubmitOrder:
    return SubmitOrder(
        buyer_id=buyer,
        buyer_name=NAMES[buyer],
        upstream_ref=ref,
        quantity=quantity,
        unit_price_cents=PRICE_CENTS,
        declared_uses=tuple({"use": u, "share_pct": s} for u, s in uses.items()),
        documents=tuple(_doc(buyer, ref, kind) for kind in docs),
        domestic_commitment={"supplier": "Huawei Ascend", "quantity": quantity // 4},
        delivery_site={"site_id": f"{buyer.upper()}-DC1", "city": "Ulanqab"},
        submitted_at=when,
    )


def _licence(buyer: str, quantity: int, when: datetime) -> ExportLicenceIssued:
    licence = f"BIS-H200-{buyer.upper()}"
    return ExportLicenceIssued(
        policy_id=f"us-licence/{licence}",
        revision=1,
        effective_at=when,
        issued_by="US Commerce, BIS",
        licence_id=licence,
        buyer_id=buyer,
        quantity=quantity,
        valid_from=when,
        valid_until=LICENCES_END,
    )


def _importer(buyer: str, quota: int, when: datetime) -> list[Message]:
    return [
        ImporterAuthorised(
            policy_id=f"cn-importer/{buyer}",
            revision=1,
            effective_at=when,
            issued_by="MOFCOM",
            buyer_id=buyer,
            buyer_name=NAMES[buyer],
        ),
        TrancheQuotaSet(
            policy_id=f"cn-quota/2026-T1/{buyer}",
            revision=1,
            effective_at=when,
            issued_by="MOFCOM",
            tranche_id="2026-T1",
            buyer_id=buyer,
            quantity=quota,
            opens_at=when,
            closes_at=LICENCES_END,
        ),
    ]


def _batch(batch: str, quantity: int, site: str, when: datetime) -> BatchManufactured:
    return BatchManufactured(batch_id=batch, pool_id="h200", quantity=quantity, site=site, ready_at=when)


MIX = {"ai_research": 50, "model_training": 30, "inference": 20}
REVOKED = "deepseek"
"""The importer China revokes: its unshipped chips are recalled from fulfilment and allocated again."""


@dataclass(frozen=True)
class Phase:
    title: str
    messages: Callable[[], list[Message]]


def rules() -> list[Message]:
    t = at(1, 20)
    return [
        # The story's orders claim dates early in 2026 and are played long after: intake accepts claims that old.
        SubmissionWindowSet(
            policy_id="intake/submission-window",
            revision=1,
            effective_at=t,
            issued_by="h200 operations",
            max_ahead_s=86_400,
            max_behind_s=2 * 366 * 86_400,
        ),
        ImportUseRulesSet(
            policy_id="cn-use-rules",
            revision=1,
            effective_at=t,
            issued_by="MOFCOM / NDRC",
            necessary_uses=("ai_research", "model_training", "scientific_computing", "inference"),
            required_document_kinds=("end_use_statement", "usage_plan"),
            max_inference_share_pct=30,
            min_domestic_commitment_pct=20,
        ),
        AllocationPolicySet(
            policy_id="allocation/h200",
            revision=1,
            effective_at=t,
            issued_by="h200 operations",
            pool_id="h200",
            rule="first_approved_first_served",
        ),
        *(
            _licence(b, q, t)
            for b, q in (
                ("bytedance", 200_000),
                ("alibaba", 150_000),
                ("tencent", 150_000),
                ("baidu", 120_000),
                ("deepseek", 80_000),
                ("moonshot", 60_000),
            )
        ),
        DeniedPartyListed(
            policy_id="us-denied-parties",
            revision=1,
            effective_at=t,
            issued_by="US Commerce, BIS",
            buyer_id="sugon",
            reason="Entity List",
        ),
        *_importer("bytedance", 150_000, t),
        *_importer("alibaba", 140_000, t),
        *_importer("tencent", 120_000, t),
    ]


def orders() -> list[Message]:
    return [
        order("bytedance", "BD-2026-001", 300_000, MIX, at(1, 26)),
        order("bytedance", "BD-2026-002", 250_000, MIX, at(1, 26, 10)),
        order("alibaba", "AL-2026-001", 400_000, {"model_training": 60, "ai_research": 25, "inference": 15}, at(1, 26)),
        order("tencent", "TC-2026-001", 350_000, {"inference": 60, "model_training": 40}, at(1, 27)),
        order(
            "tencent", "TC-2026-002", 120_000, {"ai_research": 70, "inference": 30}, at(1, 27), ("end_use_statement",)
        ),
        order("baidu", "BA-2026-001", 300_000, MIX, at(1, 27)),
        order("deepseek", "DS-2026-001", 200_000, MIX, at(1, 27)),
        order("moonshot", "MS-2026-001", 150_000, MIX, at(1, 28)),
        order("zhipu", "ZP-2026-001", 100_000, MIX, at(1, 28)),
        order("sugon", "SG-2026-001", 80_000, MIX, at(1, 28)),
        order("iflytek", "IF-2026-001", 60_000, MIX, at(1, 28)),
        # An upstream system retries: the same order again must change nothing.
        order("bytedance", "BD-2026-001", 300_000, MIX, at(1, 26)),
    ]


def first_batches() -> list[Message]:
    return [
        _batch("TSMC-B01", 60_000, "TSMC Fab 18, Tainan", at(2, 2)),
        _batch("TSMC-B02", 45_000, "TSMC Fab 15, Taichung", at(2, 9)),
        _batch("TSMC-B03", 70_000, "TSMC Fab 18, Tainan", at(2, 16)),
    ]


def policy_change() -> list[Message]:
    t = at(2, 20)
    return [
        AddOrderDocuments(
            buyer_id="tencent",
            upstream_ref="TC-2026-002",
            requested_at=at(2, 18),
            documents=(_doc("tencent", "TC-2026-002", "usage_plan"),),
        ),
        *_importer("baidu", 80_000, t),
        *_importer("deepseek", 50_000, t),
        AllocationPolicySet(
            policy_id="allocation/h200",
            revision=2,
            effective_at=t,
            issued_by="h200 operations",
            pool_id="h200",
            rule="pro_rata",
        ),
    ]


def more_batches() -> list[Message]:
    return [
        _batch("TSMC-B04", 55_000, "TSMC Fab 15, Taichung", at(2, 23)),
        _batch("TSMC-B05", 65_000, "TSMC Fab 18, Tainan", at(3, 2)),
        _batch("TSMC-B06", 50_000, "TSMC Fab 14, Tainan", at(3, 9)),
    ]


def revocation() -> list[Message]:
    return [
        ImporterRevoked(
            policy_id=f"cn-importer/{REVOKED}",
            revision=2,
            effective_at=at(3, 10),
            issued_by="MOFCOM",
            buyer_id=REVOKED,
            reason="cybersecurity review of the buyer's data centres",
        ),
    ]


def last_batch() -> list[Message]:
    return [_batch("TSMC-B07", 40_000, "TSMC Fab 18, Tainan", at(3, 23))]


LATER = "moonshot"
"""Licensed by the US from the start; China authorises it with effect a little after the demo publishes that."""
SHORTENED = "alibaba"
"""The US ends its licence a little after the demo publishes that: its open approvals expire."""
AUTHORISED_AFTER = timedelta(seconds=15)
EXPIRES_AFTER = timedelta(seconds=30)


def business_time(now: datetime) -> list[Message]:
    """Two policies that act later than they are published: China authorises Moonshot from `now` + 15 s (with a
    quota in force at once), and a new revision of Alibaba's US licence ends it at `now` + 30 s."""
    licence = _licence(SHORTENED, 150_000, at(1, 20))
    return [
        TrancheQuotaSet(
            policy_id=f"cn-quota/2026-T1/{LATER}",
            revision=1,
            effective_at=now,
            issued_by="MOFCOM",
            tranche_id="2026-T1",
            buyer_id=LATER,
            quantity=40_000,
            opens_at=at(1, 20),
            closes_at=LICENCES_END,
        ),
        ImporterAuthorised(
            policy_id=f"cn-importer/{LATER}",
            revision=1,
            effective_at=now + AUTHORISED_AFTER,
            issued_by="MOFCOM",
            buyer_id=LATER,
            buyer_name=NAMES[LATER],
        ),
        licence.model_copy(update={"revision": 2, "effective_at": now, "valid_until": now + EXPIRES_AFTER}),
    ]


PHASES = (
    Phase("rules: US licences, a denied party, China authorises ByteDance, Alibaba and Tencent", rules),
    Phase("orders: 11 orders for 2.31 million chips (and one retried submission)", orders),
    Phase("supply: three TSMC batches over three weeks", first_batches),
    Phase(
        "policy change: Baidu and DeepSeek authorised, Tencent files its usage plan, pool goes pro-rata", policy_change
    ),
    Phase("supply: three more batches", more_batches),
    Phase("revocation: China revokes DeepSeek's import authorisation", revocation),
)
FINAL = Phase("supply: a last batch after the revocation and the lost shipment", last_batch)


def shipment_plan(index: int, start: datetime, day: timedelta = timedelta(days=1)) -> list[tuple[str, datetime]]:
    """The logistics story of the index-th ledger line: most are delivered, one held at customs, one lost. `day` is
    the story's day (the demo tells nine days in less than a second)."""
    if index == 1:
        return [
            ("packed", start),
            ("shipped", start + day),
            ("held", start + 3 * day),
            ("released", start + 6 * day),
            ("customs_cleared", start + 7 * day),
            ("delivered", start + 9 * day),
        ]
    if index == 2:
        return [("packed", start), ("shipped", start + day), ("lost", start + 4 * day)]
    return [
        ("packed", start),
        ("shipped", start + day),
        ("customs_cleared", start + 3 * day),
        ("delivered", start + 5 * day),
    ]
