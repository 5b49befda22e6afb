"""What each event changes in the read models, as Redis commands: a pure function of the event alone.

Counters move by increments, so applying events in any order that respects each order's history gives the
same totals; the store applies each event at most once (by id) and records its position with it.
"""

from __future__ import annotations

from typing import Any

from schemas import approval, intake, policy, supply
from schemas.base import Message
from schemas.envelope import Envelope, order_id_for
from services.projector.lines import ledger_line, shipment
from services.projector.ops import Op
from services.projector.ops import trail as _trail

STATUS_BY_DECISION = {
    approval.OrderApproved: "approved",
    approval.OrderDenied: "denied",
    approval.OrderHeld: "held",
    approval.ApprovalSuspended: "suspended",
    approval.ApprovalReinstated: "approved",
    approval.ApprovalRevoked: "revoked",
    approval.ApprovalCancelled: "cancelled",
    approval.ApprovalExpired: "expired",
}
"""An order's status after each of approval's decisions; ApprovalReleased leaves it as it is (it ends a use of the
licence and quota, not the decision), and markers of approval's progress (ApprovalsPassed) are no decision."""


def _reasons(reasons: Any) -> str:
    return "; ".join(f"{r.code}: {r.message}" for r in reasons)


def _intake(ns: str, e: Envelope[Message], p: Message) -> list[Op]:
    if isinstance(p, intake.OrderPlaced):
        key = f"{ns}:order:{p.order_id}"
        return [
            [
                "HSET",
                key,
                "order_id",
                str(p.order_id),
                "buyer_id",
                p.buyer_id,
                "buyer_name",
                p.buyer_name,
                "upstream_ref",
                p.upstream_ref,
                "pool_id",
                p.pool_id,
                "quantity",
                str(p.quantity),
                "unit_price_cents",
                str(p.unit_price_cents),
                "placed_at",
                p.placed_at.isoformat(),
                # The sender's claim, shown for the record (older orders have none): placed_at orders them.
                *(["submitted_at", p.submitted_at.isoformat()] if p.submitted_at else []),
            ],
            # The decision travels on another topic and may be applied first: it must not be overwritten.
            ["HSETNX", key, "status", "placed"],
            ["SADD", f"{ns}:orders", str(p.order_id)],
            ["SADD", f"{ns}:buyers", p.buyer_id],
            ["HINCRBY", f"{ns}:buyer:{p.buyer_id}", "requested", str(p.quantity)],
            ["HINCRBY", f"{ns}:buyer:{p.buyer_id}", "orders", "1"],
            _trail(ns, p.order_id, e, f"placed for {p.quantity} chips"),
        ]
    if isinstance(p, intake.OrderSubmissionRejected):
        order_id = order_id_for(p.buyer_id, p.upstream_ref)
        if any(reason.code == "conflicting_resubmission" for reason in p.reasons):
            # A resend with other terms is refused; the order recorded under that reference stands.
            return [_trail(ns, order_id, e, f"resubmission refused: {_reasons(p.reasons)}")]
        return [
            [
                "HSET",
                f"{ns}:order:{order_id}",
                "order_id",
                str(order_id),
                "buyer_id",
                p.buyer_id,
                "upstream_ref",
                p.upstream_ref,
                "status",
                "rejected_at_intake",
            ],
            ["SADD", f"{ns}:orders", str(order_id)],
            _trail(ns, order_id, e, f"rejected at intake: {_reasons(p.reasons)}"),
        ]
    if isinstance(p, intake.OrderCancelled):
        return [
            ["HSET", f"{ns}:order:{p.order_id}", "status", "cancelled"],
            _trail(ns, p.order_id, e, f"cancelled: {p.reason}"),
        ]
    if isinstance(p, intake.OrderDocumentsAdded):
        return [_trail(ns, p.order_id, e, f"{len(p.documents)} document(s) added")]
    return []


def _approval(ns: str, e: Envelope[Message], p: Message) -> list[Op]:
    if not isinstance(p, approval.Decision):
        return []
    key = f"{ns}:order:{p.order_id}"
    refs = ",".join(str(ref) for ref in p.policy_refs)
    ops: list[Op] = [["HSET", key, "decided_at", p.decided_at.isoformat(), "policy_refs", refs]]
    status = STATUS_BY_DECISION.get(type(p))
    if status:
        ops.append(["HSET", key, "status", status])
    if isinstance(p, approval.OrderApproved):
        ops += [
            [
                "HSET",
                key,
                "approved_quantity",
                str(p.approved_quantity),
                "licence_id",
                p.licence_id,
                "tranche_id",
                p.tranche_id,
            ],
            ["HDEL", key, "reasons"],
            ["HINCRBY", f"{ns}:buyer:{p.buyer_id}", "approved", str(p.approved_quantity)],
            _trail(ns, p.order_id, e, f"approved {p.approved_quantity} of {p.requested_quantity} [{refs}]"),
        ]
    elif isinstance(p, approval.OrderDenied | approval.OrderHeld):
        ops += [["HSET", key, "reasons", _reasons(p.reasons)], _trail(ns, p.order_id, e, _reasons(p.reasons))]
    elif isinstance(p, approval.ApprovalReleased):
        ops += [
            ["HINCRBY", f"{ns}:buyer:{p.buyer_id}", "released", str(p.quantity)],
            _trail(ns, p.order_id, e, f"licence and quota use of {p.quantity} released ({p.why})"),
        ]
    elif isinstance(
        p,
        approval.ApprovalSuspended
        | approval.ApprovalReinstated
        | approval.ApprovalRevoked
        | approval.ApprovalCancelled
        | approval.ApprovalExpired,
    ):
        ops.append(_trail(ns, p.order_id, e, f"{p.reason.code}: {p.reason.message}"))
    return ops


def _supply_and_policy(ns: str, e: Envelope[Message], p: Message) -> list[Op]:
    if isinstance(p, supply.BatchManufactured):
        return [
            [
                "HSET",
                f"{ns}:batch:{p.batch_id}",
                "batch_id",
                p.batch_id,
                "pool_id",
                p.pool_id,
                "quantity",
                str(p.quantity),
                "site",
                p.site,
                "ready_at",
                p.ready_at.isoformat(),
            ],
            ["ZADD", f"{ns}:batches", str(p.ready_at.timestamp()), p.batch_id],
        ]
    if isinstance(p, policy.PolicyEvent):
        return [["HSET", f"{ns}:policies", p.policy_id, str(p.revision)]]
    return []


def project(ns: str, envelope: Envelope[Message]) -> list[Op]:
    """The Redis commands that apply one event to the read models under namespace `ns`."""
    p = envelope.payload
    for part in (_intake, _approval, ledger_line, shipment, _supply_and_policy):
        ops = part(ns, envelope, p)
        if ops:
            return ops
    return []
