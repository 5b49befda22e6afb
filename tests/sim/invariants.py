"""The invariants of ../shared/domain.md, checked after every step over the event topics (and, where a rule is
about what a service knew, over that service's inbox as it stood when it decided).

(1) a batch never gives out more chips than it holds, counting chips that left the warehouse; (2) an order
never holds more than its approval; (3) delivered <= shipped <= allocated, line by line; (4) a buyer never
exceeds its licence or quota; (5) nothing is allocated to, or shipped for, an order that is not approved at
that moment; (6) one (buyer, upstream reference) is one order. A service refusing valid input is a violation.
"""

from __future__ import annotations

from typing import Any

from schemas.envelope import Envelope

from .cluster import Cluster, Entry
from .facts import STATUS, Facts
from .gates import gate_failures, policy_quantity
from .ledger import ledger_violation
from .timing import Timing
from .violation import Violation

BLOCKERS = frozenset(
    {"ApprovalSuspended", "ApprovalRevoked", "ApprovalCancelled", "ApprovalExpired", "ApprovalReleased"}
    | {"OrderCancelled"}
    | {"AllocationSuspended", "AllocationRecallRequested", "AllocationReleased"}
)
"""Messages after which a line must not be packed or shipped, until an unblocker (for suspensions)."""
UNBLOCKERS = {"ApprovalReinstated": "ApprovalSuspended", "AllocationReinstated": "AllocationSuspended"}


class Oracle:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.facts = Facts()
        self.event_topics = frozenset(cluster.topology.event_topics)
        self.timing = Timing(cluster, self.facts)

    def seen_by(self, entry: Entry) -> list[Envelope[Any]]:
        """The inbox a decision was made on, up to and including its cause, once per id."""
        assert entry.origin is not None
        topic, partition, offset = entry.origin
        ids, seen = set(), []
        for record in self.cluster.logs[topic][partition][: offset + 1]:
            if record.envelope.id not in ids:
                ids.add(record.envelope.id)
                seen.append(record.envelope)
        return seen

    def after_step(self) -> Violation | None:
        fresh, self.cluster.fresh = self.cluster.fresh, []
        if self.cluster.dead_letters:
            letter = self.cluster.dead_letters[0]
            return Violation(
                "dead-letter", f"{letter.consumer.name}@{letter.offset} refused valid input: {letter.error}"
            )
        new = []
        for topic, partition, offset in fresh:
            if topic in self.event_topics:
                entry = self.cluster.logs[topic][partition][offset]
                if self.facts.observe(entry.envelope, entry.seq):
                    new.append(entry)
        if self.facts.reused:
            first, second = self.facts.reused[0]
            return Violation("id-reused", f"two different facts with one id {str(first.id)[:8]}", (first, second))
        for entry in new:
            found = self.on_event(entry)
            if found is not None:
                return found
        return ledger_violation(self.facts) if new else None

    def on_event(self, entry: Entry) -> Violation | None:
        return self.on_domain_event(entry) or self.timing.on_event(entry)

    def on_domain_event(self, entry: Entry) -> Violation | None:
        payload = entry.envelope.payload
        if payload.TYPE == "OrderPlaced":
            placed = self.facts.placed_refs[(payload.buyer_id, payload.upstream_ref)]
            if len(placed) > 1:
                return Violation("order-placed-twice", f"{payload.buyer_id}/{payload.upstream_ref}", tuple(placed))
        if payload.TYPE == "OrderApproved" and entry.origin is not None:
            return self.approval_allowed(entry)
        if payload.TYPE == "ChipsAllocated" and entry.origin is not None:
            return self.allocation_allowed(entry)
        if payload.TYPE == "FulfilmentStepRecorded":
            return self.step_allowed(entry)
        return None

    def approval_allowed(self, entry: Entry) -> Violation | None:
        approved, seen = entry.envelope.payload, self.seen_by(entry)
        failures = gate_failures(approved, seen)
        if failures:
            return Violation("approved-against-policy", "; ".join(failures), (entry.envelope,))
        buyer = approved.buyer_id
        for kind, field, value, use in (
            ("ExportLicenceIssued", "licence_id", approved.licence_id, self.facts.licence_use),
            ("TrancheQuotaSet", "tranche_id", approved.tranche_id, self.facts.quota_use),
        ):
            limit = policy_quantity(seen, kind, buyer, field, value, approved.decided_at)
            held = use(buyer, value)
            if limit is not None and held > limit:
                message = f"{buyer} {field} {value}: {held} chips held by approvals and kept by ended orders, > {limit}"
                return Violation(
                    "licence-or-quota-overcommitted", message, (entry.envelope, *self.facts.kept_by(buyer))
                )
        return None

    def allocation_allowed(self, entry: Entry) -> Violation | None:
        """The order was approved, not suspended and not ended, as allocation's inbox showed it."""
        line = entry.envelope.payload
        standing = None
        for envelope in self.seen_by(entry):
            payload = envelope.payload
            if payload.TYPE in STATUS and payload.order_id == line.order_id and standing != "ended":
                standing = STATUS[payload.TYPE]
        if standing != "approved":
            message = f"chips allocated to an order that allocation saw as {standing or 'never approved'}"
            return Violation("allocated-to-ineligible-order", message, (entry.envelope,))
        closed = self.facts.orders[line.order_id].closed
        if closed is not None and closed[0] < entry.seq:
            message = "chips allocated to an order the book had closed"
            return Violation("allocated-to-ineligible-order", message, (closed[1], entry.envelope))
        return None

    def step_allowed(self, entry: Entry) -> Violation | None:
        step, facts = entry.envelope.payload, self.facts
        line = facts.lines.get(step.allocation_id)
        if line is None:
            return None  # an orphan: reported with the totals
        if line.released is not None and line.released_seq < entry.seq:
            return Violation(
                "step-after-release", "a step recorded for a released line", (line.released, entry.envelope)
            )
        if step.step == "delivered" and not any(s == "shipped" for s, *_ in line.steps[:-1]):
            return Violation("delivered-not-shipped", "delivered before it was shipped", (entry.envelope,))
        if step.step in ("packed", "shipped") and entry.origin is not None:
            blocked = self.blocked_by(entry, line.payload)
            if blocked is not None:
                return Violation(
                    "shipped-for-blocked-order", f"{step.step} after {blocked.type}", (blocked, entry.envelope)
                )
        return None

    def blocked_by(self, entry: Entry, line: Any) -> Envelope[Any] | None:
        blocked: Envelope[Any] | None = None
        for envelope in self.seen_by(entry)[:-1]:
            payload = envelope.payload
            about = getattr(payload, "allocation_id", None)
            if about != line.allocation_id and (
                about is not None or getattr(payload, "order_id", None) != line.order_id
            ):
                continue
            if payload.TYPE in BLOCKERS and (blocked is None or blocked.type in UNBLOCKERS.values()):
                blocked = envelope
            elif blocked is not None and UNBLOCKERS.get(payload.TYPE) == blocked.type:
                blocked = None
        return blocked
