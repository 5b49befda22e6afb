"""One valid example of every message, drawn from the article's scenario: for docs, demos and tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import allocation, approval, clock, fulfilment, intake, outcomes, policy, supply
from schemas.base import Message, PolicyRef, Reason
from schemas.envelope import Envelope, derive_id, make_envelope, order_id_for
from schemas.routing import record_key

AT = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
ORDER_ID = order_id_for("bytedance", "BD-PO-2026-0001")
ALLOCATION_ID = derive_id("allocation", "h200", "TSMC-B001", ORDER_ID)
POLICY_REFS = (
    PolicyRef(policy_id="us-licence/BIS-H200-0001", revision=1),
    PolicyRef(policy_id="cn-use-rules", revision=1),
)
_DOC = intake.SupportingDocument(document_id="DOC-1", kind="end_use_statement", sha256="a" * 64)
_TERMS: dict[str, Any] = {
    "buyer_id": "bytedance",
    "buyer_name": "ByteDance Ltd.",
    "upstream_ref": "BD-PO-2026-0001",
    "quantity": 150_000,
    "unit_price_cents": 2_500_000,
    "declared_uses": [{"use": "ai_research", "share_pct": 70}, {"use": "inference", "share_pct": 30}],
    "documents": [_DOC],
    "domestic_commitment": {"supplier": "Huawei Ascend", "quantity": 50_000},
    "delivery_site": {"site_id": "BJ-DC-3", "city": "Beijing"},
}
_POLICY: dict[str, Any] = {"revision": 1, "effective_at": AT, "issued_by": "sample authority"}
_DECISION: dict[str, Any] = {
    "order_id": ORDER_ID,
    "buyer_id": "bytedance",
    "pool_id": "h200",
    "policy_refs": POLICY_REFS,
    "cause_event_id": derive_id("sample-cause"),
    "decided_at": AT,
}
_LINE: dict[str, Any] = {
    "allocation_id": ALLOCATION_ID,
    "pool_id": "h200",
    "order_id": ORDER_ID,
    "buyer_id": "bytedance",
    "batch_id": "TSMC-B001",
    "quantity": 20_000,
    "cause_event_id": derive_id("sample-cause"),
}
_REASON = Reason(code="policy_change", message="sample reason", gate="cn_import")


def sample_payloads() -> list[Message]:
    """A valid instance of every current message type."""
    return [
        intake.SubmitOrder(**_TERMS, submitted_at=AT),
        intake.CancelOrder(
            buyer_id="bytedance", upstream_ref="BD-PO-2026-0001", reason="plan changed", requested_at=AT
        ),
        intake.AddOrderDocuments(
            buyer_id="bytedance", upstream_ref="BD-PO-2026-0001", documents=[_DOC], requested_at=AT
        ),
        intake.OrderPlaced(**_TERMS, order_id=ORDER_ID, placed_at=AT),
        intake.OrderSubmissionRejected(
            buyer_id="bytedance",
            upstream_ref="BD-PO-2026-0002",
            rejected_at=AT,
            reasons=[
                Reason(code="quantity_invalid", message="quantity must be positive", field="quantity", gate="intake")
            ],
        ),
        intake.OrderDocumentsAdded(order_id=ORDER_ID, buyer_id="bytedance", documents=[_DOC], added_at=AT),
        intake.OrderCancelled(order_id=ORDER_ID, buyer_id="bytedance", reason="plan changed", cancelled_at=AT),
        intake.CommandRejected(
            command_id=derive_id("sample-command"),
            command_type="CancelOrder",
            buyer_id="bytedance",
            upstream_ref="BD-PO-2026-0404",
            rejected_at=AT,
            reasons=[Reason(code="unknown_order", message="no order BD-PO-2026-0404 for bytedance", gate="intake")],
        ),
        outcomes.SubmissionUnchanged(
            command_id=derive_id("sample-command"),
            command_type="SubmitOrder",
            buyer_id="bytedance",
            upstream_ref="BD-PO-2026-0001",
            order_id=ORDER_ID,
            reason=Reason(code="already_placed", message="bytedance/BD-PO-2026-0001 is placed", gate="intake"),
            decided_at=AT,
        ),
        outcomes.SubmissionMalformed(
            source_topic="h200.submissions.bytedance",
            source_partition=0,
            source_offset=41,
            record_key="bytedance",
            value_sha256="b" * 64,
            value_length=17,
            code="malformed_json",
            detail="not valid JSON: Expecting value: line 1 column 1 (char 0)",
            buyer_id="bytedance",
            command_id=None,
            correlation_id=None,
            refused_at=AT,
        ),
        policy.ExportLicenceIssued(
            **_POLICY,
            policy_id="us-licence/BIS-H200-0001",
            licence_id="BIS-H200-0001",
            buyer_id="bytedance",
            quantity=200_000,
            valid_from=AT,
            valid_until=datetime(2027, 1, 28, tzinfo=UTC),
        ),
        policy.ExportLicenceRevoked(
            **_POLICY,
            policy_id="us-licence/BIS-H200-0001",
            licence_id="BIS-H200-0001",
            buyer_id="bytedance",
            reason="sample",
        ),
        policy.DeniedPartyListed(**_POLICY, policy_id="us-denied-parties", buyer_id="shady-ai", reason="sample"),
        policy.DeniedPartyDelisted(**_POLICY, policy_id="us-denied-parties", buyer_id="shady-ai", reason="sample"),
        policy.ImporterAuthorised(
            **_POLICY, policy_id="cn-importer/bytedance", buyer_id="bytedance", buyer_name="ByteDance Ltd."
        ),
        policy.ImporterSuspended(**_POLICY, policy_id="cn-importer/bytedance", buyer_id="bytedance", reason="sample"),
        policy.ImporterReinstated(**_POLICY, policy_id="cn-importer/bytedance", buyer_id="bytedance", reason="sample"),
        policy.ImporterRevoked(**_POLICY, policy_id="cn-importer/bytedance", buyer_id="bytedance", reason="sample"),
        policy.TrancheQuotaSet(
            **_POLICY,
            policy_id="cn-quota/T1/bytedance",
            tranche_id="T1",
            buyer_id="bytedance",
            quantity=150_000,
            opens_at=AT,
            closes_at=datetime(2026, 7, 1, tzinfo=UTC),
        ),
        policy.ImportUseRulesSet(
            **_POLICY,
            policy_id="cn-use-rules",
            necessary_uses=["ai_research", "model_training", "inference"],
            required_document_kinds=["end_use_statement"],
            max_inference_share_pct=40,
            min_domestic_commitment_pct=20,
        ),
        policy.AllocationPolicySet(
            **_POLICY,
            policy_id="allocation/h200",
            pool_id="h200",
            rule="first_approved_first_served",
            close_unfilled_after_s=90 * 86_400,
        ),
        policy.SubmissionWindowSet(
            **_POLICY, policy_id="intake/submission-window", max_ahead_s=300, max_behind_s=7 * 86_400
        ),
        clock.ClockTicked(at=AT),
        supply.BatchManufactured(
            batch_id="TSMC-B001", pool_id="h200", quantity=60_000, site="TSMC Fab 18, Tainan", ready_at=AT
        ),
        approval.OrderApproved(
            **_DECISION,
            requested_quantity=150_000,
            approved_quantity=120_000,
            licence_id="BIS-H200-0001",
            tranche_id="T1",
            conditions=[Reason(code="reduced_to_quota", message="approved up to the tranche quota", gate="cn_import")],
        ),
        approval.OrderDenied(
            **_DECISION,
            reasons=[Reason(code="denied_party", message="buyer is on the denied-party list", gate="us_export")],
        ),
        approval.OrderHeld(
            **_DECISION,
            reasons=[Reason(code="document_missing", message="end_use_statement missing", gate="cn_import")],
        ),
        approval.ApprovalSuspended(**_DECISION, reason=_REASON),
        approval.ApprovalReinstated(**_DECISION, reason=_REASON),
        approval.ApprovalRevoked(**_DECISION, reason=_REASON),
        approval.ApprovalCancelled(**_DECISION, reason=_REASON),
        approval.ApprovalExpired(**_DECISION, licence_id="BIS-H200-0001", reason=_REASON),
        clock.ApprovalsPassed(source_partition=0, sources=6, lane=0, lanes=3, at=AT, lane_only=True),
        approval.ApprovalReleased(
            **_DECISION, licence_id="BIS-H200-0001", tranche_id="T1", quantity=100_000, why="revoked"
        ),
        allocation.ChipsAllocated(
            **_LINE,
            rule="first_approved_first_served",
            policy_ref=PolicyRef(policy_id="allocation/h200", revision=1),
            allocated_at=AT,
        ),
        allocation.AllocationReleased(**_LINE, why="delivery_failed", released_at=AT),
        allocation.AllocationRecallRequested(**_LINE, why="approval_revoked", requested_at=AT),
        allocation.AllocationSuspended(**_LINE, suspended_at=AT),
        allocation.AllocationReinstated(**_LINE, reinstated_at=AT),
        allocation.OrderClosed(
            order_id=_LINE["order_id"],
            pool_id="h200",
            buyer_id="bytedance",
            approved_quantity=120_000,
            kept_quantity=60_000,
            why="revoked",
            cause_event_id=derive_id("sample-cause"),
            closed_at=AT,
        ),
        fulfilment.RecordFulfilmentStep(allocation_id=ALLOCATION_ID, step="shipped", at=AT),
        fulfilment.FulfilmentStepRecorded(**_LINE, step="shipped", at=AT),
        fulfilment.DeliveryFailed(**_LINE, outcome="refused", at=AT),
        fulfilment.RecallAnswered(**_LINE, outcome="already_shipped", stage="shipped", at=AT),
        fulfilment.FulfilmentStepRejected(
            allocation_id=ALLOCATION_ID,
            step="delivered",
            cause_event_id=derive_id("sample-cause"),
            at=AT,
            reason=Reason(code="step_out_of_order", message="delivered before shipped", gate="fulfilment"),
        ),
    ]


def sample_envelopes() -> list[Envelope[Message]]:
    return [
        make_envelope(
            payload,
            key=record_key(payload),
            producer="samples",
            occurred_at=AT,
            message_id=derive_id("sample", payload.TYPE, payload.VERSION),
        )
        for payload in sample_payloads()
    ]


def placed_orders(first: int, count: int, buyers: int, name: str) -> list[Envelope[intake.OrderPlaced]]:
    """`count` placed orders numbered from `first`, spread over `buyers` buyers, as intake publishes them: the
    sample order under ids derived from `name` and the number (the same numbers give the same orders)."""
    template = next(p for p in sample_payloads() if isinstance(p, intake.OrderPlaced))
    placed = []
    for n in range(first, first + count):
        payload = template.model_copy(
            update={
                "order_id": uuid.uuid5(uuid.NAMESPACE_URL, f"{name}-{n}"),
                "buyer_id": f"buyer-{n % buyers:03d}",
                "upstream_ref": f"PO-{n}",
                "placed_at": AT + timedelta(seconds=n),
            }
        )
        placed.append(
            make_envelope(
                payload,
                key=payload.buyer_id,
                producer="intake",
                occurred_at=payload.placed_at,
                message_id=payload.order_id,
            )
        )
    return placed
