"""The export format: a header, then one record per line, read back to the very bytes that were exported."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders_replay import story

from services.replay.exportfile import decode_record, encode_record, make_header, read_export, write_export
from services.replay.progress import Progress
from services.replay.records import LogRecord, ReplayError


def test_every_record_reads_back_to_the_bytes_exported(tmp_path: Path) -> None:
    world = story()
    records = world.records()
    path = world.export(tmp_path / "export.jsonl")

    assert list(read_export(path)) == [r for r in records if not r.topic.startswith("h200.dlq.")]


def test_the_header_names_the_format_version_source_and_topics(tmp_path: Path) -> None:
    path = story().export(tmp_path / "export.jsonl")

    header = json.loads(path.read_text().splitlines()[0])

    assert (header["format"], header["version"], header["source"]) == ("h200-log-export", 2, "world")
    assert header["topics"]["h200.allocation.inbox"] == 3


def test_a_line_carries_topic_partition_offset_key_timestamp_and_the_envelope() -> None:
    record = story().records(["h200.allocations"])[0]

    line = json.loads(encode_record(record))

    assert {k: line[k] for k in ("topic", "partition", "offset", "key")} == {
        "topic": "h200.allocations",
        "partition": record.partition,
        "offset": 0,
        "key": "h200",
    }
    assert line["timestamp"] == record.timestamp_ms
    assert line["value"]["type"] == "ChipsAllocated"


def test_bytes_that_are_not_json_headers_and_binary_keys_survive_the_round_trip() -> None:
    odd = LogRecord("h200.dlq.intake", 0, 7, b"\xff\xfe", b'{"type": oops', 1, (("dlq.error_code", b"malformed_json"),))

    assert decode_record(encode_record(odd), "line 2") == odd
    assert decode_record(encode_record(LogRecord("h200.orders", 1, 0, None, None)), "line 2").value is None


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 2_000 + b"]" * 2_000,
        b'{"quantity":' + b"7" * 5_000 + b"}",
        b'{"type":"SubmitOrder","type":"CancelOrder"}',
        b'{"type": "SubmitOrder", "version": 1}',
        b'{"a":' * 900 + b"1" + b"}" * 900,
    ],
)
def test_a_poison_record_is_exported_and_read_back_byte_for_byte(value: bytes) -> None:
    poison = LogRecord("h200.policy", 0, 3, b"k", value, 1)
    assert decode_record(encode_record(poison), "line 2") == poison


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('{"topic": "h200.nowhere", "partition": 0, "offset": 0, "value": null}', "topic 'h200.nowhere' is not in"),
        ('{"topic": "h200.policy", "partition": 3, "offset": 0, "value": null}', "h200.policy has partitions 0..0"),
        ('{"topic": "h200.policy", "offset": 0, "value": null}', "missing field 'partition'"),
        ("not json", "Expecting value"),
    ],
)
def test_a_malformed_line_is_refused_naming_the_line(line: str, complaint: str) -> None:
    with pytest.raises(ReplayError, match=rf"^export\.jsonl:5: not a record of an h200 export \(.*{complaint}"):
        decode_record(line, "export.jsonl:5")


def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"type": "SubmitOrder"}\n')

    with pytest.raises(ReplayError, match="is not an h200 export: its first line must be the header"):
        list(read_export(path))


def test_an_export_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    path.write_text(json.dumps({**make_header("x", []), "version": 3}) + "\n")

    with pytest.raises(ReplayError, match="format version 3; this tool reads 1 and 2"):
        list(read_export(path))


def test_an_export_that_fails_half_way_leaves_no_file(tmp_path: Path) -> None:
    def records() -> Iterator[LogRecord]:
        yield LogRecord("h200.orders", 0, 0, None, b"{}")
        raise ReplayError("the broker went away")

    with pytest.raises(ReplayError, match="the broker went away"):
        write_export(tmp_path / "export.jsonl", make_header("x", []), records())

    assert list(tmp_path.iterdir()) == []


# --- progress -------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_short_read_draws_no_progress_bar() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("reading", 100, out, clock=clock)

    progress.advance(100)
    clock.now = 0.5
    progress.close()

    assert out.getvalue() == ""


def test_a_long_read_shows_records_and_events_per_second() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("reading kafka", 4_000, out, clock=clock)

    clock.now = 2.0
    progress.advance(3_000)
    clock.now = 4.0
    progress.advance(1_000)
    progress.close()

    assert out.getvalue().splitlines()[-1].strip().endswith("4,000/4,000 (100%)  1,000 events/s")
    assert "\r" in out.getvalue()
