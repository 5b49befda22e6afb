"""The determinism check: the recorded inputs of the allocation core, folded again in their recorded order, must
give exactly the recorded decisions (same ids, same payloads, same order per pool).

Each inbox partition is folded from the core's initial state, as services.common.partitions does: undecodable
records are skipped (the service dead-lettered them), an input id already applied is skipped, and an input the
core fails on changes nothing. Decisions of a pool are sent in the order decided, so per pool the recorded
sequence (deduplicated by id) and the refolded one must be equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.topics import BY_NAME
from services.allocation import domain as allocation
from services.common.decider import step
from services.replay.eventlog import EventLog, Located

SHOWN_FIELDS = 4
DECISIONS: tuple[type[Message], ...] = BY_NAME["h200.allocations"].messages
"""Everything the allocation core writes: ledger lines and releases, recalls and suspensions of lines for
fulfilment, closed orders for approval. Each is compared, so a recall or a close missing or altered is caught."""

Transform = Callable[[int, list[Located]], list[Located]]
"""Rewrites one inbox partition's records before they are folded (what-if runs use it)."""


@dataclass(frozen=True)
class Decided:
    envelope: Envelope[Message]
    cause: Located


@dataclass
class Refold:
    """What the allocation core decides on the recorded inputs, per pool in decision order."""

    by_pool: dict[str, list[Decided]] = field(default_factory=dict)
    inputs: int = 0
    duplicates: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return sum(len(found) for found in self.by_pool.values())


def refold(inbox: dict[int, list[Located]], transform: Transform | None = None) -> Refold:
    result = Refold()
    for partition in sorted(inbox):
        records = transform(partition, inbox[partition]) if transform else inbox[partition]
        state, applied = allocation.initial_state(), set()
        for item in records:
            result.inputs += 1
            if item.envelope.id in applied:
                result.duplicates += 1
                continue
            applied.add(item.envelope.id)
            try:
                state, outputs = step(allocation, state, item.envelope)
            except Exception as exc:  # the live core dead-letters such an input and goes on: so do we
                result.failed.append(f"{item.spot}: {type(exc).__name__}: {exc}")
                continue
            for output in outputs:
                pool = output.payload.pool_id  # type: ignore[attr-defined]
                result.by_pool.setdefault(pool, []).append(Decided(output, item))
    return result


@dataclass(frozen=True)
class Divergence:
    pool_id: str
    position: int
    """Index in the pool's sequence of decisions."""
    what: str
    cause: Located | None
    """The recorded input on which the core decides `expected` (or, failing that, the one `actual` names)."""
    expected: Envelope[Message] | None
    actual: Located | None


@dataclass(frozen=True)
class DeterminismReport:
    inputs: int
    duplicates: int
    failed: list[str]
    decided: int
    recorded: int
    divergences: list[Divergence]
    """The first divergence of each pool that diverges, earliest input first."""

    @property
    def first(self) -> Divergence | None:
        return self.divergences[0] if self.divergences else None


def recorded_decisions(log: EventLog) -> dict[str, list[Located]]:
    found: dict[str, list[Located]] = {}
    for item in log.located(*DECISIONS):
        found.setdefault(item.envelope.payload.pool_id, []).append(item)  # type: ignore[attr-defined]
    return found


def check_determinism(log: EventLog) -> DeterminismReport:
    folded = refold(log.inbox)
    recorded = recorded_decisions(log)
    inputs = {item.envelope.id: item for records in log.inbox.values() for item in records}
    divergences = [
        found
        for pool in sorted(set(folded.by_pool) | set(recorded))
        if (found := _first_difference(pool, folded.by_pool.get(pool, []), recorded.get(pool, []), inputs))
    ]
    divergences.sort(key=lambda d: (d.cause.spot if d.cause else (chr(0x10FFFF), 0, 0), d.pool_id))
    return DeterminismReport(
        folded.inputs,
        folded.duplicates,
        folded.failed,
        folded.decided,
        sum(len(items) for items in recorded.values()),
        divergences,
    )


def _first_difference(
    pool: str, expected: Sequence[Decided], actual: Sequence[Located], inputs: dict[Any, Located]
) -> Divergence | None:
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else None
        got = actual[index] if index < len(actual) else None
        if want is not None and got is not None:
            differences = differing_fields(want.envelope, got.envelope)
            if differences:
                return Divergence(pool, index, "; ".join(differences), want.cause, want.envelope, got)
        elif want is not None:
            return Divergence(
                pool, index, "decided by the core, not in the recorded log", want.cause, want.envelope, None
            )
        elif got is not None:
            cause = inputs.get(got.envelope.causation_id)
            return Divergence(pool, index, "recorded, but the core does not decide it", cause, None, got)
    return None


def differing_fields(expected: Envelope[Any], actual: Envelope[Any]) -> list[str]:
    """`field: expected X, recorded Y` for every payload field that differs (envelope fields if none does)."""
    if expected == actual:
        return []
    want, got = _flat(expected.model_dump(mode="json")), _flat(actual.model_dump(mode="json"))
    found = [
        f"{name}: expected {want.get(name)!r}, recorded {got.get(name)!r}"
        for name in sorted(set(want) | set(got))
        if want.get(name) != got.get(name)
    ]
    payload = [item for item in found if item.startswith("payload.")]
    return (payload or found or ["the envelopes differ"])[:SHOWN_FIELDS] + (
        [f"and {len(payload or found) - SHOWN_FIELDS} more field(s)"] if len(payload or found) > SHOWN_FIELDS else []
    )


def _flat(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, dict):
            flat.update(_flat(item, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = item
    return flat
