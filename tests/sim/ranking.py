"""First approved, first served, checked once everything is delivered: the ledger must not depend on how late
the news of an approval reached allocation. No later-approved order may hold unshipped chips given while an
earlier-approved order, approved and eligible at that moment, stayed unfilled and still is.

"Earlier" is read on two clocks: decision time (`decided_at`, domain.md's approval time, what the brief asks
for) and the order of record (where the approval was written; the working tree ranks by it). The two may
disagree, and a core can follow only one, so there are two checks: `fafs-inversion` (earlier in decision time)
and `fafs-inversion-of-record` (earlier on both clocks: every reading of the rule must serve such an order first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from schemas.allocation import ChipsAllocated
from schemas.envelope import Envelope
from schemas.routing import home_topic

from .cluster import Cluster
from .facts import SHIPPED, Facts, Order
from .violation import Violation

FAFS = "first_approved_first_served"


@dataclass(frozen=True)
class Clock:
    check: str
    earlier: Callable[[Order, Order], bool]
    """Was the first order approved before the second?"""
    eligible: Callable[[Order, Any, int], bool]
    """Was the order approved and eligible when a line was given (its payload, and the place in the order of
    record of the input allocation decided it on)?"""


def _in_decision_time(order: Order, line: Any, seq: int) -> bool:
    return order.approved.decided_at <= line.allocated_at and order.status_at(line.allocated_at) == "approved"


def _on_record(order: Order, line: Any, seq: int) -> bool:
    return order.approved_seq < seq and order.status_before(seq) == "approved"


DECISION_TIME = Clock("fafs-inversion", lambda a, b: a.approved.decided_at < b.approved.decided_at, _in_decision_time)
BOTH_CLOCKS = Clock(
    "fafs-inversion-of-record",
    lambda a, b: a.approved.decided_at < b.approved.decided_at and a.approved_seq < b.approved_seq,
    lambda order, line, seq: _in_decision_time(order, line, seq) and _on_record(order, line, seq),
)


def fafs_inversion(cluster: Cluster, facts: Facts, clock: Clock) -> Violation | None:
    for partition in cluster.logs[home_topic(ChipsAllocated).name]:
        seen: set[UUID] = set()
        ledger = [e.envelope for e in partition if e.envelope.id not in seen and not seen.add(e.envelope.id)]
        last_of = {envelope.causation_id: index for index, envelope in enumerate(ledger)}
        live: dict[UUID, int] = {}
        decisions: dict[UUID | None, list[Envelope[Any]]] = {}
        for index, envelope in enumerate(ledger):
            payload = envelope.payload
            if payload.TYPE == "ChipsAllocated":
                live[payload.order_id] = live.get(payload.order_id, 0) + payload.quantity
                decisions.setdefault(envelope.causation_id, []).append(envelope)
            elif payload.TYPE == "AllocationReleased":
                live[payload.order_id] = live.get(payload.order_id, 0) - payload.quantity
            if last_of[envelope.causation_id] == index:
                # A decision is judged once all of its lines are in: the earlier order may get chips after.
                for line in decisions.pop(envelope.causation_id, []):
                    found = _inverted(line, live, facts, clock)
                    if found is not None:
                        return found
    return None


def _inverted(envelope: Envelope[Any], live: dict[UUID, int], facts: Facts, clock: Clock) -> Violation | None:
    line, given = envelope.payload, facts.lines[envelope.payload.allocation_id]
    cause = facts.seen.get(envelope.causation_id, given.seq) if envelope.causation_id else given.seq
    later = facts.orders[line.order_id]
    if line.rule != FAFS or facts.rules.get(line.pool_id, (0, FAFS))[1] != FAFS or later.approved is None:
        return None
    if not given.live or any(step in SHIPPED for step, *_ in given.steps):
        return None
    for order in facts.orders.values():
        earlier = order.approved
        if (
            earlier is None
            or order is later
            or earlier.pool_id != line.pool_id
            or not clock.earlier(order, later)
            or not clock.eligible(order, line, cause)
            or live.get(order.order_id, 0) >= earlier.approved_quantity
            or order.status != "approved"
            or order.live_chips() >= earlier.approved_quantity
        ):
            continue
        message = (
            f"order {str(line.order_id)[:8]} approved {later.approved.decided_at:%m-%d %H:%M} holds {line.quantity} "
            f"unshipped chips of {line.batch_id}, given {line.allocated_at:%m-%d %H:%M}, while order "
            f"{str(order.order_id)[:8]} approved earlier ({earlier.decided_at:%m-%d %H:%M}) stays unfilled"
        )
        events = (order.standing[0][3], later.standing[0][3], envelope)
        return Violation(clock.check, message, events)
    return None
