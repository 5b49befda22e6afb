"""The export format has a published schema (schemas/export/), and every line of a real export is valid by an
independent validator (python-jsonschema, draft 2020-12): header, records, trailer."""

from __future__ import annotations

import json
from pathlib import Path

from builders_replay import story
from jsonschema import Draft202012Validator, FormatChecker

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "export" / "h200-log-export.v2.schema.json"


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_every_line_of_an_export_is_valid_by_the_published_schema(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in story().export(tmp_path / "export.jsonl").read_text().splitlines()]
    check = validator()
    assert [list(check.iter_errors(line)) for line in lines] == [[] for _ in lines]
    header, trailer = lines[0], lines[-1]
    assert header["version"] == 2 and trailer["records"] == len(lines) - 2


def test_the_schema_refuses_a_record_without_its_chain_fields_and_a_header_that_counts_records(
    tmp_path: Path,
) -> None:
    lines = [json.loads(line) for line in story().export(tmp_path / "export.jsonl").read_text().splitlines()]
    check = validator()
    record = {k: v for k, v in lines[1].items() if k not in ("prev", "hash")}
    header = {**lines[0], "topics": {"h200.orders": 0}}
    assert not check.is_valid(record)
    assert not check.is_valid(header)
