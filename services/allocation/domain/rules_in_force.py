"""A pool's allocation rule in force at the partition's clock: a revision published ahead of its effective_at is kept
pending and comes into force when the clock reaches it, like approval's policies (docs/time.md). Every line then
cites the revision in force at its allocated_at, never one that was only announced."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.base import PolicyRef
from schemas.policy import AllocationPolicySet
from services.allocation.domain.state import AllocationState, Pool


def is_newer(pool: Pool, policy: AllocationPolicySet) -> bool:
    """A revision above the one in force and above every pending one: a repeat or a stale one changes nothing."""
    pending = max((p.revision for p in pool.pending_rules), default=0)
    return policy.revision > max(pool.policy_revision, pending)


def apply_rule(pool: Pool, policy: AllocationPolicySet) -> None:
    pool.rule = policy.rule
    pool.policy_ref = PolicyRef(policy_id=policy.policy_id, revision=policy.revision)
    after = policy.close_unfilled_after_s
    pool.close_unfilled_after = None if after is None else timedelta(seconds=after)


def due_rules(pool: Pool, now: datetime) -> list[AllocationPolicySet]:
    """Pending revisions in force at `now`, in the order they took effect (then by revision)."""
    due = [policy for policy in pool.pending_rules if policy.effective_at <= now]
    return sorted(due, key=lambda policy: (policy.effective_at, policy.revision))


def pools_with_due_rules(state: AllocationState, now: datetime) -> list[Pool]:
    return [pool for pool in state.pools.values() if due_rules(pool, now)]


def bring_rule_into_force(pool: Pool, policy: AllocationPolicySet) -> None:
    pool.pending_rules.remove(policy)
    apply_rule(pool, policy)


def bring_due_into_force(pool: Pool, now: datetime) -> list[AllocationPolicySet]:
    """Apply the pending revisions in force at `now` (updating the pool); the ones applied."""
    due = due_rules(pool, now)
    for policy in due:
        bring_rule_into_force(pool, policy)
    return due
