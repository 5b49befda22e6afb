"""Business time, as docs/time.md and domain.md state it, checked on every decision as it is written.

- A decision of approval is made at its partition's clock: the largest tick or arrival (broker time) its inbox
  partition held up to the input, never earlier than the last tick it had seen. A decision of allocation is not
  dated after its partition's clock (it cannot know of a later time). The decision's own time fields say the same.
- An approval partition's marker (ApprovalsPassed at T) is a promise: nothing it decides afterwards is dated
  before T.
- No chips are allocated to an order at or after the end of its licence's validity, nor after the decision that
  expired or revoked its approval (in decision time, whatever order the copies travelled in; at the same instant
  the order of the two is not defined, as approval's markers say).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.envelope import Envelope

from .cluster import Cluster, Entry, at_ms, ms
from .facts import Facts
from .violation import Violation

TIME_FIELDS = ("decided_at", "allocated_at", "released_at", "requested_at", "suspended_at", "reinstated_at")
"""Fields of a decision of approval or allocation that state when it was decided."""
SHOWN = "%m-%d %H:%M:%S"
ENDINGS = frozenset({"ApprovalExpired", "ApprovalRevoked"})


class Timing:
    def __init__(self, cluster: Cluster, facts: Facts) -> None:
        self.cluster, self.facts = cluster, facts
        self.approval = cluster.topology.inbox_of("approval").name
        self.allocation = cluster.topology.inbox_of("allocation").name
        self.promised: dict[int, tuple[int, Envelope[Any]]] = {}
        """Approval partition -> the latest time it promised to decide nothing before, and the marker."""
        self.ended: dict[UUID, Envelope[Any]] = {}
        """Order -> the first ApprovalExpired or ApprovalRevoked of it (in decision time)."""

    def on_event(self, entry: Entry) -> Violation | None:
        envelope = entry.envelope
        if entry.origin is not None and entry.origin[0] in (self.approval, self.allocation):
            found = self._on_the_clock(entry) or self._promise_kept(entry)
            if found is not None:
                return found
        kind = envelope.type
        if kind == "ChipsAllocated":
            return self._allocated_in_time(envelope)
        if kind in ENDINGS:
            ended = self.ended.get(envelope.payload.order_id)
            if ended is None or envelope.payload.decided_at < ended.payload.decided_at:
                self.ended[envelope.payload.order_id] = envelope
            order = self.facts.orders.get(envelope.payload.order_id)
            for line in order.lines if order else ():
                found = self._allocated_in_time(line.allocated)
                if found is not None:
                    return found
        return None

    def _on_the_clock(self, entry: Entry) -> Violation | None:
        topic, partition, offset = entry.origin or ("", 0, 0)
        cause = self.cluster.logs[topic][partition][offset]
        assert cause.clock_ms is not None
        tick, clock = cause.tick_ms, cause.clock_ms
        envelope, payload = entry.envelope, entry.envelope.payload
        times = [("occurred_at", envelope.occurred_at)]
        times += [(name, getattr(payload, name)) for name in TIME_FIELDS if getattr(payload, name, None) is not None]
        for name, value in times:
            at = ms(value)
            if topic == self.approval and tick is not None and at < tick:
                problem = f"{name} {value:%m-%d %H:%M:%S.%f} is before the last tick its partition had seen"
            elif topic == self.approval and at != clock:
                problem = f"{name} {value:%m-%d %H:%M:%S.%f} is not its partition's clock"
            elif at > clock:
                problem = f"{name} {value:%m-%d %H:%M:%S.%f} is after anything its partition had seen"
            else:
                continue
            seen = f"(last tick {_shown(tick)}, clock {_shown(clock)} at {topic}:{partition}@{offset})"
            return Violation("decided-off-the-clock", f"{envelope.type}: {problem} {seen}", (cause.envelope, envelope))
        return None

    def _promise_kept(self, entry: Entry) -> Violation | None:
        topic, partition, _ = entry.origin or ("", 0, 0)
        if topic != self.approval:
            return None
        payload = entry.envelope.payload
        if payload.TYPE == "ApprovalsPassed":
            at = ms(payload.at)
            if partition not in self.promised or at > self.promised[partition][0]:
                self.promised[partition] = (at, entry.envelope)
            return None
        promised = self.promised.get(partition)
        decided = getattr(payload, "decided_at", None)
        if promised is None or decided is None or ms(decided) >= promised[0]:
            return None
        message = f"{payload.TYPE} decided {decided:%m-%d %H:%M:%S} after its partition passed {_shown(promised[0])}"
        return Violation("marker-promise-broken", message, (promised[1], entry.envelope))

    def _allocated_in_time(self, envelope: Envelope[Any]) -> Violation | None:
        line = envelope.payload
        order = self.facts.orders.get(line.order_id)
        if order is None or order.approved is None:
            return None  # allocated-unapproved says it
        until = self.facts.valid_until(order.approved.licence_id, line.allocated_at)
        if until is not None and line.allocated_at >= until:
            licence = order.approved.licence_id
            message = f"allocated {line.allocated_at:{SHOWN}}, licence {licence} valid until {until:{SHOWN}}"
            return Violation("allocated-after-licence-ended", message, (order.standing[0][3], envelope))
        ended = self.ended.get(line.order_id)
        if ended is not None and line.allocated_at > ended.payload.decided_at:
            message = f"allocated {line.allocated_at:{SHOWN}}, {ended.type} at {ended.payload.decided_at:{SHOWN}}"
            return Violation("allocated-after-approval-ended", message, (ended, envelope))
        return None


def _shown(value: int | None) -> str:
    return "none" if value is None else f"{at_ms(value):%m-%d %H:%M:%S.%f}"[:-3]
