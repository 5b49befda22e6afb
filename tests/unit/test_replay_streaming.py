"""`h200 replay` folds while it reads: the ledger it prints is the one the in-memory fold of the whole log gave
(the fold as it was before it streamed is kept here as the oracle), in every format, as of any moment, with
any filter, records written twice and unreadable records included; and the fold keeps no decoded event."""

from __future__ import annotations

import gc
import hashlib
import json
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from builders_replay import World, at, revoked_story, story

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved
from schemas.base import Message
from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from schemas.intake import OrderPlaced
from schemas.supply import BatchManufactured
from schemas.topics import BY_NAME, EVENT_TOPICS
from services.ops.cli import main
from services.replay import commands
from services.replay.eventlog import build_log
from services.replay.exportfile import make_header, write_export
from services.replay.ledger import Demand, LedgerFold, Line, Stock, decided_at, iso, line_status, make_ledger
from services.replay.reading import Reading, read_events
from services.replay.records import LogRecord


def oracle(events: Iterable[Envelope[Message]], as_of: datetime | None = None) -> dict[str, Any]:
    """The ledger as fold_ledger computed it before it streamed: every payload kept, lines built at the end."""
    allocated: dict[str, Any] = {}
    released: set[str] = set()
    steps: dict[str, list[Any]] = {}
    batches: dict[str, Any] = {}
    requested: dict[str, int] = {}
    approved: dict[str, int] = {}
    for envelope in events:
        if as_of is not None and decided_at(envelope) > as_of:
            continue
        p: Any = envelope.payload
        match p:
            case ChipsAllocated():
                allocated.setdefault(str(p.allocation_id), p)
            case AllocationReleased():
                released.add(str(p.allocation_id))
            case FulfilmentStepRecorded():
                steps.setdefault(str(p.allocation_id), []).append(p)
            case BatchManufactured():
                batches.setdefault(p.batch_id, p)
            case OrderPlaced():
                requested[p.buyer_id] = requested.get(p.buyer_id, 0) + p.quantity
            case OrderApproved():
                approved[p.buyer_id] = approved.get(p.buyer_id, 0) + p.approved_quantity
    lines = []
    for key, a in allocated.items():
        taken = steps.get(key, [])
        when = {step.step: iso(step.at) for step in taken}
        lines.append(
            Line(
                key,
                a.pool_id,
                a.buyer_id,
                str(a.order_id),
                a.batch_id,
                a.quantity,
                iso(a.allocated_at),
                line_status(key in released, taken[-1].step if taken else None),
                when.get("shipped"),
                when.get("delivered"),
                a.rule,
                str(a.policy_ref) if a.policy_ref else "default",
                str(a.cause_event_id),
            )
        )
    stock = [Stock(b.batch_id, b.pool_id, b.quantity) for b in batches.values()]
    demand = {buyer: Demand(asked, approved.get(buyer, 0)) for buyer, asked in requested.items()}
    ledger = make_ledger(None if as_of is None else iso(as_of), lines, stock, demand)
    text = json.dumps(ledger.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**ledger.canonical(), "ledger_hash": hashlib.sha256(text.encode()).hexdigest()}


def _twice_and_broken(world: World) -> list[LogRecord]:
    """The world's records with every event topic's records written twice (a producer retrying everything) and
    one unreadable record."""
    records = world.records()
    again = [replace(r, offset=r.offset + 1000) for r in records if r.topic in EVENT_TOPICS]
    return [*records, *again, LogRecord("h200.allocations", 0, 5000, b"h200", b'{"not": "an envelope"}')]


@pytest.fixture(scope="module", params=["story", "revoked", "repeated"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[LogRecord], Path]:
    world = revoked_story() if request.param == "revoked" else story()
    records = _twice_and_broken(world) if request.param == "repeated" else world.records()
    path = tmp_path_factory.mktemp(request.param) / "export.jsonl"
    topics = [t for t in BY_NAME if not t.startswith("h200.dlq.")]
    write_export(path, make_header("world", topics), sorted(records, key=lambda r: (topics.index(r.topic),)))
    return records, path


@pytest.fixture(autouse=True)
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("a command given --from-file must not read Kafka")

    monkeypatch.setattr(commands, "read_topics", refused)


def replay(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["replay", "--from-file", str(path), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def in_memory(path: Path) -> list[Envelope[Message]]:
    from services.replay.exportfile import read_export

    return build_log(read_export(path, EVENT_TOPICS), EVENT_TOPICS).events


@pytest.mark.parametrize("moment", [None, at(59), at(120), at(200), at(100_000)])
def test_the_ledger_folded_while_reading_is_the_ledger_of_the_whole_log_in_memory(
    scenario: tuple[list[LogRecord], Path], moment: datetime | None, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = scenario
    cut = [] if moment is None else ["--as-of", moment.isoformat()]

    code, out, _ = replay(capsys, path, "--format", "json", *cut)

    expected = oracle(in_memory(path), moment)
    document = json.loads(out)
    assert code == 0
    assert (document["lines"], document["totals"], document["ledger_hash"]) == (
        expected["lines"],
        expected["totals"],
        expected["ledger_hash"],
    )
    assert document["events"] == len(in_memory(path))


def test_a_filtered_replay_shows_the_lines_of_the_whole_log_s_ledger_and_its_hash(
    scenario: tuple[list[LogRecord], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = scenario

    code, out, _ = replay(capsys, path, "--format", "json", "--buyer", "alibaba", "--order", "AL-1")

    expected = oracle(in_memory(path))
    document = json.loads(out)
    assert code == 0 and document["ledger_hash"] == expected["ledger_hash"]
    assert document["lines"] == [line for line in expected["lines"] if line["buyer"] == "alibaba"]
    assert document["lines"] and document["filters"] == {"buyer": "alibaba", "order": document["lines"][0]["order_id"]}


def test_the_table_names_the_kind_of_event_behind_each_line_and_the_events_read(
    scenario: tuple[list[LogRecord], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = scenario
    events = in_memory(path)
    kinds = {str(e.id): e.type for e in events}

    code, out, _ = replay(capsys, path)

    expected = oracle(events)
    rows = [row for row in out.splitlines() if row[:4] == "2026"]
    assert code == 0 and len(rows) == len(expected["lines"])
    for row, line in zip(rows, expected["lines"], strict=True):
        assert row.endswith(f"{kinds[line['cause_event_id']]} {line['cause_event_id'][:8]}")
    assert f", {len(events):,} events from file " in out.splitlines()[0]
    assert out.splitlines()[-1] == f"ledger_hash {expected['ledger_hash']}"


def test_the_csv_lists_the_same_lines(
    scenario: tuple[list[LogRecord], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = scenario

    code, out, _ = replay(capsys, path, "--format", "csv")

    assert code == 0 and len(out.splitlines()) == 1 + len(oracle(in_memory(path))["lines"])


def test_a_record_written_twice_counts_once_and_an_unreadable_one_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    world = story()
    records = _twice_and_broken(world)
    reading = Reading(EVENT_TOPICS, "world")
    fold = LedgerFold()
    for read in read_events([r for r in records if r.topic in EVENT_TOPICS], reading):
        fold.add(read.envelope)

    once = build_log(world.records(EVENT_TOPICS), EVENT_TOPICS)
    assert (reading.events, reading.duplicates) == (len(once.events), len(once.events))
    assert reading.undecodable == 1 and reading.rejected[0].startswith("h200.allocations[0]@5000: ")
    assert fold.ledger().ledger_hash == oracle(once.events)["ledger_hash"]


def test_the_ledger_hash_is_the_sha256_of_the_whole_canonical_ledger_text() -> None:
    ledger = LedgerFold()
    for e in story().log().events:
        ledger.add(e)
    whole = ledger.ledger()

    text = json.dumps(whole.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert whole.ledger_hash == hashlib.sha256(text.encode()).hexdigest()


def test_the_fold_keeps_no_decoded_event_once_it_has_taken_it_in() -> None:
    events = story().log().events
    alive: list[weakref.ref[Any]] = []

    def copies() -> Iterator[Envelope[Message]]:
        for e in events:
            copy = e.model_copy(update={"payload": e.payload.model_copy()})
            alive.append(weakref.ref(copy.payload))
            yield copy

    fold = LedgerFold()
    for envelope in copies():
        fold.add(envelope)
    del envelope  # the loop's own reference to the last one
    gc.collect()

    assert fold.ledger().ledger_hash == oracle(events)["ledger_hash"]
    assert len(alive) == len(events) and all(ref() is None for ref in alive)


@pytest.mark.parametrize("buyer", [None, "alibaba", "baidu"])
def test_the_json_written_a_line_at_a_time_is_the_whole_document_s_text(buyer: str | None) -> None:
    from dataclasses import asdict

    from services.replay.render import ledger_json_pieces
    from services.replay.selection import Selection, known_things, shown_lines, shown_totals

    log = story().log()
    fold = LedgerFold()
    for e in log.events:
        fold.add(e)
    ledger = fold.ledger()
    selection = Selection(buyer=buyer).resolve(known_things(log.events))

    document: dict[str, Any] = {
        "as_of": None,
        "lines": [asdict(line) for line in shown_lines(ledger, selection)],
        "totals": shown_totals(ledger, selection),
        "ledger_hash": ledger.ledger_hash,
        "events": 7,
    }
    if buyer:
        document["filters"] = {"buyer": buyer}
    assert "".join(ledger_json_pieces(ledger, selection, 7)) == json.dumps(document, indent=2, ensure_ascii=False)
    assert bool(document["lines"]) == (buyer != "baidu")
