"""The determinism check covers everything the allocation core writes, not only ledger lines: the recalls it asks
of fulfilment and the orders it closes for approval are refolded and compared too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from builders_replay import World, read_lines, revoked_story, write_lines

from schemas.topics import EVENT_TOPICS
from services.replay.determinism import check_determinism
from services.replay.eventlog import EventLog, build_log
from services.replay.exportfile import read_export
from services.replay.records import INBOX, in_catalogue_order

TOPICS = in_catalogue_order((*EVENT_TOPICS, INBOX))


@pytest.fixture(scope="module")
def world() -> World:
    return revoked_story()


def load(path: Path) -> EventLog:
    return build_log(read_export(path, TOPICS), TOPICS, str(path))


def test_a_revocation_refolds_to_the_recorded_recall_release_and_close(world: World) -> None:
    recorded = Counter(e.type for e in world.events("h200.allocations"))
    assert recorded["AllocationRecallRequested"] == 1 and recorded["OrderClosed"] == 1

    report = check_determinism(world.log())

    assert report.divergences == []
    assert report.recorded == report.decided == sum(recorded.values())


def test_a_recall_missing_from_an_export_is_caught(world: World, tmp_path: Path) -> None:
    lines = read_lines(world.export(tmp_path / "export.jsonl"))
    recall = next(n for n, line in enumerate(lines) if line.get("value", {}).get("type") == "AllocationRecallRequested")
    del lines[recall]

    first = check_determinism(load(write_lines(tmp_path / "export.jsonl", lines))).first

    assert first is not None
    assert first.expected is not None and first.expected.type == "AllocationRecallRequested"
    assert first.cause is not None and first.cause.envelope.type == "ApprovalRevoked"


def test_a_kept_quantity_altered_in_an_export_is_caught(world: World, tmp_path: Path) -> None:
    lines = read_lines(world.export(tmp_path / "export.jsonl"))
    closed = next(
        line
        for line in lines
        if line.get("topic") == "h200.allocations" and line.get("value", {}).get("type") == "OrderClosed"
    )
    closed["value"]["payload"]["kept_quantity"] = 129

    first = check_determinism(load(write_lines(tmp_path / "export.jsonl", lines))).first

    assert first is not None and first.what == "payload.kept_quantity: expected 0, recorded 129"
