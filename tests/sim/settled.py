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
        # As services.common.partitions runs a core: every record, repeated ones too (idempotency is the core's).
        state, decided = core.initial_state(), {}
        for offset, entry in enumerate(cluster.logs[consumer.topic][consumer.partition][: last + 1]):
            # With the arrival the record carries (its broker time), as decode_record gives it.
            arrival = entry.record(consumer.topic, consumer.partition, offset).arrival
            state, outputs = step(core, state, entry.envelope.arrived(arrival))
            decided.update((output.id, output) for output in outputs)
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
