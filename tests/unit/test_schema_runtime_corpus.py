"""The published JSON Schemas and the runtime agree on what a valid record is.

A corpus of mutations of every sample record (types swapped, numbers with fractions or signs, UUIDs and times
spelled otherwise, empty and overlong text) is judged by an independent validator (python-jsonschema, draft
2020-12 with format checks) and by the codec every service decodes with. Where a rule cannot be written in JSON
Schema (shares adding up to 100, windows in order), the schema lists it under `x-h200-rules` and the runtime
enforces it: those mutations are checked separately.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas.codec import ContractError, decode
from schemas.generate import message_schema
from schemas.registry import CURRENT
from schemas.samples import sample_envelopes

Path = tuple[str | int, ...]


def _mutations(value: Any, path: Path = ()) -> Iterator[tuple[Path, str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _mutations(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from _mutations(value[0], (*path, 0))
    if isinstance(value, bool):
        yield path, "bool as number", 1
    elif isinstance(value, int):
        yield from ((path, "digits as text", str(value)), (path, "with a fraction", value + 0.5))
        yield from ((path, "whole float", float(value)), (path, "bool", True), (path, "negative", -value - 1))
    elif isinstance(value, str):
        yield from ((path, "number", 5), (path, "empty", ""), (path, "overlong", "x" * 600))
        if len(value) == 36 and value.count("-") == 4:
            yield from ((path, "uuid without dashes", value.replace("-", "")), (path, "uuid upper", value.upper()))
            yield path, "uuid in braces", "{" + value + "}"
        if len(value) >= 20 and value[4] == "-" and value[10] == "T":
            yield from ((path, "unix time", 1769590800), (path, "naive", value[:19]), (path, "date", value[:10]))
            yield from ((path, "space for T", value.replace("T", " ")), (path, "lower case", value.lower()))


def _with(record: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def _runtime_accepts(record: dict[str, Any]) -> bool:
    try:
        decode(json.dumps(record).encode())
    except ContractError:
        return False
    return True


def _validator(type_: str) -> Draft202012Validator:
    return Draft202012Validator(message_schema(CURRENT[type_]), format_checker=FormatChecker())


@pytest.mark.parametrize("envelope", sample_envelopes(), ids=lambda e: e.type)
def test_schema_and_runtime_give_the_same_verdict_on_every_mutation(envelope: Any) -> None:
    record = json.loads(envelope.model_dump_json())
    validator = _validator(envelope.type)
    assert validator.is_valid(record) and _runtime_accepts(record), "the sample itself is valid for both"

    disagreements = []
    for path, what, value in _mutations(record):
        mutated = _with(record, path, value)
        by_schema, by_runtime = validator.is_valid(mutated), _runtime_accepts(mutated)
        if by_schema != by_runtime:
            verdict = "schema accepts, runtime refuses" if by_schema else "runtime accepts, schema refuses"
            disagreements.append(f"{'.'.join(map(str, path))} {what}: {verdict}")

    assert disagreements == []


RULES = [
    ("SubmitOrder", ("payload", "declared_uses"), [{"use": "ai_research", "share_pct": 60}], "add up to exactly 100"),
    (
        "SubmitOrder",
        ("payload", "declared_uses"),
        [{"use": "inference", "share_pct": 50}, {"use": "inference", "share_pct": 50}],
        "each use appears once",
    ),
    ("ExportLicenceIssued", ("payload", "valid_until"), "2020-01-01T00:00:00Z", "later than valid_from"),
    ("TrancheQuotaSet", ("payload", "closes_at"), "2020-01-01T00:00:00Z", "later than opens_at"),
    ("ApprovalsPassed", ("payload", "lane"), 3, "lane: less than lanes"),
    ("ApprovalsPassed", ("payload", "source_partition"), 6, "source_partition: less than sources"),
]


@pytest.mark.parametrize(("type_", "path", "value", "rule"), RULES, ids=[rule for *_, rule in RULES])
def test_a_rule_json_schema_cannot_state_is_listed_in_the_schema_and_enforced_at_runtime(
    type_: str, path: Path, value: Any, rule: str
) -> None:
    envelope = next(e for e in sample_envelopes() if e.type == type_)
    mutated = _with(json.loads(envelope.model_dump_json()), path, value)

    assert rule in json.dumps(message_schema(CURRENT[type_])), "the schema lists the rule under x-h200-rules"
    assert _validator(type_).is_valid(mutated), "JSON Schema alone cannot refuse it"
    assert not _runtime_accepts(mutated)
