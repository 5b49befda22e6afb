"""The invariants of domain.md checked over a whole log; every violation names the events involved.

Chips per batch and per order are checked in services.replay.chips, licences and quotas in services.replay.limits,
one order per upstream reference in services.replay.placements, and who may publish what in
services.replay.producers. Whether an order was approved "at that moment" is asked of the moment the allocation
core decided: its inbox, folded with the core's own `evolve`, when the log includes the inbox; the allocations
it caused are read before it (services.replay.decisions), so each is checked as its cause is folded.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

from schemas.approval import OrderApproved, OrderDenied, OrderHeld
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.topics import BY_NAME
from services.allocation import domain as allocation
from services.domain_kit.seen_ids import SeenIds
from services.replay.checking import Check, reads_of
from services.replay.chips import Chips
from services.replay.decisions import RecordedDecisions
from services.replay.eventlog import EventLog
from services.replay.limits import LicenceAndQuota
from services.replay.placements import OnePerReference
from services.replay.producers import AsCatalogued
from services.replay.reading import Read
from services.replay.rows import Rows, id_int
from services.replay.shipped import LineFacts, Released
from services.replay.violations import Violation, ids


class Invariants:
    """Every invariant of the domain, fed the log once; `violations` is empty when the log keeps them all."""

    def __init__(self, decisions: RecordedDecisions, events: SeenIds | None = None) -> None:
        """`events`: the ids of the events read, when the reading keeps them and adds each before `see`."""
        self.facts = LineFacts()
        self.checks: list[Check] = [
            Chips(self.facts),
            ApprovedThen(decisions),
            LicenceAndQuota(self.facts),
            ShippedAndDelivered(self.facts),
            CitePolicies(),
            OnePerReference(),
            AsCatalogued(events),
        ]

    def see(self, read: Read) -> None:
        self.facts.see(read)
        for check in self.checks:
            check.see(read)

    def violations(self) -> list[Violation]:
        return [found for check in self.checks for found in check.violations()]


def check(log: EventLog) -> list[Violation]:
    """Every invariant of the domain over the log; empty when the log keeps them all."""
    invariants = Invariants(RecordedDecisions.of(log))
    for read in reads_of(log):
        invariants.see(read)
    return invariants.violations()


# --- approved at that moment ----------------------------------------------------------------------------


BROADCAST = BY_NAME["h200.allocation.inbox"].broadcast
"""Inputs (ticks, approval's markers) copied into every allocation partition, bytes and id unchanged."""


class _Partition:
    def __init__(self) -> None:
        self.state = allocation.initial_state()
        self.seen = SeenIds()
        self.problems: list[Violation] = []


class ApprovedThen:
    """Each allocation went to an order approved by both gates when the input that caused it was decided on: each
    inbox partition folded with the allocation core's `evolve`, the allocations its inputs caused checked as they
    are folded. Keeps each partition's state (the core's, which forgets orders done with) and 16 bytes an input."""

    def __init__(self, decisions: RecordedDecisions) -> None:
        self.decisions = decisions
        self.partitions: dict[int, _Partition] = {}

    def see(self, read: Read) -> None:
        if not read.inbox:
            return
        folding = self.partitions.get(read.spot.partition)
        if folding is None:
            folding = self.partitions[read.spot.partition] = _Partition()
        cause = read.envelope
        if not folding.seen.add_new(cause.id):
            return
        try:
            folding.state = allocation.evolve(folding.state, cause)
        except Exception:  # the live core dead-letters an input it fails on and goes on: so does the check
            return
        for allocated in self.decisions.caused(cause.id):
            if allocated.pool_id not in folding.state.pools and isinstance(cause.payload, BROADCAST):
                # Every partition holds a copy of a tick or a marker, under one id: the allocation was decided
                # by the partition that holds its pool, on its own copy.
                continue
            order = folding.state.pool(allocated.pool_id).orders.get(allocated.order_id)
            if order is None or not order.eligible:
                status = "unknown to the book" if order is None else order.status
                message = (
                    f"allocation {allocated.allocation_id} went to order {allocated.order_id} while it was {status} "
                    f"(decided on {cause.type} at {read.spot})"
                )
                folding.problems.append(Violation("not_approved_then", message, ids(cause, allocated)))

    def violations(self) -> list[Violation]:
        return [found for number in sorted(self.partitions) for found in self.partitions[number].problems]


# --- shipments ---------------------------------------------------------------------------------------------


class _Step(NamedTuple):
    position: int
    id: UUID
    allocation_id: UUID
    step: str


def _first_step(fields: tuple[bool, bytes, bytes]) -> tuple[str, int, int]:
    delivered, line, event = fields
    return "delivered" if delivered else "shipped", id_int(line), id_int(event)


class ShippedAndDelivered:
    """Delivered <= shipped <= allocated, line by line (so per order and per batch): a shipment is shipped before
    it is delivered, chips shipped go back to the pool only when their delivery failed, delivered chips never.
    Keeps the first shipped and delivered step of each line; steps are matched to lines at the end."""

    def __init__(self, facts: LineFacts) -> None:
        self.facts = facts
        self.steps = 0
        self.unmatched: list[_Step] = []
        """Steps naming no line read before them: looked up again once the whole log is read."""
        self.stepped = {"shipped": SeenIds(), "delivered": SeenIds()}
        """Per step, the lines it was recorded for."""
        self.first: Rows[tuple[str, int, int]] = Rows("?16s16s", _first_step)
        """The first event recording each line's shipped or delivered step: (delivered?, allocation id, event id)."""
        self.problems: list[tuple[int, int, Violation]] = []

    def see(self, read: Read) -> None:
        p = read.envelope.payload
        if read.inbox or not isinstance(p, FulfilmentStepRecorded):
            return
        position = self.steps
        self.steps += 1
        if p.allocation_id not in self.facts.allocation_ids:
            self.unmatched.append(_Step(position, read.envelope.id, p.allocation_id, p.step))
        if p.step == "delivered" and p.allocation_id not in self.stepped["shipped"]:
            message = f"allocation {p.allocation_id} delivered before it was shipped"
            self.problems.append((position, 1, Violation("delivered_unshipped", message, ids(read.envelope))))
        if p.step in self.stepped and self.stepped[p.step].add_new(p.allocation_id):
            self.first.append(p.step == "delivered", p.allocation_id.bytes, read.envelope.id.bytes)

    def violations(self) -> list[Violation]:
        found = list(self.problems)
        for step in self.unmatched:
            if step.allocation_id not in self.facts.allocation_ids:
                message = (
                    f"shipment step {step.step} recorded for allocation {step.allocation_id}, which was never allocated"
                )
                found.append((step.position, 0, Violation("unknown_allocation", message, ids(step))))
        found.sort(key=lambda entry: entry[:2])
        problems = [violation for *_, violation in found]
        releases = {e.allocation: e for e in self.facts.decisions if isinstance(e, Released)}
        first: dict[str, dict[int, int]] = {"shipped": {}, "delivered": {}}
        for kind, line, event in self.first:
            if line in releases:
                first[kind][line] = event
        for line, release in releases.items():
            delivered = first["delivered"].get(line)
            shipped = first["shipped"].get(line)
            if delivered is not None:
                done, event = "delivered", delivered
            elif shipped is not None and release.why != "delivery_failed":
                done, event = "shipped", shipped
            else:
                continue
            message = (
                f"allocation {release.allocation_id} was {done}, then its chips went back to the pool ({release.why})"
            )
            problems.append(Violation(f"{done}_then_released", message, (str(UUID(int=event)), *ids(release))))
        return problems


class CitePolicies:
    """An approval, denial or hold names the policy revisions it applied."""

    def __init__(self) -> None:
        self.problems: list[Violation] = []

    def see(self, read: Read) -> None:
        e = read.envelope
        p: Any = e.payload
        if not read.inbox and isinstance(p, OrderApproved | OrderDenied | OrderHeld) and not p.policy_refs:
            message = f"{e.type} on order {p.order_id} records no policy revision"
            self.problems.append(Violation("no_policy_revision", message, ids(e)))

    def violations(self) -> list[Violation]:
        return self.problems
