"""An imported inbox record keeps the arrival it had when it was exported (only replays read the mark)."""

from __future__ import annotations

from services.replay.kafka_io import _arrival_mark
from services.replay.records import IMPORTED_ARRIVAL, LogRecord

AT_MS = 1_769_590_800_000


def _record(kind: int | None, headers: tuple[tuple[str, bytes], ...] = ()) -> LogRecord:
    return LogRecord("h200.allocation.inbox", 1, 5, b"h200", b"{}", AT_MS, headers, kind)


def test_a_record_the_broker_stamped_is_marked_when_it_is_written_back() -> None:
    assert _arrival_mark(_record(1)) == [(IMPORTED_ARRIVAL, b"1")]
    assert _arrival_mark(_record(0)) == [], "a producer's time is not an arrival and gets no mark"
    assert _arrival_mark(_record(0, ((IMPORTED_ARRIVAL, b"1"),))) == [], "marked once, even imported twice"


def test_a_marked_record_read_back_with_the_producers_time_is_read_as_the_arrival_it_was() -> None:
    imported = _record(0, ((IMPORTED_ARRIVAL, b"1"),)).arrival

    assert imported is not None
    assert (imported.topic, imported.partition, imported.offset) == ("h200.allocation.inbox", 1, 5)
    assert imported.at.timestamp() * 1000 == AT_MS
    assert _record(0).arrival is None
