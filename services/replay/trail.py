"""Every decision records why: the policy revisions it applied (present in the log) and the event that caused it.

Decisions are approval's (approved, denied, held, suspended, reinstated, revoked, cancelled, expired, released) and
allocation's (chips allocated, chips released). A cause must be an event of the log and the one its envelope
names; a clock tick is one (a licence expires, a policy comes into force on a tick), so the clock is read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import Decision
from schemas.base import PolicyRef
from schemas.policy import PolicyEvent
from services.domain_kit.seen_ids import SeenIds
from services.replay.checking import reads_of
from services.replay.eventlog import EventLog
from services.replay.reading import Read
from services.replay.records import CAUSE_TOPICS
from services.replay.violations import Violation, ids


@dataclass(frozen=True)
class TrailReport:
    decisions: int
    violations: list[Violation]
    causes_checked: bool
    """False when the log lacks topics a cause may live on (a partial export): causes were not looked up."""


class _Open(NamedTuple):
    """A decision citing what was not read yet: looked up again at the end of the log."""

    position: int
    id: UUID
    subject: str
    refs: tuple[PolicyRef, ...]
    cause: UUID | None
    """Its cause, when the cause is still to be found; None when only policies are."""


class Trail:
    """Every decision cites policy revisions the log holds and a cause the log holds. Keeps 16 bytes per event id,
    the policy revisions, and the decisions whose policy or cause was not read before them (a cause on a topic read
    later: a shipment report causing a release)."""

    def __init__(self, topics: tuple[str, ...], events: SeenIds | None = None) -> None:
        self.causes_checked = set(CAUSE_TOPICS) <= set(topics)
        self.policies: set[tuple[str, int]] = set()
        self._own_events = events is None
        self.events = SeenIds() if events is None else events
        """The ids of the events read (the inbox's aside). A reading that keeps this set itself shares it, having
        added each event's id before `see` (services.replay.reading: one set of every id, not three)."""
        self.known = SeenIds()
        """Ids of inbox records that are not among the events: a cause may be one."""
        self.decisions = 0
        self.found: list[tuple[int, int, Violation]] = []
        self.open: list[_Open] = []

    def _knows(self, event_id: UUID) -> bool:
        return event_id in self.events or event_id in self.known

    def see(self, read: Read) -> None:
        e = read.envelope
        if self.causes_checked:
            if not read.inbox and self._own_events:
                self.events.add(e.id)
            elif read.inbox and e.id not in self.events:
                self.known.add(e.id)
        p: Any = e.payload
        if read.inbox:
            return
        if isinstance(p, PolicyEvent):
            self.policies.add((p.policy_id, p.revision))
        if not isinstance(p, Decision | ChipsAllocated | AllocationReleased):
            return
        position = self.decisions
        self.decisions += 1
        refs: tuple[PolicyRef, ...] = p.policy_refs if isinstance(p, Decision) else _allocation_refs(p)
        subject = f"{e.type} {_subject(p)}"
        if isinstance(p, ChipsAllocated) and p.policy_ref is None:
            message = (
                f"{subject} applied the built-in {p.rule} rule, no policy revision: publish an AllocationPolicySet "
                f"for pool {p.pool_id} (`h200 allocation-rule`)"
            )
            self.found.append((position, 0, Violation("no_policy_revision", message, ids(e))))
        elif isinstance(p, Decision) and not refs:
            self.found.append(
                (position, 0, Violation("no_policy_revision", f"{subject} records no policy revision", ids(e)))
            )
        cause = None
        if e.causation_id != p.cause_event_id:
            message = f"{subject} names cause {p.cause_event_id}, its envelope {e.causation_id}"
            self.found.append((position, 2, Violation("cause_mismatch", message, ids(e))))
        elif self.causes_checked and not self._knows(p.cause_event_id):
            cause = p.cause_event_id
        if cause is not None or any((ref.policy_id, ref.revision) not in self.policies for ref in refs):
            self.open.append(_Open(position, e.id, subject, refs, cause))

    def report(self) -> TrailReport:
        found = list(self.found)
        for item in self.open:
            missing = [str(ref) for ref in item.refs if (ref.policy_id, ref.revision) not in self.policies]
            if missing:
                message = f"{item.subject} cites policy revisions the log does not hold: {', '.join(missing)}"
                found.append((item.position, 1, Violation("unknown_policy_revision", message, ids(item))))
            if item.cause is not None and not self._knows(item.cause):
                message = f"{item.subject} was caused by event {item.cause}, which is not in the log"
                found.append((item.position, 2, Violation("unknown_cause", message, ids(item))))
        found.sort(key=lambda entry: entry[:2])
        return TrailReport(self.decisions, [violation for *_, violation in found], self.causes_checked)


def check_trail(log: EventLog) -> TrailReport:
    trail = Trail(log.topics)
    for read in reads_of(log):
        trail.see(read)
    return trail.report()


def _allocation_refs(p: ChipsAllocated | AllocationReleased) -> tuple[PolicyRef, ...]:
    # A release follows from its cause (a cancellation, a revocation, a failed delivery), not from a rule.
    return (p.policy_ref,) if isinstance(p, ChipsAllocated) and p.policy_ref else ()


def _subject(p: Any) -> str:
    if isinstance(p, ChipsAllocated | AllocationReleased):
        return f"of allocation {p.allocation_id} (order {p.order_id}, batch {p.batch_id})"
    return f"on order {p.order_id}"
