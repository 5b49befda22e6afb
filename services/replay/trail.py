"""Every decision records why: the policy revisions it applied (present in the log) and the event that caused it.

Decisions are approval's (approved, denied, held, suspended, reinstated, revoked, cancelled, expired, released) and
allocation's (chips allocated, chips released). A cause must be an event of the log and the one its envelope
names; a clock tick is one (a licence expires, a policy comes into force on a tick), so the clock is read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import Decision
from schemas.base import PolicyRef
from schemas.policy import PolicyEvent
from services.replay.eventlog import EventLog
from services.replay.records import CAUSE_TOPICS
from services.replay.violations import Violation, ids


@dataclass(frozen=True)
class TrailReport:
    decisions: int
    violations: list[Violation]
    causes_checked: bool
    """False when the log lacks topics a cause may live on (a partial export): causes were not looked up."""


def check_trail(log: EventLog) -> TrailReport:
    policies = {(e.payload.policy_id, e.payload.revision) for e in log.of(PolicyEvent)}  # type: ignore[attr-defined]
    causes_checked = set(CAUSE_TOPICS) <= set(log.topics)
    known = log.ids() if causes_checked else set()
    decisions = log.of(Decision, ChipsAllocated, AllocationReleased)
    problems: list[Violation] = []
    for e in decisions:
        p: Any = e.payload
        refs: tuple[PolicyRef, ...] = p.policy_refs if isinstance(p, Decision) else _allocation_refs(p)
        subject = f"{e.type} {_subject(p)}"
        if isinstance(p, ChipsAllocated) and p.policy_ref is None:
            message = (
                f"{subject} applied the built-in {p.rule} rule, no policy revision: publish an AllocationPolicySet "
                f"for pool {p.pool_id} (`h200 allocation-rule`)"
            )
            problems.append(Violation("no_policy_revision", message, ids(e)))
        elif isinstance(p, Decision) and not refs:
            problems.append(Violation("no_policy_revision", f"{subject} records no policy revision", ids(e)))
        missing = [str(ref) for ref in refs if (ref.policy_id, ref.revision) not in policies]
        if missing:
            message = f"{subject} cites policy revisions the log does not hold: {', '.join(missing)}"
            problems.append(Violation("unknown_policy_revision", message, ids(e)))
        if e.causation_id != p.cause_event_id:
            message = f"{subject} names cause {p.cause_event_id}, its envelope {e.causation_id}"
            problems.append(Violation("cause_mismatch", message, ids(e)))
        elif causes_checked and p.cause_event_id not in known:
            message = f"{subject} was caused by event {p.cause_event_id}, which is not in the log"
            problems.append(Violation("unknown_cause", message, ids(e)))
    return TrailReport(len(decisions), problems, causes_checked)


def _allocation_refs(p: ChipsAllocated | AllocationReleased) -> tuple[PolicyRef, ...]:
    # A release follows from its cause (a cancellation, a revocation, a failed delivery), not from a rule.
    return (p.policy_ref,) if isinstance(p, ChipsAllocated) and p.policy_ref else ()


def _subject(p: Any) -> str:
    if isinstance(p, ChipsAllocated | AllocationReleased):
        return f"of allocation {p.allocation_id} (order {p.order_id}, batch {p.batch_id})"
    return f"on order {p.order_id}"
