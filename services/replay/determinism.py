"""The determinism check: the recorded inputs of the allocation core, folded again in their recorded order, must
give exactly the recorded decisions (same ids, same payloads, same order per pool).

Each inbox partition is folded from the core's initial state, as services.common.partitions does: undecodable
records are skipped (the service dead-lettered them), an input id already applied is skipped, and an input the
core fails on changes nothing. Decisions of a pool are sent in the order decided, so per pool the recorded
sequence (deduplicated by id) and the refolded one must be equal.

The check streams: the recorded decisions are read first and kept as digests (services.replay.decisions), then
each inbox record is folded as it is read and each decision compared as it is made; only a pool's first
difference is kept whole, and the recorded side of it is read again to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from schemas.base import Message
from schemas.envelope import Envelope
from services.allocation import domain as allocation
from services.common.decider import step
from services.domain_kit.seen_ids import SeenIds
from services.replay.decisions import Fetch, RecordedDecisions, digest, fetch_from
from services.replay.eventlog import EventLog, Located
from services.replay.reading import Read
from services.replay.records import Spot

SHOWN_FIELDS = 4

Transform = Callable[[int, list[Located]], list[Located]]
"""Rewrites one inbox partition's records before they are folded (what-if runs use it)."""


@dataclass(frozen=True)
class Decided:
    envelope: Envelope[Message]
    cause: Located


class InboxFold:
    """Each inbox partition folded from the core's initial state, one record at a time, as the service did."""

    def __init__(self) -> None:
        self.partitions: dict[int, tuple[Any, SeenIds]] = {}
        self.inputs = 0
        self.duplicates = 0
        self.failed: list[str] = []

    def take(self, item: Located) -> list[Envelope[Message]]:
        """What the core decides on this record, in the order it decides it."""
        self.inputs += 1
        state, applied = self.partitions.get(item.spot.partition) or (allocation.initial_state(), SeenIds())
        if not applied.add_new(item.envelope.id):
            self.duplicates += 1
            return []
        try:
            state, outputs = step(allocation, state, item.envelope)
        except Exception as exc:  # the live core dead-letters such an input and goes on: so do we
            self.failed.append(f"{item.spot}: {type(exc).__name__}: {exc}")
            outputs = []
        self.partitions[item.spot.partition] = (state, applied)
        return outputs


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


class Determinism:
    """Fed the inbox as it is read (after the recorded decisions): each decision the core makes again is compared
    with the recorded one at the same place in its pool. Keeps each partition's state, 16 bytes an input, and the
    place of each input a recorded decision names as its cause."""

    def __init__(self, recorded: RecordedDecisions) -> None:
        self.recorded = recorded
        self.fold = InboxFold()
        self.decided: dict[str, int] = {}
        self.first: dict[str, tuple[int, Decided]] = {}
        """Per pool that diverges: where, and what the core decides there."""
        self.cause_spots: dict[UUID, Spot] = {}

    def see(self, read: Read) -> None:
        if not read.inbox:
            return
        item = Located(read.envelope, read.spot)
        if item.envelope.id in self.recorded.causes:
            self.cause_spots[item.envelope.id] = item.spot
        for output in self.fold.take(item):
            pool: str = output.payload.pool_id  # type: ignore[attr-defined]
            index = self.decided.get(pool, 0)
            self.decided[pool] = index + 1
            if pool in self.first:
                continue
            recorded = self.recorded.by_pool.get(pool)
            if recorded is None or index >= len(recorded) or recorded.digest(index) != digest(output):
                self.first[pool] = (index, Decided(output, item))

    def report(self, fetch: Fetch) -> DeterminismReport:
        wanted = {pool: index for pool, (index, _) in self.first.items()}
        for pool, recorded in self.recorded.by_pool.items():
            if pool not in wanted and len(recorded) > self.decided.get(pool, 0):
                wanted[pool] = self.decided.get(pool, 0)
        spots = {
            pool: self.recorded.by_pool[pool].spot(index)
            for pool, index in wanted.items()
            if pool in self.recorded.by_pool and index < len(self.recorded.by_pool[pool])
        }
        found = fetch(spots.values())
        causes = fetch(
            self.cause_spots[cause]
            for pool in spots
            if pool not in self.first and spots[pool] in found
            if (cause := found[spots[pool]].envelope.causation_id) in self.cause_spots
        )
        divergences = [self._divergence(pool, wanted[pool], spots.get(pool), found, causes) for pool in sorted(wanted)]
        divergences.sort(key=lambda d: (d.cause.spot if d.cause else (chr(0x10FFFF), 0, 0), d.pool_id))
        return DeterminismReport(
            self.fold.inputs,
            self.fold.duplicates,
            self.fold.failed,
            sum(self.decided.values()),
            self.recorded.recorded,
            divergences,
        )

    def _divergence(
        self, pool: str, index: int, spot: Spot | None, found: dict[Spot, Located], causes: dict[Spot, Located]
    ) -> Divergence:
        got = found.get(spot) if spot is not None else None
        if pool in self.first:
            want = self.first[pool][1]
            if spot is None:
                what = "decided by the core, not in the recorded log"
            elif got is None:
                what = f"the recorded decision at {spot} can no longer be read"
            else:
                what = "; ".join(differing_fields(want.envelope, got.envelope) or ["the envelopes differ"])
            return Divergence(pool, index, what, want.cause, want.envelope, got)
        cause_spot = self.cause_spots.get(got.envelope.causation_id) if got and got.envelope.causation_id else None
        cause = causes.get(cause_spot) if cause_spot is not None else None
        return Divergence(pool, index, "recorded, but the core does not decide it", cause, None, got)


def check_determinism(log: EventLog) -> DeterminismReport:
    determinism = Determinism(RecordedDecisions.of(log))
    for partition in sorted(log.inbox):
        for item in log.inbox[partition]:
            determinism.see(Read(item.envelope, item.spot, True))
    return determinism.report(fetch_from(log))


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
