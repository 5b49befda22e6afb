"""Ledger checkpoints (services/replay/checkpoints.py, issue #9): a replay that starts from a checkpoint and reads
only the log since gives, byte for byte, what a replay of the whole log gives; a checkpoint holding events decided
after --as-of, one of another log, and a damaged one are not used, and stderr names each. The cluster is the
story's records in memory, read as services.replay.bulk_read reads them (from a start offset per partition)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from builders_replay import at, revoked_story

from schemas.topics import EVENT_TOPICS
from services.common import digests
from services.domain_kit import seen_ids
from services.domain_kit.seen_ids import SeenIds
from services.ops.cli import main
from services.replay import commands
from services.replay.checkpoints import CheckpointDir, LedgerCheckpoint
from services.replay.ledger import LedgerFold
from services.replay.reading import Reading
from services.replay.records import LogRecord
from services.replay.selection import KnownThings


class Cluster:
    """The records of a log, each partition in offset order, served the way read_topics and records_at serve them."""

    def __init__(self, records: Iterable[LogRecord]) -> None:
        self.records = list(records)
        self.reads: list[int] = []

    def read_topics(
        self, _: str, topics: Iterable[str], stream: Any = None, starts: Mapping[tuple[str, int], int] | None = None
    ) -> Iterator[LogRecord]:
        wanted, read = set(topics), 0
        for record in self.records:
            if record.topic in wanted and record.offset >= (starts or {}).get((record.topic, record.partition), 0):
                read += 1
                yield record
        self.reads.append(read)

    def records_at(self, _: str, spots: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int, int], bytes | None]:
        held = {(r.topic, r.partition, r.offset): r.value for r in self.records}
        return {spot: held[spot] for spot in spots if spot in held}


@pytest.fixture(scope="module")
def whole() -> list[LogRecord]:
    return revoked_story().records(EVENT_TOPICS)


def serve(monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> Cluster:
    monkeypatch.setattr(commands, "read_topics", cluster.read_topics)
    monkeypatch.setattr(commands, "records_at", cluster.records_at)
    return cluster


def replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    assert main(["replay", "--bootstrap", "memory:0", *argv]) == 0
    out, err = capsys.readouterr()
    return out, err


def first_part(records: list[LogRecord], share: float) -> list[LogRecord]:
    """The first `share` of every partition's records: the log as it was at some earlier moment."""
    sizes: dict[tuple[str, int], int] = {}
    for record in records:
        sizes[(record.topic, record.partition)] = sizes.get((record.topic, record.partition), 0) + 1
    return [r for r in records if r.offset < int(sizes[(r.topic, r.partition)] * share)]


@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 1.0])
@pytest.mark.parametrize("form", [["--format", "json"], ["--format", "csv"], [], ["--buyer", "alibaba"]])
def test_a_replay_from_a_checkpoint_prints_what_a_whole_replay_prints(
    whole: list[LogRecord],
    share: float,
    form: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(monkeypatch, Cluster(first_part(whole, share)))
    _, wrote = replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    assert "wrote ledger checkpoint" in wrote
    cluster = serve(monkeypatch, Cluster(whole))
    expected, _ = replay(capsys, *form)
    got, err = replay(capsys, *form, "--checkpoints", str(tmp_path))

    assert got == expected
    assert "starting from ledger checkpoint" in err
    assert cluster.reads[-1] == len(whole) - len(first_part(whole, share))  # only the records since were read


def test_as_of_starts_only_from_a_checkpoint_whose_events_were_all_decided_by_then(
    whole: list[LogRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    early = first_part(whole, 0.5)
    serve(monkeypatch, Cluster(early))
    replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    serve(monkeypatch, Cluster(whole))
    replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))  # a second, newer checkpoint
    assert len(list(tmp_path.glob("*.checkpoint"))) == 2

    for minute in (0, 3, 61, 121, 179, 185, 300, 10_000):
        moment = at(minute).isoformat()
        expected, _ = replay(capsys, "--format", "json", "--as-of", moment)
        got, err = replay(capsys, "--format", "json", "--as-of", moment, "--checkpoints", str(tmp_path))
        assert got == expected, f"as of minute {minute}"
        if "starting from ledger checkpoint" not in err:
            assert "holds events decided after" in err and "read from its start" in err
    # With the log's end far ahead of every event, the newest checkpoint is used: nothing is read since it.
    _, err = replay(capsys, "--format", "json", "--as-of", at(10_000).isoformat(), "--checkpoints", str(tmp_path))
    assert f"events, {sum(1 for _ in whole):,} records read before it" in err


def test_a_checkpoint_of_another_log_or_a_damaged_one_is_named_and_not_used(
    whole: list[LogRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, Cluster(first_part(whole, 0.5)))
    replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    # The same log, except one record the checkpoint's anchor covers: a topic recreated and written again.
    anchored = max((r for r in first_part(whole, 0.5)), key=lambda r: (r.topic == whole[0].topic, r.offset))
    changed = [replace(r, value=(r.value or b"") + b" ") if r == anchored else r for r in whole]
    serve(monkeypatch, Cluster(changed))
    expected, _ = replay(capsys, "--format", "json")
    got, err = replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    assert got == expected
    assert f"not the one it was made of ({anchored.topic}[{anchored.partition}]" in err
    assert "read from its start" in err

    assert "wrote ledger checkpoint" in err  # of the log as it is now, beside the refused one
    path = max(tmp_path.glob("*.checkpoint"))  # the newest: the one a replay would start from
    path.write_bytes(path.read_bytes()[:-10])
    _, err = replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    assert f"{path.name}: cannot be loaded (its body does not match its SHA-256" in err

    # One written by an earlier format (/1 kept the ids seen as a set of ints) is named as such, never misread.
    path.write_bytes(b"h200-ledger-checkpoint/1\n" + path.read_bytes().split(b"\n", 1)[1])
    got, err = replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    assert got == expected
    assert f"{path.name}: cannot be loaded (a checkpoint of another format (h200-ledger-checkpoint/1" in err


def test_checkpoints_are_refused_with_an_export_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = revoked_story().export(tmp_path / "export.jsonl")
    code = main(["replay", "--from-file", str(export), "--checkpoints", str(tmp_path / "c")])
    _, err = capsys.readouterr()
    assert code != 0 and "--checkpoints starts from offsets on the cluster" in err


def test_the_checkpoint_names_its_latest_event_time(
    whole: list[LogRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, Cluster(whole))
    replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    (path,) = tmp_path.glob("*.checkpoint")
    stamp = path.name.split("-")[1]
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ") >= at(180).replace(tzinfo=None)


def test_a_record_written_again_after_the_checkpoint_still_counts_once(
    whole: list[LogRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, Cluster(whole))
    replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    # A producer's retry of an early event lands at the end of its partition, after the checkpoint's end.
    early = next(r for r in whole if r.topic == "h200.allocations")
    end = max(r.offset for r in whole if (r.topic, r.partition) == (early.topic, early.partition)) + 1
    serve(monkeypatch, Cluster([*whole, replace(early, offset=end)]))
    expected, _ = replay(capsys, "--format", "json")
    got, err = replay(capsys, "--format", "json", "--checkpoints", str(tmp_path))
    assert "starting from ledger checkpoint" in err
    assert got == expected


def test_a_checkpoint_that_cannot_be_written_is_named_and_the_ledger_still_printed(
    whole: list[LogRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(monkeypatch, Cluster(whole))
    expected, _ = replay(capsys, "--format", "json")
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    got, err = replay(capsys, "--format", "json", "--checkpoints", str(not_a_directory))
    assert got == expected
    assert f"no ledger checkpoint written to {not_a_directory}" in err


def test_a_checkpoint_is_streamed_as_it_is_unpickled_not_read_whole_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An --as-of replay's peak held the checkpoint file's bytes beside the fold unpickled from them (738 MB at 5M
    events): now its digest is checked a block at a time and the body unpickled from the file. Blocks small beside
    the ids here, as they are beside millions of them."""
    monkeypatch.setattr(digests, "BLOCK", 1 << 16)
    monkeypatch.setattr(seen_ids, "BLOCK", 1024)
    ids = SeenIds.from_run(bytearray(b"".join(sorted(UUID(int=n * 7919).bytes for n in range(200_000)))))
    made = LedgerCheckpoint(("h200.allocations",), {}, {}, None, LedgerFold(), Reading(_seen=ids), KnownThings())
    path = CheckpointDir(tmp_path).save(made)
    tracemalloc.start()
    try:
        loaded = CheckpointDir(tmp_path).load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.reading.seen == ids and loaded.topics == ("h200.allocations",)
    size = path.stat().st_size
    assert peak < 1.3 * size, f"loading a {size / 1e6:.1f} MB checkpoint peaked at {peak / 1e6:.1f} MB"
