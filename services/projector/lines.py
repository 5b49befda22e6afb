"""What ledger lines and their shipments change in the read models: allocations, releases, recalls, suspended
lines, closed orders, and each shipment step."""

from __future__ import annotations

from schemas import allocation, fulfilment
from schemas.base import Message
from schemas.envelope import Envelope
from services.projector.ops import Op
from services.projector.ops import counts as _counts
from services.projector.ops import trail as _trail


def ledger_line(ns: str, e: Envelope[Message], p: Message) -> list[Op]:
    if isinstance(p, allocation.ChipsAllocated):
        line = f"{ns}:line:{p.allocation_id}"
        return [
            [
                "HSET",
                line,
                "allocation_id",
                str(p.allocation_id),
                "buyer_id",
                p.buyer_id,
                "order_id",
                str(p.order_id),
                "batch_id",
                p.batch_id,
                "pool_id",
                p.pool_id,
                "quantity",
                str(p.quantity),
                "allocated_at",
                p.allocated_at.isoformat(),
                "status",
                "allocated",
                "rule",
                p.rule,
                "policy_version",
                str(p.policy_ref) if p.policy_ref else "default",
                "cause_event_id",
                str(p.cause_event_id),
            ],
            ["ZADD", f"{ns}:ledger", str(p.allocated_at.timestamp()), str(p.allocation_id)],
            *_counts(ns, p, "allocated", p.quantity),
            _trail(ns, p.order_id, e, f"{p.quantity} chips from batch {p.batch_id}"),
        ]
    if isinstance(p, allocation.AllocationReleased):
        ops = [
            [
                "HSET",
                f"{ns}:line:{p.allocation_id}",
                "status",
                "released",
                "released_at",
                p.released_at.isoformat(),
                "released_why",
                p.why,
            ],
            *_counts(ns, p, "allocated", -p.quantity),
            _trail(ns, p.order_id, e, f"{p.quantity} chips of batch {p.batch_id} back to the pool ({p.why})"),
        ]
        if p.why == "delivery_failed":
            # Only a shipped allocation can fail delivery: its chips leave the shipped count with it.
            ops += _counts(ns, p, "shipped", -p.quantity)
        return ops
    if isinstance(p, allocation.AllocationRecallRequested):
        return [
            ["HSET", f"{ns}:line:{p.allocation_id}", "recall", "requested"],
            _trail(ns, p.order_id, e, f"recall of {p.quantity} chips of batch {p.batch_id} asked ({p.why})"),
        ]
    if isinstance(p, allocation.AllocationSuspended | allocation.AllocationReinstated):
        held = isinstance(p, allocation.AllocationSuspended)
        return [["HSET", f"{ns}:line:{p.allocation_id}", "suspended", "yes" if held else "no"]]
    if isinstance(p, allocation.OrderClosed):
        return [
            ["HSET", f"{ns}:order:{p.order_id}", "closed", p.why, "kept_quantity", str(p.kept_quantity)],
            _trail(ns, p.order_id, e, f"closed by the order book ({p.why}), keeping {p.kept_quantity} chips"),
        ]
    return []


def shipment(ns: str, e: Envelope[Message], p: Message) -> list[Op]:
    if isinstance(p, fulfilment.FulfilmentStepRecorded):
        line = f"{ns}:line:{p.allocation_id}"
        ops: list[Op] = [["HSET", line, "shipment", p.step, f"{p.step}_at", p.at.isoformat()]]
        if p.step == "shipped":
            ops += _counts(ns, p, "shipped", p.quantity)
        if p.step == "delivered":
            ops += _counts(ns, p, "delivered", p.quantity)
        ops.append(_trail(ns, p.order_id, e, f"shipment of {p.quantity} from {p.batch_id}: {p.step}"))
        return ops
    if isinstance(p, fulfilment.RecallAnswered):
        return [
            ["HSET", f"{ns}:line:{p.allocation_id}", "recall", p.outcome],
            _trail(ns, p.order_id, e, f"recall of {p.quantity} chips answered: {p.outcome} (was {p.stage})"),
        ]
    if isinstance(p, fulfilment.FulfilmentStepRejected):
        return [["HINCRBY", f"{ns}:rejected_steps", p.reason.code, "1"]]
    return []
