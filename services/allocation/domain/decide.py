"""What the order book decides on each input: chips allocated as the rule allows, and the protocol with fulfilment
for lines whose order stops taking chips (see lines.py). Deciding never changes the state."""

from __future__ import annotations

from typing import Any

from schemas.approval import (
    ApprovalCancelled,
    ApprovalReinstated,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
)
from schemas.base import Message, PolicyRef
from schemas.envelope import Envelope
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, RecallAnswered
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from services.allocation.domain.allocate import allocate
from services.allocation.domain.lines import (
    on_delivered,
    on_delivery_failed,
    on_order_leaving,
    on_recall_answered,
    on_reinstated,
    on_suspended,
)
from services.allocation.domain.rules import Claim, Stock
from services.allocation.domain.state import AllocationState, Pool


def decide(state: AllocationState, message: Envelope[Any]) -> list[Message]:
    match message.payload:
        case OrderApproved() as approved:
            return _on_approved(state.pool(approved.pool_id), approved, message)
        case BatchManufactured() as batch:
            return _on_batch(state.pool(batch.pool_id), batch, message)
        case AllocationPolicySet() as policy:
            return _on_policy(state.pool(policy.pool_id), policy, message)
        case ApprovalSuspended() as suspended:
            return on_suspended(state.pool(suspended.pool_id), suspended, message)
        case ApprovalReinstated() as reinstated:
            return on_reinstated(state.pool(reinstated.pool_id), reinstated, message)
        case ApprovalRevoked() as revoked:
            return on_order_leaving(state.pool(revoked.pool_id), revoked.order_id, "approval_revoked", message)
        case ApprovalCancelled() as cancelled:
            return on_order_leaving(state.pool(cancelled.pool_id), cancelled.order_id, "order_cancelled", message)
        case RecallAnswered() as answered:
            return on_recall_answered(state.pool(answered.pool_id), answered, message)
        case DeliveryFailed() as failed:
            return on_delivery_failed(state.pool(failed.pool_id), failed, message)
        case FulfilmentStepRecorded() as recorded if recorded.step == "delivered":
            return on_delivered(state.pool(recorded.pool_id), recorded, message)
        case _:
            # Denied and held orders never reach the book; ApprovalReleased ends the chain (approval's answer to
            # our OrderClosed); other fulfilment steps only mark shipments.
            return []


def _on_approved(pool: Pool, approved: OrderApproved, cause: Envelope[Any]) -> list[Message]:
    if approved.order_id in pool.orders:
        return []
    claim = Claim(approved.order_id, approved.buyer_id, approved.decided_at, approved.approved_quantity)
    return allocate(pool, cause, extra_claim=claim)


def _on_batch(pool: Pool, batch: BatchManufactured, cause: Envelope[Any]) -> list[Message]:
    if batch.batch_id in pool.batches:
        return []
    return allocate(pool, cause, extra_stock=Stock(batch.batch_id, batch.ready_at, batch.quantity))


def _on_policy(pool: Pool, policy: AllocationPolicySet, cause: Envelope[Any]) -> list[Message]:
    if policy.revision <= pool.policy_revision:
        return []
    ref = PolicyRef(policy_id=policy.policy_id, revision=policy.revision)
    return allocate(pool, cause, rule=policy.rule, policy_ref=ref)
