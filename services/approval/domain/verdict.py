"""Both gates combined into one outcome, and the decision event that states it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict
from uuid import UUID

from schemas.approval import OrderApproved, OrderDenied, OrderHeld
from schemas.base import Message, PolicyRef, Reason
from schemas.intake import OrderPlaced
from services.approval.domain.gates import export_gate, import_gate
from services.approval.domain.state import BuyerPolicy, SharedPolicy, Usage

Outcome = Literal["approve", "deny", "hold"]


@dataclass(frozen=True)
class Cause:
    """The input a decision answers (its envelope id) and the partition clock once it is seen: the decision time."""

    event_id: UUID
    at: datetime


@dataclass(frozen=True)
class Evaluation:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    """Failed checks (deny and hold alike) for a denial or a hold; conditions for an approval."""
    refs: tuple[PolicyRef, ...]
    quantity: int = 0
    licence_id: str = ""
    tranche_id: str = ""


class DecisionFields(TypedDict):
    order_id: UUID
    buyer_id: str
    pool_id: str
    policy_refs: tuple[PolicyRef, ...]
    cause_event_id: UUID
    decided_at: datetime


def unique(refs: tuple[PolicyRef, ...]) -> tuple[PolicyRef, ...]:
    return tuple(dict.fromkeys(refs))


def decision_fields(order: OrderPlaced, refs: tuple[PolicyRef, ...], cause: Cause) -> DecisionFields:
    return DecisionFields(
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        pool_id=order.pool_id,
        policy_refs=unique(refs),
        cause_event_id=cause.event_id,
        decided_at=cause.at,
    )


def evaluate(
    order: OrderPlaced,
    document_kinds: frozenset[str],
    policy: BuyerPolicy,
    shared: SharedPolicy,
    usage: Usage,
    at: datetime,
) -> Evaluation:
    """Run both gates at `at`: any deny wins, then any hold, else approve as much as licence and quota allow."""
    export = export_gate(policy, shared, usage.licence, at)
    china = import_gate(order, document_kinds, policy, shared, usage.tranche, at)
    findings = export.findings + china.findings
    refs = unique(export.refs + china.refs)
    reasons = tuple(item.reason for item in findings)
    licence, quota = export.allowance, china.allowance
    if findings or licence is None or quota is None:
        outcome: Outcome = "deny" if any(item.verdict == "deny" for item in findings) else "hold"
        return Evaluation(outcome, reasons, refs)
    quantity = min(order.quantity, licence.remaining, quota.remaining)
    conditions: list[Reason] = []
    if quantity < order.quantity and licence.remaining == quantity:
        message = f"approved {quantity} of {order.quantity}: what is left on licence {licence.source_id}"
        conditions.append(Reason(code="reduced_to_licence", message=message, field="quantity", gate="us_export"))
    if quantity < order.quantity and quota.remaining == quantity:
        message = f"approved {quantity} of {order.quantity}: what is left of the quota in tranche {quota.source_id}"
        conditions.append(Reason(code="reduced_to_quota", message=message, field="quantity", gate="cn_import"))
    return Evaluation("approve", tuple(conditions), refs, quantity, licence.source_id, quota.source_id)


def decision(order: OrderPlaced, evaluation: Evaluation, cause: Cause) -> Message:
    fields = decision_fields(order, evaluation.refs, cause)
    if evaluation.outcome == "deny":
        return OrderDenied(**fields, reasons=evaluation.reasons)
    if evaluation.outcome == "hold":
        return OrderHeld(**fields, reasons=evaluation.reasons)
    return OrderApproved(
        **fields,
        requested_quantity=order.quantity,
        approved_quantity=evaluation.quantity,
        licence_id=evaluation.licence_id,
        tranche_id=evaluation.tranche_id,
        conditions=evaluation.reasons,
    )
