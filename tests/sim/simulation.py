"""One simulated world: the cluster, the oracle watching it, and the actions that move it. Applying the same
actions to a fresh world gives the same run, which is what replay and shrinking rely on."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .actions import Action, Commit, Crash, Deliver, Duplicate, Inject, describe, describe_message
from .clock import tick
from .cluster import Cluster, at_ms
from .due import licence_end_ignored, unfilled_not_closed
from .invariants import Oracle
from .ranking import BOTH_CLOCKS, DECISION_TIME, fafs_inversion
from .settled import ignored_retry, nondeterminism, rebuild_divergence, unanswered_submission
from .topology import Topology, load
from .violation import Violation

SETTLE_LIMIT = 4000
"""Deliveries allowed to settle a run: more means the services keep answering each other (a livelock)."""
RUN_OUT_TICKS = 4
"""Ticks after the last input, a second apart, while approvals are still being given: allocation serves an
approval once approval's markers after a later tick have passed it."""


@dataclass
class Result:
    trace: list[Action]
    violation: Violation | None = None
    failed_at: int | None = None
    """Index in `trace` of the action after which the violation showed (len(trace) for end-of-run checks)."""
    effective: list[bool] = field(default_factory=list)
    """Per action: did it change anything (a delivery to an empty partition does not)."""
    cluster: Cluster | None = None

    def digest(self) -> str:
        """A fingerprint of every record of every topic, in order: equal runs have equal digests."""
        assert self.cluster is not None
        hashed = hashlib.sha256()
        for topic, partitions in self.cluster.logs.items():
            for partition, log in enumerate(partitions):
                for entry in log:
                    hashed.update(f"{topic}:{partition}:{entry.envelope.id};".encode())
        return hashed.hexdigest()[:16]


class Simulation:
    def __init__(self, verbose: bool = False, refold: bool = True, topology: Topology | None = None) -> None:
        self.cluster = Cluster(topology or load())
        self.refold = refold
        """Whether finish() refolds every inbox with its core (the determinism check)."""
        self.oracle = Oracle(self.cluster)
        self.verbose = verbose
        self.trace: list[Action] = []
        self.effective: list[bool] = []
        self.violation: Violation | None = None
        self.failed_at: int | None = None

    def apply(self, action: Action) -> bool:
        """Apply one action, then check every invariant; True while no violation was found."""
        effect = self._effect(action)
        self.trace.append(action)
        self.effective.append(effect is not None)
        if self.verbose and effect is not None:
            print(f"{len(self.trace) - 1:5} {describe(action)}{effect}")
        found = self.oracle.after_step()
        if found is not None and self.violation is None:
            self.violation, self.failed_at = found, len(self.trace) - 1
        return self.violation is None

    def _effect(self, action: Action) -> str | None:
        cluster = self.cluster
        match action:
            case Inject(envelope, partition, at):
                cluster.reach(at or envelope.occurred_at)
                topic, partition = cluster.publish(envelope, partition=partition)
                return f" -> {topic}:{partition}"
            case Deliver(consumer, publish, after_ms):
                if cluster.pending(consumer) == 0:
                    return None
                cluster.elapse(after_ms)
                offset = cluster.position[consumer]
                incoming = cluster.entry_at(consumer).envelope
                written = cluster.deliver(consumer, publish)
                if publish is not None:
                    cluster.crash(consumer.service)
                if consumer.route is not None:
                    incoming = written[0][2] if written else None
                    offset = cluster.position[consumer] - 1
                return _delivery(offset, incoming, written, self.verbose)
            case Commit(consumer):
                return "" if cluster.commit(consumer) else None
            case Crash(service):
                cluster.crash(service)
                return ""
            case Duplicate(topic, partition, offset):
                return "" if cluster.duplicate(topic, partition, offset) else None
        raise TypeError(action)

    def pending(self) -> list[Any]:
        return self.cluster.waiting_in_order()

    def settle(self) -> bool:
        """Deliver everything, in pipeline order, until no record waits anywhere (part of the trace)."""
        delivered = 0
        while self.violation is None:
            waiting = self.pending()
            if not waiting:
                return True
            for consumer in waiting:
                while self.cluster.pending(consumer) and self.violation is None:
                    self.apply(Deliver(consumer))
                    delivered += 1
            if delivered > SETTLE_LIMIT:
                self.violation = Violation("not-settled", f"still delivering after {delivered} records")
                self.failed_at = len(self.trace)
        return False

    def run_out(self) -> bool:
        """Settle, then let the clock run on (part of the trace): a tick a second later, settled, twice (what the
        first tick's markers admitted, the second finds due), and again while the last round gave approvals."""
        if not self.settle():
            return False
        for round in range(RUN_OUT_TICKS):
            before = self.cluster.admissions
            self.apply(Inject(tick(at_ms(self.cluster.now_ms + 1000))))
            if not self.settle():
                return False
            if round > 0 and self.cluster.admissions == before:
                break
        return True

    def finish(self) -> Result:
        """The checks of a whole run: settled-system checks if nothing waits, and determinism."""
        if self.violation is None:
            checks = [nondeterminism, rebuild_divergence] if self.refold else []
            if self.cluster.quiescent():
                facts = self.oracle.facts
                checks = [
                    lambda c: fafs_inversion(c, facts, BOTH_CLOCKS),
                    lambda c: fafs_inversion(c, facts, DECISION_TIME),
                    lambda c: ignored_retry(c, facts),
                    lambda c: licence_end_ignored(c, facts),
                    lambda c: unfilled_not_closed(c, facts),
                    unanswered_submission,
                    *checks,
                ]
            for check in checks:
                found = check(self.cluster)
                if found is not None:
                    self.violation, self.failed_at = found, len(self.trace)
                    break
        return Result(self.trace, self.violation, self.failed_at, self.effective, self.cluster)


def replay(actions: Iterable[Action], verbose: bool = False) -> Result:
    simulation = Simulation(verbose)
    for action in actions:
        if not simulation.apply(action):
            break
    return simulation.finish()


def _delivery(offset: int, incoming: Any, written: list[Any], verbose: bool) -> str:
    if not verbose:
        return ""
    if incoming is None:
        return f" @{offset} nothing this route carries"
    head = f" @{offset} {describe_message(incoming)}"
    outputs = "".join(f"\n        -> {topic}:{partition} {describe_message(e)}" for topic, partition, e in written)
    return head + outputs
