"""`h200 rebuild`: the read models projected again from the log into a fresh namespace while the live projector
keeps running, compared with the live ones at the same positions, then switched over in one atomic step.

1. Project the whole log into `<base>@<n>` with the projector's own reader and writes (time-ordered merge,
   position and data in one script), up to the log ends measured at the start, then to the ends again.
2. Parity: wait until the live projector has passed the rebuilt positions, read the live read models in one
   script (services.projector.parity), advance the rebuilt namespace to exactly those positions, compare.
3. Switch: catch up once more, then move the alias `<base>:current` with a compare-and-set. Readers see the
   old or the new read model, never none. The live projector's writes to the old namespace are refused from
   that instant (they are fenced on the alias); it re-resolves the alias and goes on in the new namespace from
   that namespace's own positions, so no event is applied twice or skipped there.
4. Unless --keep-old, delete the old namespace's keys (SCAN, in chunks) after a short grace for readers.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.ops.kafka_clients import reader
from services.projector.app import projected_partitions, to_pending
from services.projector.merge import Positions, TimeOrderedReader
from services.projector.namespace import current_namespace, delete_namespace, fresh_namespace, switch_namespace
from services.projector.parity import Parity, Snapshot, compare, snapshot
from services.projector.store import ReadModelLostError, ReadModelStore

Out = Callable[[str], None]

FETCH_BYTES = 8 * 1024 * 1024
BATCH = 2_000
POLL_MS = 500
PARITY_WAIT_S = 60.0
DELETE_GRACE_S = 5.0
LOCK_TTL_S = 6 * 3600
SHOWN_DIFFERENCES = 25


class RebuildError(RuntimeError):
    """The rebuild cannot go on; the message says why and what to do."""


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Builder:
    """Projects the log into one namespace that is not current yet (so its writes are not fenced)."""

    def __init__(self, consumer: Any, client: Any, namespace: str, max_bytes: int) -> None:
        self.store = ReadModelStore(client, namespace)
        self.reader = TimeOrderedReader(consumer, projected_partitions(consumer), fetch_records=BATCH * 2)
        self.reader.seek({})
        self.max_bytes = max_bytes
        self.records = 0

    def advance(self, until: Positions) -> int:
        """Apply every record below `until`'s offsets; returns how many records were read."""
        read = 0
        while not self.reader.reached(until):
            records = self.reader.read(BATCH, POLL_MS, until)
            try:
                self.store.apply([to_pending(record, self.store.ns, self.max_bytes)[0] for record in records])
            except ReadModelLostError as lost:
                raise RebuildError(f"Redis lost {self.store.ns} while it was being rebuilt; run again") from lost
            read += len(records)
        self.records += read
        return read

    def catch_up(self) -> int:
        return self.advance(self.reader.end_offsets())


@dataclass
class Rebuilt:
    old: str
    new: str
    parity: Parity
    switched: bool = False
    deleted: int = 0


def rebuild(
    consumer: Any,
    client: Any,
    base: str,
    max_bytes: int,
    *,
    switch: bool = True,
    keep_old: bool = False,
    force: bool = False,
    out: Out = emit,
    grace_s: float = DELETE_GRACE_S,
) -> Rebuilt:
    with _lock(client, base):
        old = current_namespace(client, base)
        new = fresh_namespace(client, base)
        out(f"rebuilding the read models of {base} (live namespace {old}) into {new}")
        builder = Builder(consumer, client, new, max_bytes)
        try:
            parity = _build_and_compare(builder, client, old, out)
            if not switch or (not parity.ok and not force):
                why = "--no-switch" if not switch else "parity failed (give --force to switch anyway)"
                out(f"not switched ({why}); deleted the {delete_namespace(client, new, base):,} keys of {new}")
                return Rebuilt(old, new, parity)
            out(f"  final catch-up: {builder.catch_up():,} more records")
            moved_to = switch_namespace(client, base, old, new)
            if moved_to is not None:
                delete_namespace(client, new, base)
                raise RebuildError(f"{base}:current moved to {moved_to} meanwhile; nothing switched, {new} deleted")
        except BaseException:
            if current_namespace(client, base) != new:
                delete_namespace(client, new, base)
            raise
        out(f"switched {base}:current from {old} to {new}; the live projector follows at its next batch")
        result = Rebuilt(old, new, parity, switched=True)
        if not keep_old:
            time.sleep(grace_s)  # a reader that resolved the old name just before the switch finishes reading
            result.deleted = delete_namespace(client, old, base)
            out(f"deleted the {result.deleted:,} keys of the old namespace {old}")
        return result


def _build_and_compare(builder: Builder, client: Any, old: str, out: Out) -> Parity:
    started = time.monotonic()
    read = builder.catch_up()
    elapsed = time.monotonic() - started
    out(f"  projected {read:,} records up to the log ends measured at the start in {elapsed:.1f} s")
    out(f"  caught up again: {builder.catch_up():,} more records")
    live = _live_ahead_of(client, old, builder.store.positions())
    builder.advance({_partition(key): offset for key, offset in live.positions.items()})
    parity = compare(live, snapshot(client, builder.store.ns))
    for line in describe(parity):
        out(line)
    return parity


def _live_ahead_of(client: Any, old: str, rebuilt: dict[tuple[str, int], int]) -> Snapshot:
    """The live read models at positions no earlier than the rebuilt ones (the live projector may lag).

    A live projector that is still advancing (catching up, or rebuilding itself after Redis lost its read
    models) is waited for; one that stays put for PARITY_WAIT_S is not."""
    deadline, applied = time.monotonic() + PARITY_WAIT_S, -1
    while True:
        live = snapshot(client, old)
        behind = {f"{t}:{p}": n for (t, p), n in rebuilt.items() if live.positions.get(f"{t}:{p}", 0) < n}
        if not behind:
            return live
        if live.records > applied:
            deadline, applied = time.monotonic() + PARITY_WAIT_S, live.records
        if time.monotonic() > deadline:
            raise RebuildError(
                f"the live projector of {old} stayed behind the log for {PARITY_WAIT_S:.0f} s without progress "
                f"({len(behind)} partitions): is it running? Compare with --no-switch once it has caught up"
            )
        time.sleep(0.2)  # polling the live projector's recorded positions


def describe(parity: Parity) -> list[str]:
    live, rebuilt = parity.live, parity.rebuilt
    lines = [f"  parity at the live projector's positions ({live.records:,} records applied on each side):"]
    for what, a, b in (
        ("ledger lines", len(live.lines), len(rebuilt.lines)),
        ("buyers", len(live.buyers), len(rebuilt.buyers)),
        ("batches", len(live.batches), len(rebuilt.batches)),
        ("orders", len(live.orders), len(rebuilt.orders)),
        ("trail entries", sum(map(len, live.trails.values())), sum(map(len, rebuilt.trails.values()))),
    ):
        lines.append(f"    {what:<14} live {a:>8,}  rebuilt {b:>8,}")
    lines.append(f"    ledger_hash    live {live.ledger_hash[:16]}  rebuilt {rebuilt.ledger_hash[:16]}")
    if not parity.same_positions:
        lines.append("    POSITIONS DIFFER: the two read models were not compared at the same point of the log")
    for difference in parity.differences[:SHOWN_DIFFERENCES]:
        lines.append(f"    DIFFERENT {difference}")
    if len(parity.differences) > SHOWN_DIFFERENCES:
        lines.append(f"    ... and {len(parity.differences) - SHOWN_DIFFERENCES} more differences")
    lines.append("  parity: " + ("ok, the same read models" if parity.ok else f"{len(parity.differences)} differences"))
    return lines


def _partition(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


@contextmanager
def _lock(client: Any, base: str) -> Iterator[None]:
    """One rebuild of a base at a time (a key with a time to live, in case a rebuild dies)."""
    key, token = f"{base}:rebuild", f"{socket.gethostname()}:{os.getpid()}:{time.time():.0f}"
    if not client.set(key, token, nx=True, ex=LOCK_TTL_S):
        raise RebuildError(
            f"another rebuild holds {key} ({client.get(key)}); wait for it, or delete the key if it died"
        )
    try:
        yield
    finally:
        if client.get(key) == token:
            client.delete(key)


def run_rebuild(bootstrap: str, client: Any, base: str, max_bytes: int, **options: Any) -> int:
    """The CLI command: 0 when parity holds (and the switch was made unless --no-switch), 1 if it failed."""
    try:
        with reader(bootstrap, max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=FETCH_BYTES) as consumer:
            result = rebuild(consumer, client, base, max_bytes, **options)
    except RebuildError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0 if result.parity.ok else 1
