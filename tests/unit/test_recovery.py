"""Recovery folds what was recorded and never decides again (issue #9): the journal, snapshots, and a changed core
deployed between a decision and its commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import services.approval.domain  # noqa: F401 - its version is compared
from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.intake import SubmitOrder
from schemas.journal import JournalEntry
from schemas.samples import AT, sample_payloads
from services.common.core_version import core_version, version_sources
from services.common.journal import MemoryJournal, decisions, split
from services.common.partitions import Outcome, PartitionedCore
from services.common.records import LOG_APPEND_TIME, Record
from services.common.snapshots import MemorySnapshots
from services.intake import domain as intake_core

INBOX = "h200.intake.inbox"
SUBMIT: SubmitOrder = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
ARRIVED_MS = int(AT.timestamp() * 1000)


def submission(ref: str) -> bytes:
    payload = SUBMIT.model_copy(update={"upstream_ref": ref})
    return encode(
        make_envelope(payload, key=payload.buyer_id, producer="test", occurred_at=AT, message_id=derive_id(ref))
    )


def inbox(values: list[bytes]) -> list[Record]:
    return [
        Record(INBOX, 0, offset, b"k", value, (), ARRIVED_MS + offset * 1000, LOG_APPEND_TIME)
        for offset, value in enumerate(values)
    ]


class Log:
    def __init__(self, records: list[Record]) -> None:
        self.records = records

    async def replay(self, topic: str, partition: int, until: int, start: int = 0) -> AsyncIterator[Record]:
        for record in self.records[start:until]:
            yield record


class Counting:
    """A real core (intake's) that counts its decisions; `refuse_all` makes it a changed core that decides
    otherwise (it places nothing), under another version."""

    NAME = intake_core.NAME

    def __init__(self, refuse_all: bool = False) -> None:
        self.refuse_all = refuse_all
        self.VERSION = "variant" if refuse_all else "original"
        self.decisions = 0
        self.initial_state = intake_core.initial_state
        self.evolve = intake_core.evolve

    def decide(self, state: Any, message: Envelope[Any]) -> Sequence[Message]:
        self.decisions += 1
        return [] if self.refuse_all else intake_core.decide(state, message)


def worker(
    core: Any, log: Log, journal: MemoryJournal, snapshots: MemorySnapshots | None = None, every: int = 0
) -> Any:
    return PartitionedCore(core, log.replay, 1_000_000, journal=journal, snapshots=snapshots, snapshot_every=every)


def handle_all(runner: PartitionedCore, records: list[Record]) -> list[list[Envelope[Message]]]:
    return [outcome.outputs for outcome in outcomes(runner, records)]


def outcomes(runner: PartitionedCore, records: list[Record]) -> list[Outcome]:
    async def go() -> list[Outcome]:
        return [await runner.handle(record) for record in records]

    return asyncio.run(go())


def test_a_rebuild_folds_the_journal_and_never_decides() -> None:
    log, journal = Log(inbox([submission(f"R{n}") for n in range(6)])), MemoryJournal()
    first = Counting()
    handle_all(worker(first, log, journal), log.records[:5])
    assert first.decisions == 5
    restarted = Counting()
    runner = worker(restarted, log, journal)
    outputs = handle_all(runner, log.records[5:])  # a first record at offset 5: offsets 0-4 are rebuilt
    assert restarted.decisions == 1 and [o.type for o in outputs[0]] == ["OrderPlaced"]
    assert runner.figures.folded == 5 and runner.figures.redecided == 0
    replayed = asyncio.run(PartitionedCore(Counting(), log.replay, 1_000_000).rebuilt_state(INBOX, 0, 6))
    assert runner.state_of(INBOX, 0) == replayed  # the fold of the journal is the state deciding again reaches


def test_a_changed_core_deployed_before_a_commit_repeats_what_was_decided_and_decides_only_what_is_new() -> None:
    log, journal = Log(inbox([submission(f"R{n}") for n in range(5)])), MemoryJournal()
    original = Counting()
    before_crash = handle_all(worker(original, log, journal), log.records[:3])
    # The worker crashed after deciding offsets 0-2 with only offset 0 committed; the variant is deployed.
    variant = Counting(refuse_all=True)
    runner = worker(variant, log, journal)
    answered = outcomes(runner, log.records[1:])
    after = [outcome.outputs for outcome in answered]
    # what is sent again says which core decided it: the original, not the one running now
    assert [o.decided_by for o in answered] == ["intake@original"] * 2 + ["intake@variant"] * 2
    assert [[o.id for o in outputs] for outputs in after[:2]] == [
        [o.id for o in outputs] for outputs in before_crash[1:]
    ]
    assert [encode(o) for o in after[1]] == [encode(o) for o in before_crash[2]]  # the same bytes, resent
    assert after[2:] == [[], []]  # what is new is decided by the variant
    assert variant.decisions == 2
    assert runner.figures.redecided == 0


def test_a_rebuild_from_a_snapshot_reads_only_the_tail_and_reaches_the_full_folds_state() -> None:
    log, journal, snapshots = Log(inbox([submission(f"R{n}") for n in range(12)])), MemoryJournal(), MemorySnapshots()
    handle_all(worker(Counting(), log, journal, snapshots, every=4), log.records[:11])
    read: list[int] = []

    async def counted(topic: str, partition: int, until: int, start: int = 0) -> AsyncIterator[Record]:
        read.append(start)
        async for record in log.replay(topic, partition, until, start):
            yield record

    restarted = PartitionedCore(Counting(), counted, 1_000_000, journal=journal, snapshots=snapshots, snapshot_every=4)
    handle_all(restarted, log.records[11:])
    assert restarted.figures.snapshots_used == 1 and read == [7, 8]  # the record before the snapshot, then the tail
    full = asyncio.run(PartitionedCore(Counting(), log.replay, 1_000_000).rebuilt_state(INBOX, 0, 12))
    assert restarted.state_of(INBOX, 0) == full


def test_a_snapshot_of_another_core_or_another_log_or_corrupt_is_not_used_and_is_counted() -> None:
    log, journal, snapshots = Log(inbox([submission(f"R{n}") for n in range(6)])), MemoryJournal(), MemorySnapshots()
    handle_all(worker(Counting(), log, journal, snapshots, every=2), log.records[:5])
    variant = worker(Counting(refuse_all=True), log, journal, snapshots)
    asyncio.run(variant.rebuilt_state(INBOX, 0, 5))
    assert variant.figures.snapshots_unusable == 1 and variant.figures.folded == 5

    other = Log(inbox([submission(f"X{n}") for n in range(6)]))  # an inbox recreated with other records
    misplaced = worker(Counting(), other, MemoryJournal(), snapshots)
    asyncio.run(misplaced.rebuilt_state(INBOX, 0, 5))
    assert misplaced.figures.snapshots_unusable == 1 and misplaced.figures.snapshots_used == 0

    for kept in snapshots.saved.values():
        for offset in kept:
            kept[offset] = kept[offset][:-1] + b"!"
    corrupt = worker(Counting(), log, journal, snapshots)
    assert asyncio.run(corrupt.rebuilt_state(INBOX, 0, 5)) == asyncio.run(
        worker(Counting(), log, journal).rebuilt_state(INBOX, 0, 5)
    )
    assert corrupt.figures.snapshots_unusable == 1


def test_a_snapshot_taken_past_the_committed_offset_is_passed_over_for_an_earlier_one() -> None:
    log, journal, snapshots = Log(inbox([submission(f"R{n}") for n in range(9)])), MemoryJournal(), MemorySnapshots()
    handle_all(worker(Counting(), log, journal, snapshots, every=3), log.records)  # snapshots at 3, 6, 9
    restarted = worker(Counting(), log, journal, snapshots)
    handle_all(restarted, log.records[7:])  # committed up to 7 only
    assert restarted.figures.snapshots_used == 1 and restarted.figures.folded == 1  # snapshot 6, then offset 6


class SlowSnapshots(MemorySnapshots):
    """Each save takes `cost` seconds of a clock the test moves by hand."""

    def __init__(self, clock: list[float], cost: float) -> None:
        super().__init__()
        self.clock, self.cost = clock, cost

    def capture(self, snapshot: Any) -> Any:
        self.clock[0] += self.cost
        return super().capture(snapshot)


def test_snapshots_take_no_more_than_their_share_of_time_and_still_give_the_full_fold(monkeypatch: Any) -> None:
    clock = [100.0]
    monkeypatch.setattr("services.common.partitions.time.monotonic", lambda: clock[0])
    log, journal = Log(inbox([submission(f"R{n}") for n in range(12)])), MemoryJournal()
    snapshots = SlowSnapshots(clock, cost=2.0)
    runner = PartitionedCore(
        Counting(), log.replay, 1_000_000, journal=journal, snapshots=snapshots, snapshot_every=1, snapshot_share=0.25
    )
    taken_after = []
    for record in log.records:
        before = runner.figures.snapshots_written
        handle_all(runner, [record])
        if runner.figures.snapshots_written > before:
            taken_after.append(record.offset)
        clock[0] += 1.0  # a second between records
    # A save of 2 s at a share of 1/4 waits 6 s: offset 0 at t=100 (done at 102), next not before 108, and so on.
    assert taken_after == [0, 6]
    restarted = worker(Counting(), log, journal, snapshots)
    assert asyncio.run(restarted.rebuilt_state(INBOX, 0, 12)) == asyncio.run(
        worker(Counting(), log, journal).rebuilt_state(INBOX, 0, 12)
    )
    assert restarted.figures.snapshots_used == 1

    by_count = worker(Counting(), log, MemoryJournal(), SlowSnapshots(clock, cost=2.0), every=1)
    handle_all(by_count, log.records)
    assert by_count.figures.snapshots_written == 12  # no share: every `snapshot_every` records, whatever they cost


def test_outputs_too_large_for_one_record_are_journaled_in_parts_and_a_cut_entry_counts_as_undecided() -> None:
    outputs = tuple(f'{{"n": "{n}{"x" * 400}"}}' for n in range(30))
    entry = JournalEntry(
        inbox=INBOX,
        partition=0,
        offset=3,
        record_sha256="0" * 64,
        core_version="t@1",
        outcome="decided",
        outputs=outputs,
    )
    parts = split(entry, 12_000)
    assert len(parts) > 1 and all(len(p.model_dump_json()) < 12_000 for p in parts)

    async def read(values: list[JournalEntry]) -> list[JournalEntry]:
        async def records() -> AsyncIterator[tuple[int, bytes | None]]:
            for position, value in enumerate(values):
                yield position, value.model_dump_json().encode()

        return [recorded.entry async for recorded in decisions(records(), 0)]

    assert [e.outputs for e in asyncio.run(read(parts))] == [outputs]
    assert asyncio.run(read(parts[:-1])) == []  # a crash between parts: nothing of it was sent
    again = [*parts, entry.model_copy(update={"outputs": ()})]
    assert [e.outputs for e in asyncio.run(read(again))] == [outputs]  # the first entry for an offset stands


def test_a_core_version_is_a_digest_of_its_code(tmp_path: Any, monkeypatch: Any) -> None:
    import sys
    import types

    package = tmp_path / "variantcore"
    package.mkdir()
    (package / "__init__.py").write_text("NAME = 'toy'\n")
    (package / "rules.py").write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__("variantcore")
    before = core_version(module)
    (package / "rules.py").write_text("LIMIT = 2\n")
    assert before.startswith("toy@") and core_version(module) != before
    assert core_version(intake_core) != core_version(sys.modules["services.approval.domain"])
    assert core_version(types.SimpleNamespace(NAME="x", VERSION="7")) == "x@7"


def test_a_core_version_covers_the_pure_parts_the_cores_share() -> None:
    # SeenIds decides what a core takes for a repeat and is pickled into its snapshots: a change to it is a change
    # of every core, and snapshots made before it must not be used after it.
    names = {path.name for path in version_sources(intake_core)}
    assert {"seen_ids.py", "decider.py"} <= names
