"""Packed rows give back what was put in: times to the microsecond and in their own offset, rows under a key in the
order written, across merges of the sorted run."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.domain_kit.seen_ids import MERGE_AT
from services.replay.rows import Rows, SortedRows, time_fields, time_of


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 1, 28, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 28, 17, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_time_comes_back_equal_and_in_its_own_offset(when: datetime) -> None:
    back = time_of(*time_fields(when))
    assert back == when
    assert back.isoformat() == when.isoformat()
    assert back.utcoffset() == when.utcoffset()


def test_a_naive_time_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="must carry its offset"):
        time_fields(datetime(2026, 1, 28, 9, 0))


def test_rows_come_back_in_the_order_written_through_make() -> None:
    rows: Rows[tuple[int, bytes]] = Rows("q16s", lambda fields: (fields[0] * 2, fields[1]))
    written = [(n - 50, bytes([n]) * 16) for n in range(100)]
    for fields in written:
        rows.append(*fields)
    assert len(rows) == 100
    assert list(rows) == [(n * 2, raw) for n, raw in written]


def test_rows_refuse_a_field_that_does_not_fit() -> None:
    rows: Rows[tuple[int, ...]] = Rows("I", tuple)
    with pytest.raises(struct.error):
        rows.append(-1)


def test_sorted_rows_find_every_row_of_a_key_in_the_order_added_across_merges() -> None:
    rng = random.Random(9)
    keys = [rng.randbytes(16) for _ in range(300)]
    rows = SortedRows(24)
    oracle: dict[bytes, list[bytes]] = {}
    for n in range(MERGE_AT * 5 + 123):  # several merges, and rows left recent
        key = rng.choice(keys)
        row = key + rng.randbytes(8)
        rows.add(row)
        oracle.setdefault(key, []).append(row)
        if n % 997 == 0:
            probe = rng.choice(keys)
            assert rows.under(probe) == oracle.get(probe, [])
    assert len(rows) == sum(len(found) for found in oracle.values())
    for key in keys:
        assert rows.under(key) == oracle.get(key, [])
    assert rows.under(bytes(16)) == []
    assert rows.under(b"\xff" * 16) == []


def test_sorted_rows_keep_equal_rows_apart() -> None:
    rows = SortedRows(16)
    key = bytes(range(16))
    rows.add(key)
    rows.add(key)
    assert rows.under(key) == [key, key]


def test_sorted_rows_refuse_a_row_of_another_width() -> None:
    rows = SortedRows(20)
    with pytest.raises(ValueError, match="a row here is 20 bytes, not 19"):
        rows.add(bytes(19))
    with pytest.raises(ValueError, match="at least 16 bytes"):
        SortedRows(8)
