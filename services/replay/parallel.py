"""`h200 replay` read and folded by several processes, each a contiguous run of the log's partitions, and merged in
the log's order: decoding (pydantic's validation of every event) is most of a replay's time and holds one core, so
more cores make a replay of a long log shorter.

The log is read topic by topic, partition by partition (services.replay.bulk_read); the partitions are cut into as
many contiguous runs as there are processes, with about as many records each, so that the folds, merged in that
order (`LedgerFold.merge`: a later fold's events as if added after the earlier's), give the ledger one process
reading the whole log gives. Each process has its own librdkafka consumer, made after the fork (librdkafka's
threads do not survive one), and its own names table, into which the merge re-indexes the later folds' lines.

One process skips an event id it has seen before; processes see only their own. An id read by two of them (a
record written again after a topic gained partitions, or written to two topics) would count twice, so the runs'
ids are checked to be disjoint first, and if they are not, the replay is read by one process instead (it says
so). Only the plain ledger is read so (no ledger checkpoints, no filters, no table): those keep more than the fold.
"""

from __future__ import annotations

import heapq
import multiprocessing
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from services.domain_kit.seen_ids import WIDTH, SeenIds
from services.replay.bulk_read import Bounded, partition_bounds, read_bounded
from services.replay.ledger import LedgerFold
from services.replay.progress import Progress
from services.replay.reading import Reading, read_events
from services.replay.records import LogRecord

SHARE_EVERY = 5_000
"""Records a process reads between two updates of the shared count the progress bar shows."""

_counted: Any = None
"""In a reading process: the count of records read by all of them (multiprocessing.Value)."""


@dataclass(frozen=True)
class Part:
    bootstrap: str
    topics: tuple[str, ...]
    source: str
    bounded: tuple[Bounded, ...]
    as_of: datetime | None


def cut(bounded: Sequence[Bounded], parts: int) -> list[list[Bounded]]:
    """The partitions in order, cut into at most `parts` contiguous runs of about as many records each (a run holds
    whole partitions; none is empty)."""
    total = sum(high - low for _, low, high in bounded)
    runs: list[list[Bounded]] = [[]]
    done = 0
    for item in bounded:
        size = item[2] - item[1]
        # Start the next run once this one holds its share, unless that would leave more runs than partitions.
        if runs[-1] and len(runs) < parts and done + size / 2 > total * len(runs) / parts:
            runs.append([])
        runs[-1].append(item)
        done += size
    return [run for run in runs if run]


def fold_in_parallel(
    bootstrap: str,
    topics: tuple[str, ...],
    as_of: datetime | None,
    jobs: int,
    stream: TextIO | None = None,
) -> tuple[LedgerFold, Reading, int] | None:
    """The fold of the topics' events, the reading's counts and how many processes read them; None when one process
    should read them (one partition, or event ids that more than one process read)."""
    bounded = partition_bounds(bootstrap, topics)
    records = sum(high - low for _, low, high in bounded)
    runs = cut(bounded, jobs)
    if len(runs) < 2:
        return None
    source = f"kafka {bootstrap}"
    parts = [Part(bootstrap, topics, source, tuple(run), as_of) for run in runs]
    # fork, where there is one: the parent holds no librdkafka client now (partition_bounds closed its own)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    counted = context.Value("q", 0)
    progress = Progress(f"reading {bootstrap} with {len(parts)} processes", records, stream)
    with context.Pool(len(parts), initializer=_share, initargs=(counted,)) as pool:
        pending = pool.map_async(fold_part, parts)
        while not pending.ready():
            pending.wait(0.2)
            progress.advance(counted.value - progress.count)
        done = pending.get()
    progress.close()
    folds = []
    for fold, reading, ids in done:
        reading._seen = SeenIds.from_run(ids)
        folds.append((fold, reading))
    both = merged(folds, topics)
    return None if both is None else (*both, len(parts))


def merged(folds: Sequence[tuple[LedgerFold, Reading]], topics: tuple[str, ...]) -> tuple[LedgerFold, Reading] | None:
    """The folds and readings of consecutive runs of the log as one, in their order; None if an event id is in
    more than one of them (each process skipped only its own repeats)."""
    ids = _merged_ids([reading for _, reading in folds])
    if ids is None:
        sys.stderr.write("note: some event ids were read by two of the reading processes: reading with one\n")
        return None
    fold, reading = folds[0]
    for later, more in folds[1:]:
        later.adopt_names(fold.names)
        fold.merge(later)
        _take(reading, more)
    reading.topics, reading._seen = topics, SeenIds.from_run(ids)
    return fold, reading


def _share(counted: Any) -> None:
    global _counted
    _counted = counted


def fold_part(part: Part) -> tuple[LedgerFold, Reading, bytes]:
    """In a reading process: its run of partitions, read and folded; the ids it read apart, as their sorted run
    (a pickled SeenIds would build its lookup filter as the parent loads it, for nothing: they are only merged)."""
    records = _counting(read_bounded(part.bootstrap, part.bounded, Progress("")))
    fold, reading = folded(records, part.topics, part.source, part.as_of)
    ids, reading._seen = reading.seen.run(), SeenIds()
    return fold, reading, ids


def folded(
    records: Iterable[LogRecord], topics: tuple[str, ...], source: str, as_of: datetime | None
) -> tuple[LedgerFold, Reading]:
    """A run of the log folded as one process folds the whole of it (run_replay)."""
    reading, fold = Reading(topics, source), LedgerFold(as_of)
    for read in read_events(records, reading):
        fold.add(read.envelope)
    return fold, reading


def _counting(records: Iterator[Any]) -> Iterator[Any]:
    unshared = 0
    for record in records:
        yield record
        unshared += 1
        if unshared == SHARE_EVERY and _counted is not None:
            with _counted.get_lock():
                _counted.value += unshared
            unshared = 0
    if unshared and _counted is not None:
        with _counted.get_lock():
            _counted.value += unshared


def _merged_ids(readings: Sequence[Reading]) -> bytearray | None:
    """Every event id the processes read, as one sorted run (what one process would hold), or None if one was read
    by two of them. One pass over their sorted runs."""
    merged, previous = bytearray(), b""
    for key in heapq.merge(*(_ids(reading.seen.run()) for reading in readings)):
        if key == previous:
            return None
        merged += key
        previous = key
    return merged


def _ids(run: bytes) -> Iterator[bytes]:
    return (run[at : at + WIDTH] for at in range(0, len(run), WIDTH))


def _take(reading: Reading, more: Reading) -> None:
    """Add to `reading` the counts of the run read after it."""
    reading.events += more.events
    reading.duplicates += more.duplicates
    reading.undecodable += more.undecodable
    reading.rejected += more.rejected
    reading.ends.update(more.ends)
