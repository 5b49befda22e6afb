"""`h200 replay`, `verify` and `determinism` on a log holding poison records: each is reported with where it is,
the rest of the log is still read, and no traceback is ever printed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from builders_replay import World, read_lines, story, write_lines

from services.ops.cli import main
from services.replay import commands

POISON = {
    "too_deep": b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
    "number_too_long": b'{"type":"OrderApproved","version":1,"payload":{"approved_quantity":' + b"9" * 5_000 + b"}}",
    "malformed_json": b"\x00\xff not json at all",
    "duplicate_key": b'{"type":"OrderApproved","type":"OrderDenied","version":1}',
}


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture
def export(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    def no_kafka(*_: Any, **__: Any) -> Any:
        raise AssertionError("a command given --from-file must not read Kafka")

    monkeypatch.setattr(commands, "read_topics", no_kafka)
    path = world.export(tmp_path / "export.jsonl")
    lines = read_lines(path)
    poison = [
        {"topic": topic, "partition": 0, "offset": 1_000 + n, "key": "k", "value_b64": base64.b64encode(v).decode()}
        for topic in ("h200.approvals", "h200.allocation.inbox")
        for n, v in enumerate(POISON.values())
    ]
    write_lines(path, [*lines, *poison])
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_names_each_unreadable_record_on_stderr_and_prints_the_ledger(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "replay", "--from-file", export, "--format", "json")

    assert code == 0
    assert json.loads(out)["lines"]
    assert err.startswith(f"note: {len(POISON)} record(s) of file {export} cannot be read and are left out:")
    for n, error_code in enumerate(POISON):
        assert f"  h200.approvals[0]@{1_000 + n}: {error_code}: " in err
    assert "Traceback" not in out + err


def test_verify_reports_every_unreadable_record_with_its_code(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "verify", "--from-file", export)

    assert code == 1
    assert f"  records decode ............ FAILED ({2 * len(POISON)} undecodable)" in out
    for n, error_code in enumerate(POISON):
        for topic in ("h200.approvals", "h200.allocation.inbox"):
            assert f"    {topic}[0]@{1_000 + n}: {error_code}: " in out
    assert "Traceback" not in out + err


def test_determinism_leaves_unreadable_inbox_records_out_and_says_so(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "determinism", "--from-file", export)

    assert "h200.allocation.inbox[0]@1000: too_deep" in err
    assert "Traceback" not in out + err
    assert code == 0  # the allocation service dead-lettered them too: its decisions are refolded without them
