"""Checks that need a settled system (every record delivered) or the whole run: retried shipment reports and
determinism of every decision (first-approved-first-served is in ranking.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from schemas.envelope import Envelope
from services.common.decider import step

from .cluster import Cluster
from .facts import Facts
from .violation import Violation
from .workers import make_worker, run_now


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


def refold(cluster: Cluster, consumer: Any, last: int) -> tuple[Any, dict[UUID, Envelope[Any]]]:
    """Decide again on every record of an inbox partition up to `last`, as services.common.partitions once did:
    every record, repeated ones too (idempotency is the core's). The final state and every decision, by id; kept
    on the cluster for the other checks of the run's end (the cluster is not changed after them)."""
    cache: dict[tuple[Any, int], tuple[Any, dict[UUID, Envelope[Any]]]] = cluster.__dict__.setdefault("_refolds", {})
    if (consumer, last) not in cache:
        cache[(consumer, last)] = _refold(cluster, consumer, last)
    return cache[(consumer, last)]


def _refold(cluster: Cluster, consumer: Any, last: int) -> tuple[Any, dict[UUID, Envelope[Any]]]:
    core = cluster.topology.service(consumer.service).core
    state, decided = core.initial_state(), {}
    for offset, entry in enumerate(cluster.logs[consumer.topic][consumer.partition][: last + 1]):
        # With the arrival the record carries (its broker time), as decode_record gives it.
        arrival = entry.record(consumer.topic, consumer.partition, offset).arrival
        state, outputs = step(core, state, entry.envelope.arrived(arrival))
        decided.update((output.id, output) for output in outputs)
    return state, decided


def rebuild_divergence(cluster: Cluster) -> Violation | None:
    """Snapshot + tail = full fold, for every core: a worker that rebuilds a partition from the journal alone, and
    one from its latest snapshot and the tail, reach the state that deciding again on every record reaches."""
    for consumer, last in cluster.processed.items():
        if consumer.route is not None or last < 0:
            continue
        state, _ = refold(cluster, consumer, last)
        for snapshots in (None, cluster.snapshots[consumer.service]):
            core = cluster.topology.service(consumer.service).core
            worker = make_worker(core, cluster._replay, cluster.journals[consumer.service], snapshots)
            rebuilt = run_now(worker.rebuilt_state(consumer.topic, consumer.partition, last + 1))
            if rebuilt != state:
                way = "its latest snapshot and the tail" if snapshots else "the journal alone"
                message = f"rebuilding {consumer.name} up to {last + 1} from {way} gives another state than a refold"
                return Violation("rebuild-diverged", message, ())
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
        _, decided = refold(cluster, consumer, last)
        recorded = published.get((consumer.topic, consumer.partition), {})
        missing = [decided.get(i) or recorded[i] for i in recorded.keys() ^ decided.keys() if settled or i in recorded]
        changed = [recorded[i] for i in recorded.keys() & decided.keys() if recorded[i] != decided[i]]
        if missing or changed:
            message = f"refolding {consumer.name} gives other decisions than the run published"
            return Violation("nondeterministic", message, tuple(missing + changed)[:6])
    return None


def unanswered_submission(cluster: Cluster) -> Violation | None:
    """Every command an upstream system sent has exactly one answer from intake (schemas/outcomes.py): one event
    caused by it, counted once by id however often the command or the answer was written."""
    commands: dict[UUID, Envelope[Any]] = {}
    for topic in cluster.topology.inbox_of("intake").name, *SUBMISSION_TOPICS:
        for partition in cluster.logs.get(topic, ()):
            for entry in partition:
                if entry.envelope.payload.KIND == "command":
                    commands.setdefault(entry.envelope.id, entry.envelope)
    answers: dict[UUID, dict[UUID, Envelope[Any]]] = {}
    for partitions in cluster.logs.values():
        for partition in partitions:
            for entry in partition:
                envelope = entry.envelope
                if envelope.producer == "intake" and envelope.causation_id in commands:
                    answers.setdefault(envelope.causation_id, {})[envelope.id] = envelope
    for command_id, command in commands.items():
        given = answers.get(command_id, {})
        if len(given) != 1:
            message = f"{command.type} {str(command_id)[:8]} has {len(given)} answers from intake, not one"
            return Violation("submission-not-answered-once", message, (command, *given.values()))
    return None


SUBMISSION_TOPICS = ("h200.intake.commands",)
