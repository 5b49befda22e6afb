"""The invariants of ../shared/domain.md, checked after every step over the event topics (and, where a rule is
about what a service knew, over that service's inbox as it stood when it decided).

(1) a batch never gives out more chips than it holds, counting chips that left the warehouse; (2) an order
never holds more than its approval; (3) delivered <= shipped <= allocated, line by line; (4) a buyer never
exceeds its licence or quota; (5) nothing is allocated to, or shipped for, an order that is not approved at
that moment; (6) one (buyer, upstream reference) is one order. A service refusing valid input is a violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.envelope import Envelope

from .actions import describe_message
from .cluster import Cluster, Entry
from .facts import STATUS, Facts
from .gates import gate_failures, policy_quantity

BLOCKERS = frozenset(
    {"ApprovalSuspended", "ApprovalRevoked", "ApprovalCancelled", "ApprovalReleased", "OrderCancelled"}
    | {"AllocationSuspended", "AllocationRecallRequested", "AllocationReleased"}
)
"""Messages after which a line must not be packed or shipped, until an unblocker (for suspensions)."""
UNBLOCKERS = {"ApprovalReinstated": "ApprovalSuspended", "AllocationReinstated": "AllocationSuspended"}


@dataclass(frozen=True)
class Violation:
    check: str
    message: str
    events: tuple[Envelope[Any], ...] = ()

    def __str__(self) -> str:
        lines = [f"[{self.check}] {self.message}"]
        lines += [f"    {describe_message(envelope)}" for envelope in self.events]
        return "\n".join(lines)


class Oracle:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.facts = Facts()
        topology = cluster.topology
        self.event_topics = frozenset(topology.event_topics)
        self.approval_inbox = topology.inbox_of("approval").name
        self.allocation_inbox = topology.inbox_of("allocation").name

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
        for entry in new:
            found = self.on_event(entry)
            if found is not None:
                return found
        return self.totals() if new else None

    def on_event(self, entry: Entry) -> Violation | None:
        envelope, payload = entry.envelope, entry.envelope.payload
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
        if self.facts.orphans:
            orphan = self.facts.orphans[0]
            return Violation(
                "line-unknown", "a release or step for a line never allocated, or released twice", (orphan,)
            )
        del envelope
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
            limit = policy_quantity(seen, kind, buyer, field, value)
            held = use(buyer, value)
            if limit is not None and held > limit:
                message = f"{buyer} {field} {value}: {held} chips held by approvals and kept by ended orders, > {limit}"
                return Violation("licence-or-quota-overcommitted", message, (entry.envelope, *self.kept(buyer)))
        return None

    def kept(self, buyer: str) -> list[Envelope[Any]]:
        """The approval events and shipped lines of a buyer's ended orders (what shows an over-commitment)."""
        shown = []
        for order in self.facts.orders.values():
            if order.approved is not None and order.approved.buyer_id == buyer and order.status == "ended":
                shown += [event for *_, event in order.standing]
                shown += [line.allocated for line in order.lines if line.gone]
        return shown

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
        return None

    def step_allowed(self, entry: Entry) -> Violation | None:
        step, facts = entry.envelope.payload, self.facts
        line = facts.lines.get(step.allocation_id)
        if line is None:
            return Violation("line-unknown", "a step recorded for a line the ledger never had", (entry.envelope,))
        if line.released is not None and line.released_seq < entry.seq:
            return Violation(
                "step-after-release", "a step recorded for a released line", (line.released, entry.envelope)
            )
        if step.step == "delivered" and not any(s in ("shipped", "customs_cleared") for s, *_ in line.steps[:-1]):
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

    def totals(self) -> Violation | None:
        facts = self.facts
        for batch_id, quantity in facts.batches.items():
            lines = [line for line in facts.lines.values() if line.payload.batch_id == batch_id]
            out = sum(line.payload.quantity for line in lines if line.live or line.gone)
            if out > quantity:
                message = f"batch {batch_id} of {quantity} chips: {out} allocated or shipped"
                return Violation("batch-overallocated", message, tuple(self.lines_shown(lines)))
        for line in facts.lines.values():
            if line.payload.batch_id not in facts.batches:
                return Violation("batch-unknown", "chips allocated from a batch never manufactured", (line.allocated,))
            if line.gone and not line.live:
                events = (line.allocated, line.released, *(e for *_, e in line.steps))
                return Violation("shipped-line-released", "chips that left the warehouse went back to the pool", events)
        for order in facts.orders.values():
            if order.lines and order.approved is None:
                return Violation(
                    "allocated-unapproved", "an order holds chips without approval", (order.lines[0].allocated,)
                )
            if order.lines and order.live_chips() > order.approved.approved_quantity:
                message = f"order holds {order.live_chips()} chips, approved {order.approved.approved_quantity}"
                return Violation(
                    "order-overallocated", message, tuple(line.allocated for line in order.lines if line.live)
                )
        for (buyer, value), limit in (*facts.licence_max.items(), *facts.quota_max.items()):
            held = (
                facts.licence_use(buyer, value)
                if (buyer, value) in facts.licence_max
                else facts.quota_use(buyer, value)
            )
            if held > limit:
                message = f"{buyer} {value}: {held} chips held or shipped, more than any revision allowed ({limit})"
                return Violation("licence-or-quota-exceeded", message, tuple(self.kept(buyer)))
        return None

    @staticmethod
    def lines_shown(lines: list[Any]) -> list[Envelope[Any]]:
        return [event for line in lines for event in (line.allocated, line.released) if event is not None]
