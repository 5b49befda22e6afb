"""Whether `h200 allocation-rule` has anything to write: a pool's rule in force, and what a new revision would do.

Allocation applies a pool's AllocationPolicySet only if its revision is above the highest one it has seen for the
pool (services.allocation.domain.decide); any other revision would be written to a keep-forever topic and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.policy import AllocationPolicySet


@dataclass(frozen=True)
class RuleChange:
    """The revision to write, or None with the reason nothing is written and the exit status to give."""

    revision: int | None
    text: str
    exit_code: int = 0


def in_force(policies: Iterable[Envelope[Message]], pool: str) -> AllocationPolicySet | None:
    """The pool's revision with the highest number: the one allocation applies, whatever order they came in."""
    found = [e.payload for e in policies if isinstance(e.payload, AllocationPolicySet) and e.payload.pool_id == pool]
    return max(found, key=lambda policy: policy.revision, default=None)


def _describe(policy: AllocationPolicySet) -> str:
    return (
        f"revision {policy.revision} ({policy.rule}, effective {policy.effective_at.isoformat()}, "
        f"issued by {policy.issued_by})"
    )


def change(current: AllocationPolicySet | None, pool: str, rule: str, revision: int | None) -> RuleChange:
    """What to write for `rule` at `revision` (None: the next one) given the revision in force."""
    at = current.revision if current else 0
    if revision is None:
        if current is not None and current.rule == rule:
            return RuleChange(None, f"nothing written: pool {pool} already allocates by {rule}, {_describe(current)}")
        return RuleChange(at + 1, "")
    if current is None or revision > at:
        return RuleChange(revision, "")
    if revision == at and current.rule == rule:
        return RuleChange(
            None,
            f"nothing written: {_describe(current)} of pool {pool} is already in force; a revision is applied once",
        )
    return RuleChange(
        None,
        f"nothing written: pool {pool} is at {_describe(current)}, and allocation ignores any revision that is not "
        f"above it; to allocate by {rule}, give --revision {at + 1} (or leave --revision out)",
        exit_code=1,
    )
