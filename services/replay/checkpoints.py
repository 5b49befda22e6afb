"""Ledger checkpoints: a replay starts from what an earlier replay had folded, and reads only the log since (#9).

A checkpoint is what a replay of the whole log (no --as-of) had folded when it reached the end of every partition:
the ledger fold, the reading's counts and the event ids it had seen (a record written twice across the cut still
counts once), the names it gathered (--buyer, --order and the table), each partition's end offset with the SHA-256
of the record before it, and `latest`, the latest time any event it folded was decided at (its own time, as
--as-of cuts it). The fold keeps facts per allocation and per batch, so it does not depend on how partitions
interleave, only on the order within one (a shipment's steps): folding the checkpoint's records and then the rest
gives the ledger that one whole read gives. A replay --as-of T may start from a checkpoint only if every event in
it was decided by T (latest <= T); the rest is then cut on T as a whole read cuts it. The newest such checkpoint is
used; with none usable the log is read from its start, and stderr says why.

A checkpoint is one file, DIR/ledger-<latest>-<events>.checkpoint, written whole then renamed: a magic line, the
SHA-256 of the body, and the body (a pickle; the directory is the operator's, as a worker's snapshots are). A
file that does not load, was made for other topics, or whose anchor records are not the log's (a topic recreated,
another cluster) is not used, and is named. Checkpoints are kept until the operator deletes them: each serves the
--as-of moments after its `latest`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from services.common import digests
from services.replay.ledger import LedgerFold, decided_at
from services.replay.reading import Read, Reading
from services.replay.records import LogRecord
from services.replay.selection import KnownThings

MAGIC = b"h200-ledger-checkpoint/5\n"
"""/2: the event ids seen are a services.domain_kit.seen_ids.SeenIds (/1 held a set of ints); /3: the fold keeps its
lines packed (services.replay.packed_lines); /4: the event types are a services.replay.id_types.IdTypes (/3 held a
dict); /5: the orders and their references are services.replay.order_refs' OrderIds and OrderRefs (/4 held a set and
a dict of texts). A file of another format is refused by name, and the log is read from its start."""
DIGEST_CHARS = 64
"""The SHA-256 of the body, in hex, on the line after the magic."""
Partition = tuple[str, int]


@dataclass
class LedgerCheckpoint:
    topics: tuple[str, ...]
    ends: dict[Partition, int]
    """Per partition read, the offset after its last record when the checkpoint was made."""
    anchors: dict[Partition, str]
    """Per partition, the SHA-256 of the record at ends - 1: the log it was made of."""
    latest: datetime | None
    fold: LedgerFold
    reading: Reading
    known: KnownThings

    @property
    def name(self) -> str:
        moment = "00000000T000000.000000Z" if self.latest is None else self.latest.astimezone(UTC).strftime(NAME_TIME)
        return f"ledger-{moment}-{self.reading.events}.checkpoint"


@dataclass
class Tracker:
    """Watches the records and events of a replay go by: what a checkpoint of its end needs besides the fold."""

    last: dict[Partition, bytes | None] = field(default_factory=dict)
    latest: datetime | None = None

    def records(self, records: Iterable[LogRecord]) -> Iterator[LogRecord]:
        for record in records:
            self.last[(record.topic, record.partition)] = record.value
            yield record

    def saw(self, read: Read) -> None:
        moment = decided_at(read.envelope)
        if self.latest is None or moment > self.latest:
            self.latest = moment

    def checkpoint(
        self, fold: LedgerFold, reading: Reading, known: KnownThings, before: LedgerCheckpoint | None
    ) -> LedgerCheckpoint:
        anchors = dict(before.anchors) if before else {}
        anchors.update((partition, _digest(value)) for partition, value in self.last.items())
        latest = self.latest
        if before is not None and before.latest is not None:
            latest = before.latest if latest is None else max(latest, before.latest)
        return LedgerCheckpoint(reading.topics, dict(reading.ends), anchors, latest, fold, reading, known)


NAME_TIME = "%Y%m%dT%H%M%S.%fZ"


def _latest_in_name(path: Path) -> datetime | None:
    """The latest decided-at a checkpoint's file name states (None for an empty one or a name not of ours)."""
    try:
        return datetime.strptime(path.name.split("-")[1], NAME_TIME).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def _digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


class CheckpointDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("ledger-*.checkpoint"), reverse=True)

    def save(self, checkpoint: LedgerCheckpoint) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / checkpoint.name
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        # Pickled straight into the file and hashed from it, then the digest written into its place in the header:
        # a body built in memory first, and copied behind its header, cost three times its size at its peak. (Without
        # the pickler's memo the 1M-event checkpoint grew from 76 to 114 MB for 34 MB less peak RSS: memo kept.)
        with open(temporary, "w+b") as file:
            file.write(MAGIC + b"0" * DIGEST_CHARS + b"\n")
            start = file.tell()
            pickle.Pickler(file, protocol=5).dump(checkpoint)
            file.flush()
            file.seek(start)
            digest = digests.rest_digest(file)
            file.seek(len(MAGIC))
            file.write(digest)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return path

    def load(self, path: Path) -> LedgerCheckpoint:
        """The checkpoint in `path`, its digest checked over the body a block at a time and the body then unpickled
        from the file: reading it whole held the file's bytes beside the fold made of them (738 MB at the peak of a
        5M-event --as-of, with the id set's filter built from a list of its ids)."""
        with open(path, "rb", buffering=digests.BLOCK) as file:
            head = file.readline(len(MAGIC) + 64)
            if head != MAGIC:
                if head.startswith(MAGIC.split(b"/")[0] + b"/"):
                    found = head.rstrip(b"\n").decode(errors="replace")
                    raise ValueError(
                        f"a checkpoint of another format ({found}; this replay reads {MAGIC.decode().strip()})"
                    )
                raise ValueError("not a ledger checkpoint (no magic line)")
            digest = file.readline(DIGEST_CHARS + 1)
            start = file.tell()
            if not digest.endswith(b"\n") or digests.rest_digest(file) != digest[:-1]:
                raise ValueError("its body does not match its SHA-256 (cut short or changed)")
            file.seek(start)
            checkpoint = pickle.load(file)
        if not isinstance(checkpoint, LedgerCheckpoint):
            raise ValueError(f"it holds a {type(checkpoint).__name__}, not a ledger checkpoint")
        return checkpoint

    def usable(
        self,
        topics: tuple[str, ...],
        as_of: datetime | None,
        anchors_of: Callable[[Mapping[Partition, int]], Mapping[Partition, bytes | None]],
    ) -> tuple[LedgerCheckpoint | None, list[str]]:
        """The newest checkpoint a replay of `topics` as of `as_of` may start from, and why each newer one may not.
        `anchors_of(ends)` gives the log's records at ends - 1 (those it still holds)."""
        refused: list[str] = []
        for path in self.paths():
            named = _latest_in_name(path)
            if as_of is not None and named is not None and named > as_of:
                # Known from its name alone: a newer checkpoint is not loaded only to be refused.
                refused.append(f"{path.name}: holds events decided after {as_of.isoformat()}")
                continue
            try:
                checkpoint = self.load(path)
            except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
                refused.append(f"{path.name}: cannot be loaded ({error})")
                continue
            if checkpoint.topics != topics:
                refused.append(f"{path.name}: made for other topics ({', '.join(checkpoint.topics)})")
                continue
            if as_of is not None and checkpoint.latest is not None and checkpoint.latest > as_of:
                refused.append(f"{path.name}: holds events decided after {as_of.isoformat()}")
                continue
            found = anchors_of(checkpoint.ends)
            changed = [
                f"{topic}[{number}]"
                for (topic, number), end in checkpoint.ends.items()
                if end > 0
                and (
                    (topic, number) not in found
                    or _digest(found[(topic, number)]) != checkpoint.anchors.get((topic, number))
                )
            ]
            if changed:
                refused.append(f"{path.name}: the log is not the one it was made of ({', '.join(changed[:5])})")
                continue
            return checkpoint, refused
        return None, refused
