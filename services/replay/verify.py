"""`verify`: the invariants, the decision trail, a stable replay, the determinism check and parity with the live
read model, gathered in one report. Pure: the shell hands over the log and, if asked, the live ledger.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from schemas.clock import ApprovalsPassed
from schemas.supply import BatchManufactured
from services.domain_kit.seen_ids import SeenIds
from services.replay.chain import ChainReport
from services.replay.checking import reads_of
from services.replay.decisions import Fetch, RecordedDecisions, fetch_from
from services.replay.determinism import Determinism, DeterminismReport
from services.replay.eventlog import EventLog
from services.replay.invariants import Invariants
from services.replay.ledger import Ledger, LedgerFold
from services.replay.packed_lines import Names
from services.replay.reading import Read
from services.replay.records import INBOX
from services.replay.shipped import LineFacts
from services.replay.trail import Trail, TrailReport
from services.replay.violations import Violation

SHOWN_DIFFERENCES = 10


@dataclass(frozen=True)
class Parity:
    namespace: str
    replayed_hash: str
    live_hash: str
    behind: int
    """Records of the log the read model had not applied when it was read."""
    differences: list[str]

    @property
    def same(self) -> bool:
        return self.replayed_hash == self.live_hash


@dataclass(frozen=True)
class VerifyReport:
    events: int
    duplicates: int
    undecodable: list[str]
    violations: list[Violation]
    trail: TrailReport
    ledger_hash: str
    stable: bool
    """The same ledger hash with the partitions folded in reverse order."""
    determinism: DeterminismReport | None
    """None when the log does not include the allocation inbox."""
    parity: Parity | None
    notes: list[str]
    """Things worth knowing that break no invariant (e.g. allocations dated before their batch was ready)."""
    chain: ChainReport | None = None
    """The export's hash chain, when the log was read from a file."""

    @property
    def ok(self) -> bool:
        return (
            not self.undecodable
            and not self.violations
            and not self.trail.violations
            and self.stable
            and (self.determinism is None or not self.determinism.divergences)
            and (self.parity is None or self.parity.same)
            and (self.chain is None or self.chain.ok)
        )


class Verification:
    """Every check of `verify`, fed the log once. The ledger is folded twice: as read, and partition by partition
    with the partitions then taken in reverse order (`stable`): the same hash says no line depends on how the
    partitions of different topics interleave."""

    def __init__(self, topics: tuple[str, ...], decisions: RecordedDecisions, events: SeenIds | None = None) -> None:
        """`events`: the reading's set of the ids of the events read (Reading.seen), shared by the checks that
        need the same set; without it they keep their own."""
        self.ledger = LedgerFold()
        self.names = Names()
        self.apart: dict[tuple[str, int], LedgerFold] = {}
        self.invariants = Invariants(decisions, events)
        self.trail = Trail(topics, events)
        self.determinism = Determinism(decisions) if INBOX in topics else None
        self.ready: dict[str, datetime] = {}
        self.misplaced: list[str] = []
        """Where a lane-only marker was copied into an allocation partition other than its lane's."""

    def see(self, read: Read) -> None:
        self.invariants.see(read)
        self.trail.see(read)
        if self.determinism is not None:
            self.determinism.see(read)
        if read.inbox:
            payload = read.envelope.payload
            if isinstance(payload, ApprovalsPassed) and payload.lane_only and read.spot.partition != payload.lane:
                self.misplaced.append(f"{read.spot} (lane {payload.lane})")
            return
        self.ledger.add(read.envelope)
        where = (read.spot.topic, read.spot.partition)
        fold = self.apart.get(where)
        if fold is None:
            fold = self.apart[where] = LedgerFold(names=self.names)
        fold.add(read.envelope)
        if isinstance(read.envelope.payload, BatchManufactured):
            self.ready[read.envelope.payload.batch_id] = read.envelope.occurred_at

    def report(
        self,
        counted: tuple[int, int, list[str]],
        fetch: Fetch,
        live: Ledger | None = None,
        namespace: str = "",
        behind: int = 0,
        chain: ChainReport | None = None,
    ) -> VerifyReport:
        """`counted`: events read (each id once), duplicates skipped, and each record that could not be read. Ends
        the verification: the ledger folds move into the report."""
        events, duplicates, undecodable = counted
        replayed = self.ledger.ledger()
        reversed_order = LedgerFold(names=self.names)
        while self.apart:
            reversed_order.merge(self.apart.popitem()[1])
        parity = None
        if live is not None:
            parity = Parity(namespace, replayed.ledger_hash, live.ledger_hash, behind, differences(replayed, live))
        return VerifyReport(
            events=events,
            duplicates=duplicates,
            undecodable=list(undecodable),
            violations=self.invariants.violations(),
            trail=self.trail.report(),
            ledger_hash=replayed.ledger_hash,
            stable=reversed_order.ledger().ledger_hash == replayed.ledger_hash,
            determinism=None if self.determinism is None else self.determinism.report(fetch),
            parity=parity,
            notes=early_allocations(self.invariants.facts, self.ready) + misplaced_markers(self.misplaced),
            chain=chain,
        )


def verify(
    log: EventLog,
    live: Ledger | None = None,
    namespace: str = "",
    behind: int = 0,
    chain: ChainReport | None = None,
) -> VerifyReport:
    """`verify` over a log held whole (tests, the simulation, the protocol audit)."""
    verification = Verification(log.topics, RecordedDecisions.of(log))
    for read in reads_of(log):
        verification.see(read)
    counted = (len(log.events), log.duplicates, log.rejected)
    return verification.report(counted, fetch_from(log), live, namespace, behind, chain)


def early_allocations(facts: LineFacts, ready: dict[str, datetime]) -> list[str]:
    """Allocations whose envelopes are dated before their batch was ready. A core that dated its decisions by the
    input that caused them (before the partition clock of docs/time.md) wrote, for a batch decided on before an
    approval dated earlier, the approval's time on the envelope and the batch's ready time as allocated_at (what a
    replay as of a moment cuts on). A core deciding at its partition clock no longer writes such an allocation."""
    early = [line for line in facts.allocated() if line.occurred_at < ready.get(line.batch_id, line.occurred_at)]
    if not early:
        return []
    batches = sorted({line.batch_id for line in early})
    return [
        f"{len(early)} allocation(s) dated before their batch was ready (batches {', '.join(batches[:5])}"
        f"{', ...' if len(batches) > 5 else ''}): decided on an earlier-dated input that arrived after the batch; "
        "their lines are allocated when the batch was ready, the time a replay --as-of cuts them on"
    ]


def misplaced_markers(spots: list[str]) -> list[str]:
    """Lane-only markers found in another lane's allocation partition. Only a router that copied them wrongly puts
    them there; the core ignores them (docs/time.md), which can only hold admissions back, never let one in early."""
    if not spots:
        return []
    shown = ", ".join(spots[:5]) + (", ..." if len(spots) > 5 else "")
    return [
        f"{len(spots)} lane-only approval marker(s) copied into an allocation partition other than their lane's "
        f"({shown}): allocation's router copied them wrongly; the core ignored them, so admissions there waited for "
        "their own lane's markers. Check the allocation service's routing"
    ]


def differences(replayed: Ledger, live: Ledger) -> list[str]:
    """Where the live read model tells another story than the log: lines, then totals (the first few)."""
    found: list[str] = []
    ours = {line.allocation_id: asdict(line) for line in replayed.lines}
    theirs = {line.allocation_id: asdict(line) for line in live.lines}
    for allocation_id in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(allocation_id), theirs.get(allocation_id)
        if mine is None or other is None:
            found.append(f"line {allocation_id}: only in the {'live read model' if mine is None else 'log'}")
            continue
        found += [
            f"line {allocation_id} {name}: log {mine[name]!r}, live {other[name]!r}"
            for name in mine
            if mine[name] != other[name]
        ]
    found += _dict_differences("totals", replayed.totals(), live.totals())
    return found[:SHOWN_DIFFERENCES] + (
        [f"... {len(found) - SHOWN_DIFFERENCES} more"] if len(found) > SHOWN_DIFFERENCES else []
    )


def _dict_differences(path: str, ours: Any, theirs: Any) -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [
            item
            for key in sorted(set(ours) | set(theirs))
            for item in _dict_differences(f"{path}.{key}", ours.get(key), theirs.get(key))
        ]
    return [] if ours == theirs else [f"{path}: log {ours!r}, live {theirs!r}"]
