"""`h200 verify` reads the log as a stream (the allocation core's decisions, then every record once, each check
keeping only its facts) and must report exactly what verify over the whole log held in memory reports: on sound
logs and on copies damaged at random as an export file can be (records dropped, repeated, moved to the end of the
file or onto another topic, cut short; a quantity, a producer or a cause changed). Seeded: a failure names its seed.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from builders_replay import World, revoked_story, story

from schemas.topics import BY_NAME, EVENT_TOPICS
from services.ops.cli import main
from services.replay.commands import export_chain
from services.replay.determinism import check_determinism
from services.replay.eventlog import build_log
from services.replay.exportfile import make_header, read_export, write_export
from services.replay.records import CLOCK, INBOX, LogRecord, in_catalogue_order
from services.replay.reports import determinism_json, verify_json, what_if_json
from services.replay.verify import verify
from services.replay.whatif import what_if

TOPICS = in_catalogue_order((*EVENT_TOPICS, CLOCK, INBOX))
EXPORTED = [topic for topic in BY_NAME if not topic.startswith("h200.dlq.")]
SEEDS = range(48)
CHANGES = ("drop", "repeat", "repeat_at_end", "to_the_end", "other_topic", "cut_short", "quantity", "producer", "cause")


@pytest.fixture(scope="module")
def worlds() -> list[World]:
    return [story(), revoked_story(), story(World(arrival_delay=timedelta(seconds=90)))]


def damaged(records: list[LogRecord], rng: random.Random) -> list[LogRecord]:
    records = list(records)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(records))
        record, change = records[at], rng.choice(CHANGES)
        if change == "drop":
            del records[at]
        elif change == "repeat":
            records.insert(at, record)
        elif change == "repeat_at_end":
            records.append(record)
        elif change == "to_the_end":
            records.append(records.pop(at))
        elif change == "other_topic":
            records[at] = dataclasses.replace(record, topic=rng.choice(TOPICS), partition=0)
        elif change == "cut_short":
            records[at] = dataclasses.replace(record, value=(record.value or b"")[:-3])
        else:
            records[at] = dataclasses.replace(record, value=_changed(record.value or b"", change, rng))
    # offsets as a broker gives them: unique and rising in each partition, in the order of the file
    offsets: dict[tuple[str, int], int] = {}
    renumbered = []
    for record in records:
        offset = offsets.get((record.topic, record.partition), 0)
        offsets[(record.topic, record.partition)] = offset + 1
        renumbered.append(dataclasses.replace(record, offset=offset))
    return renumbered


def _changed(value: bytes, change: str, rng: random.Random) -> bytes:
    try:
        envelope = json.loads(value)
        payload = envelope["payload"]
    except (ValueError, KeyError, TypeError):
        return value
    if change == "producer":
        envelope["producer"] = rng.choice(["ops", "approval", "allocation", "fulfilment", "intake", "mallory"])
    elif change == "cause" and "cause_event_id" in payload:
        payload["cause_event_id"] = "00000000-0000-4000-8000-000000000001"
    elif change == "quantity":
        counts = [name for name, item in payload.items() if type(item) is int]
        if counts:
            payload[rng.choice(counts)] += rng.choice([-2, -1, 1, 5])
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("seed", SEEDS)
def test_verify_streamed_from_an_export_reports_what_verify_over_the_whole_log_reports(
    worlds: list[World], seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = worlds[seed % len(worlds)]
    records = world.records(EXPORTED)
    if seed >= len(worlds):  # the first of each world is sound
        records = damaged(records, random.Random(seed))
    path = tmp_path / "export.jsonl"
    write_export(path, make_header("world", EXPORTED), records)
    whole = verify(build_log(read_export(path, TOPICS), TOPICS, str(path)), chain=export_chain(path, None))

    code = main(["verify", "--from-file", str(path), "--no-live", "--format", "json"])

    streamed = json.loads(capsys.readouterr().out)
    assert streamed == json.loads(verify_json(whole)), f"seed {seed}"
    assert code == (0 if whole.ok else 1)
    if seed < len(worlds):
        assert whole.ok, verify_json(whole)


@pytest.mark.parametrize("seed", SEEDS[::4])
def test_determinism_and_what_if_streamed_from_an_export_report_what_they_report_over_the_whole_log(
    worlds: list[World], seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = worlds[seed % len(worlds)]
    records = world.records(EXPORTED) if seed < len(worlds) else damaged(world.records(EXPORTED), random.Random(seed))
    path = tmp_path / "export.jsonl"
    write_export(path, make_header("world", EXPORTED), records)
    log = build_log(read_export(path, TOPICS), TOPICS, str(path))

    main(["determinism", "--from-file", str(path), "--format", "json"])
    assert json.loads(capsys.readouterr().out) == determinism_json(check_determinism(log)), f"seed {seed}"
    for rule, pools in (("pro_rata", None), ("first_approved_first_served", ["h200"])):
        main(
            [
                "what-if",
                "--from-file",
                str(path),
                "--rule",
                rule,
                *(f"--pool={p}" for p in pools or ()),
                "--format",
                "json",
            ]
        )
        expected = what_if_json(what_if(log, rule, set(pools) if pools else None))
        assert json.loads(capsys.readouterr().out) == json.loads(expected), f"seed {seed}, {rule}"


def test_damage_is_found_by_the_streamed_verify(worlds: list[World], tmp_path: Path) -> None:
    """The corpus above is not all sound logs: most damaged copies fail verify, and for several reasons."""
    failed, codes = 0, set()
    for seed in SEEDS[len(worlds) :]:
        records = damaged(worlds[seed % len(worlds)].records(EXPORTED), random.Random(seed))
        path = tmp_path / f"{seed}.jsonl"
        write_export(path, make_header("world", EXPORTED), records)
        report = verify(build_log(read_export(path, TOPICS), TOPICS, str(path)))
        failed += not report.ok
        codes |= {violation.code for violation in report.violations}
    assert failed >= (len(SEEDS) - len(worlds)) // 2
    assert len(codes) >= 5, codes
