"""Replay refolds an inbox with the times its core decided on: each record's arrival, the broker's LogAppendTime.

The services decide at the arrival of an input (docs/time.md), so a replay that read the same records without it
would decide at the sender's time and disagree with the recorded decisions. Here every inbox copy arrives seven
seconds after its envelope's time, as a broker stamping it would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from builders_replay import ROUTES, World, read_lines, story, write_lines

from schemas.topics import EVENT_TOPICS
from services.common.records import LOG_APPEND_TIME
from services.replay.determinism import check_determinism
from services.replay.eventlog import build_log
from services.replay.exportfile import decode_record, encode_record, read_export
from services.replay.records import CLOCK, INBOX, LogRecord, in_catalogue_order
from services.replay.verify import verify

DELAY = timedelta(seconds=7)
TOPICS = in_catalogue_order((*EVENT_TOPICS, CLOCK, INBOX))


@pytest.fixture(scope="module")
def delayed() -> World:
    return story(World(arrival_delay=DELAY))


def test_the_decisions_of_a_core_are_dated_by_the_arrival_of_their_cause(delayed: World) -> None:
    allocations = delayed.events("h200.allocations")
    inbox = {e.id: e for e in delayed.events(INBOX)}
    caused = [(e, inbox[e.causation_id]) for e in allocations if e.causation_id in inbox]

    assert caused
    for decision, cause in caused:
        assert cause.arrival is not None
        assert cause.arrival.at == cause.occurred_at + DELAY
        assert decision.occurred_at >= cause.arrival.at


def test_the_inbox_read_back_carries_each_record_s_arrival(delayed: World) -> None:
    log = build_log(delayed.records(TOPICS), TOPICS)

    arrivals = [item.envelope.arrival for records in log.inbox.values() for item in records]
    assert arrivals and all(arrival is not None for arrival in arrivals)
    assert {e.arrival for e in log.events} == {None}  # event topics are CreateTime: no arrival


def test_a_log_whose_inboxes_arrived_late_refolds_to_its_recorded_decisions(delayed: World) -> None:
    report = verify(build_log(delayed.records(TOPICS), TOPICS))

    assert report.determinism is not None and report.determinism.divergences == []
    assert report.determinism.decided == report.determinism.recorded > 0
    assert report.ok


def test_an_export_keeps_the_arrivals_so_its_replay_refolds_the_same(delayed: World, tmp_path: Path) -> None:
    export = delayed.export(tmp_path / "late.jsonl")
    assert any(line.get("timestamp_type") == LOG_APPEND_TIME for line in read_lines(export))

    report = check_determinism(build_log(read_export(export, TOPICS), TOPICS))

    assert report.divergences == []


def test_the_same_records_read_without_their_arrival_would_be_refolded_at_the_senders_times(
    delayed: World, tmp_path: Path
) -> None:
    export = delayed.export(tmp_path / "late.jsonl")
    stripped = write_lines(
        export, [{k: v for k, v in line.items() if k != "timestamp_type"} for line in read_lines(export)]
    )

    report = check_determinism(build_log(read_export(stripped, TOPICS), TOPICS))

    assert report.divergences, "arrivals must matter, or this test shows nothing"


def test_an_export_line_keeps_kafkas_timestamp_type_and_an_old_line_without_it_reads_as_none() -> None:
    record = LogRecord(INBOX, 1, 4, b"h200", b"{}", 1_769_590_800_123, (), LOG_APPEND_TIME)
    back = decode_record(encode_record(record), "line 2")
    assert back == record
    assert back.arrival is not None and back.arrival.at.microsecond == 123_000
    old = decode_record(encode_record(LogRecord(INBOX, 1, 4, b"h200", b"{}", 1_769_590_800_123)), "line 3")
    assert (old.timestamp_type, old.arrival) == (None, None)


def test_the_world_of_these_tests_is_wired_as_the_services_are() -> None:
    from services.allocation import app as allocation_app
    from services.approval import app as approval_app
    from services.fulfilment import app as fulfilment_app
    from services.intake import app as intake_app

    services = {
        (route.source, app.INBOX, frozenset(route.types))
        for app in (intake_app, approval_app, allocation_app, fulfilment_app)
        for route in app.ROUTES
    }
    world = {(source, inbox, frozenset(types)) for source, routes in ROUTES.items() for inbox, types in routes}
    assert world == services
