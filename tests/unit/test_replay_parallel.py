"""A replay read by several processes (services.replay.parallel): the log's partitions cut into contiguous runs,
each folded on its own with its own names table, and merged in order, give the ledger one process folding the
whole log gives, line for line and hash for hash; an event id in two runs sends the replay back to one process."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from builders_replay import World, at, revoked_story, story

from schemas.topics import EVENT_TOPICS
from services.replay.parallel import cut, folded, merged
from services.replay.records import LogRecord, in_catalogue_order

TOPICS = in_catalogue_order(EVENT_TOPICS)


def in_read_order(records: list[LogRecord]) -> list[LogRecord]:
    """As the bulk reader gives them: topic by topic in catalogue order, partition by partition, by offset."""
    return sorted(
        (r for r in records if r.topic in TOPICS), key=lambda r: (TOPICS.index(r.topic), r.partition, r.offset)
    )


def bounds_of(records: list[LogRecord]) -> list[tuple[tuple[str, int], int, int]]:
    found: dict[tuple[str, int], list[int]] = {}
    for record in records:
        found.setdefault((record.topic, record.partition), []).append(record.offset)
    return [(partition, min(offsets), max(offsets) + 1) for partition, offsets in found.items()]


def in_parallel(records: list[LogRecord], parts: int, as_of: datetime | None) -> tuple[object, ...] | None:
    runs = cut(bounds_of(records), parts)
    folds = []
    for run in runs:
        mine = {partition for partition, _, _ in run}
        folds.append(folded([r for r in records if (r.topic, r.partition) in mine], TOPICS, "test", as_of))
    both = merged(folds, TOPICS)
    if both is None:
        return None
    fold, reading = both
    ledger = fold.ledger()
    return ledger.ledger_hash, list(ledger.lines), reading.events, reading.duplicates, len(reading.seen), len(runs)


def in_one(records: list[LogRecord], as_of: datetime | None) -> tuple[object, ...]:
    fold, reading = folded(records, TOPICS, "test", as_of)
    ledger = fold.ledger()
    return ledger.ledger_hash, list(ledger.lines), reading.events, reading.duplicates, len(reading.seen)


def repeated(world: World) -> list[LogRecord]:
    """Every event written twice in its own partition (a producer retrying everything)."""
    records = world.records()
    return [*records, *(replace(r, offset=r.offset + 1000) for r in records if r.topic in TOPICS)]


@pytest.mark.parametrize("parts", [2, 3, 5])
@pytest.mark.parametrize("moment", [None, at(120)])
@pytest.mark.parametrize("log", ["story", "revoked", "repeated"])
def test_runs_folded_apart_and_merged_give_the_ledger_of_one_fold(
    log: str, moment: datetime | None, parts: int
) -> None:
    world = revoked_story() if log == "revoked" else story()
    records = in_read_order(repeated(world) if log == "repeated" else world.records())

    apart = in_parallel(records, parts, moment)

    assert apart is not None
    *ledger, runs = apart
    assert tuple(ledger) == in_one(records, moment)
    assert runs > 1  # the log was cut: several folds were merged


def test_an_event_id_in_two_runs_sends_the_replay_back_to_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    records = in_read_order(story().records())
    first, last = records[0], records[-1]
    assert (first.topic, first.partition) != (last.topic, last.partition)
    # the first event written again at the end of the last partition: the two runs both read its id
    records.append(replace(first, topic=last.topic, partition=last.partition, offset=last.offset + 1))

    assert in_parallel(records, 2, None) is None
    assert "read by two of the reading processes: reading with one" in capsys.readouterr().err


def test_the_cut_is_contiguous_and_even() -> None:
    bounded = [(("a", n), 0, size) for n, size in enumerate([10, 10, 10, 10, 50, 10])]
    runs = cut(bounded, 2)
    assert [item for run in runs for item in run] == bounded  # in order, each partition once
    assert [sum(high - low for _, low, high in run) for run in runs] == [40, 60]
    assert len(cut(bounded, 10)) == 6 and cut(bounded[:1], 4) == [bounded[:1]]
