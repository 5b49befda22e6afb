"""Checks that need a settled system (every record delivered) or the whole run: first-approved-first-served,
retried shipment reports, and determinism of every decision.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.allocation import ChipsAllocated
from schemas.envelope import Envelope
from schemas.routing import home_topic
from services.common.decider import step

from .cluster import Cluster
from .facts import SHIPPED, Facts
from .violation import Violation

FAFS = "first_approved_first_served"


def fafs_inversion(cluster: Cluster, facts: Facts) -> Violation | None:
    """Under first-approved-first-served the ledger ranks orders by approval time, whatever order the copies
    travelled in. So once everything is delivered, no later-approved order may hold unshipped chips of a batch
    given to it while an earlier-approved order, approved and eligible (in decision time) when the chips were
    given, stayed unfilled and still is."""
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
                found = _inverted(decisions.pop(envelope.causation_id, []), live, facts)
                if found is not None:
                    return found
    return None


def _inverted(group: list[Envelope[Any]], live: dict[UUID, int], facts: Facts) -> Violation | None:
    for envelope in group:
        line = envelope.payload
        later = facts.orders[line.order_id].approved
        if line.rule != FAFS or facts.rules.get(line.pool_id, (0, FAFS))[1] != FAFS or later is None:
            continue
        now = facts.lines[line.allocation_id]
        if not now.live or any(step in SHIPPED for step, *_ in now.steps):
            continue
        for order in facts.orders.values():
            earlier = order.approved
            if (
                earlier is None
                or order.order_id == line.order_id
                or earlier.pool_id != line.pool_id
                or not earlier.decided_at < later.decided_at
                or order.status_at(line.allocated_at) != "approved"
                or live.get(order.order_id, 0) >= earlier.approved_quantity
                or order.status != "approved"
                or order.live_chips() >= earlier.approved_quantity
            ):
                continue
            message = (
                f"order {str(line.order_id)[:8]} approved {later.decided_at:%m-%d %H:%M} holds {line.quantity} "
                f"unshipped chips of {line.batch_id}, given {line.allocated_at:%m-%d %H:%M}, while order "
                f"{str(order.order_id)[:8]} approved earlier ({earlier.decided_at:%m-%d %H:%M}) stays unfilled"
            )
            events = (order.standing[0][3], facts.orders[line.order_id].standing[0][3], envelope)
            return Violation("fafs-inversion", message, events)
    return None


def ignored_retry(cluster: Cluster, facts: Facts) -> Violation | None:
    """A report refused because its allocation was not known yet must be decided when it is sent again after
    the ledger line reached fulfilment (an identical retry carries the same id)."""
    inbox = cluster.topology.inbox_of("fulfilment").name
    for partition in cluster.logs[inbox]:
        known_at: dict[UUID, int] = {}
        for offset, entry in enumerate(partition):
            payload = entry.envelope.payload
            if payload.TYPE == "ChipsAllocated":
                known_at.setdefault(payload.allocation_id, offset)
            if payload.TYPE != "RecordFulfilmentStep" or offset <= known_at.get(payload.allocation_id, offset):
                continue
            codes = facts.rejections.get(entry.envelope.id, [])
            if (
                codes
                and set(codes) == {"unknown_allocation"}
                and (payload.allocation_id, payload.step) not in facts.recorded
            ):
                message = "report sent again after its ledger line arrived, still only refused as unknown_allocation"
                return Violation("retry-ignored", message, (entry.envelope,))
    return None


def nondeterminism(cluster: Cluster) -> Violation | None:
    """Refold each inbox partition with its core: the decisions must be the ones the run published, same ids."""
    published: dict[tuple[str, int], dict[UUID, Envelope[Any]]] = {}
    for partitions in cluster.logs.values():
        for partition in partitions:
            for entry in partition:
                if entry.origin is not None:
                    published.setdefault(entry.origin[:2], {}).setdefault(entry.envelope.id, entry.envelope)
    settled = cluster.quiescent()
    for consumer, last in cluster.processed.items():
        if consumer.route is not None or last < 0:
            continue
        core = cluster.topology.service(consumer.service).core
        state, applied, decided = core.initial_state(), set(), {}
        for entry in cluster.logs[consumer.topic][consumer.partition][: last + 1]:
            if entry.envelope.id not in applied:
                applied.add(entry.envelope.id)
                state, outputs = step(core, state, entry.envelope)
                decided.update((output.id, output) for output in outputs)
        recorded = published.get((consumer.topic, consumer.partition), {})
        missing = [decided.get(i) or recorded[i] for i in recorded.keys() ^ decided.keys() if settled or i in recorded]
        changed = [recorded[i] for i in recorded.keys() & decided.keys() if recorded[i] != decided[i]]
        if missing or changed:
            message = f"refolding {consumer.name} gives other decisions than the run published"
            return Violation("nondeterministic", message, tuple(missing + changed)[:6])
    return None
