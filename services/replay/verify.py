"""`verify`: the invariants, the decision trail, a stable replay, the determinism check and parity with the live
read model, gathered in one report. Pure: the shell hands over the log and, if asked, the live ledger.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from schemas.allocation import ChipsAllocated
from schemas.supply import BatchManufactured
from services.replay.chain import ChainReport
from services.replay.determinism import DeterminismReport, check_determinism
from services.replay.eventlog import EventLog
from services.replay.invariants import check
from services.replay.ledger import Ledger, fold_ledger
from services.replay.trail import TrailReport, check_trail
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


def verify(
    log: EventLog,
    live: Ledger | None = None,
    namespace: str = "",
    behind: int = 0,
    chain: ChainReport | None = None,
) -> VerifyReport:
    replayed = fold_ledger(log.events)
    reversed_order = fold_ledger(itertools.chain.from_iterable(reversed(log.by_partition())))
    parity = None
    if live is not None:
        parity = Parity(namespace, replayed.ledger_hash, live.ledger_hash, behind, differences(replayed, live))
    return VerifyReport(
        events=len(log.events),
        duplicates=log.duplicates,
        undecodable=list(log.rejected),
        violations=check(log),
        trail=check_trail(log),
        ledger_hash=replayed.ledger_hash,
        stable=reversed_order.ledger_hash == replayed.ledger_hash,
        determinism=check_determinism(log) if log.has_inbox else None,
        parity=parity,
        notes=early_allocations(log),
        chain=chain,
    )


def early_allocations(log: EventLog) -> list[str]:
    """Allocations whose envelopes are dated before their batch was ready. A core that dated its decisions by the
    input that caused them (before the partition clock of docs/time.md) wrote, for a batch decided on before an
    approval dated earlier, the approval's time on the envelope and the batch's ready time as allocated_at (what a
    replay as of a moment cuts on). A core deciding at its partition clock no longer writes such an allocation."""
    ready = {e.payload.batch_id: e.occurred_at for e in log.of(BatchManufactured)}  # type: ignore[attr-defined]
    early = [
        e
        for e in log.of(ChipsAllocated)
        if e.occurred_at < ready.get(e.payload.batch_id, e.occurred_at)  # type: ignore[attr-defined]
    ]
    if not early:
        return []
    batches = sorted({e.payload.batch_id for e in early})  # type: ignore[attr-defined]
    return [
        f"{len(early)} allocation(s) dated before their batch was ready (batches {', '.join(batches[:5])}"
        f"{', ...' if len(batches) > 5 else ''}): decided on an earlier-dated input that arrived after the batch; "
        "their lines are allocated when the batch was ready, the time a replay --as-of cuts them on"
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
