"""A replay keeps its ledger lines packed (issue #9): every line must come back field for field, in the order the
ledger sorts lines by, so that the ledger's JSON and hash are what they were with lines as objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from services.replay.ledger_line import Line, iso
from services.replay.packed_lines import Names, PackedLines, pack, sort_keys, unpack

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)
names = st.sampled_from(["h200", "h200-eu", "bytedance", "alibaba", "TSMC-B001", "TSMC-B002"])
line_fields = st.fixed_dictionaries(
    {
        "allocation": st.uuids(),
        "order": st.uuids(),
        "cause": st.uuids(),
        "pool_id": names,
        "buyer": names,
        "batch_id": names,
        "quantity": st.integers(1, 10_000_000),
        "allocated_at": moments,
        "shipped_at": st.none() | moments,
        "delivered_at": st.none() | moments,
        "status": st.sampled_from(["allocated", "released", "shipped", "delivered", "hold_released"]),
        "rule": st.sampled_from(["first_approved_first_served", "pro_rata"]),
        "policy_version": st.sampled_from(["default", "allocation/h200@2"]),
    }
)


def as_line(f: dict[str, Any]) -> Line:
    """The line as the ledger made it with objects: ids as text, times as ISO text in UTC."""
    return Line(
        allocation_id=str(f["allocation"]),
        pool_id=f["pool_id"],
        buyer=f["buyer"],
        order_id=str(f["order"]),
        batch_id=f["batch_id"],
        quantity=f["quantity"],
        allocated_at=iso(f["allocated_at"]),
        status=f["status"],
        shipped_at=None if f["shipped_at"] is None else iso(f["shipped_at"]),
        delivered_at=None if f["delivered_at"] is None else iso(f["delivered_at"]),
        rule=f["rule"],
        policy_version=f["policy_version"],
        cause_event_id=str(f["cause"]),
    )


def packed(table: Names, f: dict[str, Any]) -> bytes:
    ids: tuple[UUID, UUID, UUID] = (f["allocation"], f["order"], f["cause"])
    return pack(table, *ids, f)


@settings(max_examples=300, deadline=None)
@given(line_fields)
def test_a_packed_line_comes_back_field_for_field(f: dict[str, Any]) -> None:
    table = Names()
    assert unpack(table, packed(table, f)) == as_line(f)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_fields, min_size=2, max_size=12))
def test_packed_lines_sort_as_the_ledger_sorts_lines(many: list[dict[str, Any]]) -> None:
    table = Names()
    rows = [packed(table, f) for f in many]
    rows.sort(key=sort_keys(table))  # keys rank the names packed so far
    lines = PackedLines(table, rows)
    assert [line.sort_key for line in lines] == sorted(as_line(f).sort_key for f in many)
    assert lines == sorted((as_line(f) for f in many), key=lambda line: line.sort_key)
    assert len(lines) == len(many) and lines[-1] == list(lines)[-1]


def test_a_ledger_naming_more_than_65536_batches_still_packs() -> None:
    table = Names()
    for n in range(70_000):
        table.index(f"TSMC-B{n:05d}")
    fields: dict[str, Any] = {
        "allocation": UUID(int=1),
        "order": UUID(int=2),
        "cause": UUID(int=3),
        "pool_id": "h200",
        "buyer": "bytedance",
        "batch_id": "TSMC-B69999",
        "quantity": 5,
        "allocated_at": datetime(2026, 1, 28, tzinfo=UTC),
        "shipped_at": None,
        "delivered_at": None,
        "status": "allocated",
        "rule": "pro_rata",
        "policy_version": "default",
    }
    assert unpack(table, packed(table, fields)) == as_line(fields)
