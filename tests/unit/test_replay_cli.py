"""The replay commands of `h200` on export files: no Kafka, no Redis. Answers, exit codes and messages."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from builders_replay import World, at, read_lines, story, write_lines

from services.ops.cli import main
from services.replay import commands
from services.replay.records import INBOX

REPLAY_COMMANDS = ("replay", "export", "import", "verify", "determinism", "what-if")


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture
def export(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    def no_kafka(*_: Any, **__: Any) -> Any:
        raise AssertionError("a command given --from-file must not read Kafka")

    monkeypatch.setattr(commands, "read_topics", no_kafka)
    return str(world.export(tmp_path / "export.jsonl"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_as_json_gives_the_same_ledger_hash_twice(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "replay", "--from-file", export, "--format", "json")
    second = run(capsys, "replay", "--from-file", export, "--format", "json")

    assert first[0] == second[0] == 0
    document = json.loads(first[1])
    assert document["ledger_hash"] == json.loads(second[1])["ledger_hash"]
    assert set(document) == {"as_of", "lines", "totals", "ledger_hash", "events"}
    assert document["as_of"] is None
    assert set(document["lines"][0]) >= {
        "buyer",
        "order_id",
        "batch_id",
        "quantity",
        "allocated_at",
        "status",
        "shipped_at",
        "delivered_at",
        "policy_version",
        "cause_event_id",
    }
    assert set(document["totals"]) == {"buyers", "batches", "pools"}


def test_replay_as_of_a_moment_shows_the_allocations_made_by_then(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "replay", "--from-file", export, "--as-of", "2026-01-28T11:00:00Z", "--format", "json")

    document = json.loads(out)
    assert code == 0
    assert document["as_of"] == at(120).isoformat()
    assert [(line["buyer"], line["batch_id"], line["quantity"]) for line in document["lines"]] == [
        ("bytedance", "B1", 500),
        ("bytedance", "B2", 100),
        ("alibaba", "B2", 300),
    ]


def test_replay_as_a_table_and_as_csv(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, table, _ = run(capsys, "replay", "--from-file", export, "--order", "AL-1")
    _, csv, _ = run(capsys, "replay", "--from-file", export, "--buyer", "tencent", "--format", "csv")

    assert "AL-1" in table and "ledger_hash " in table and "BatchManufactured" in table
    assert csv.splitlines()[0].startswith("allocation_id,pool_id,buyer,order_id,batch_id,quantity,allocated_at")
    assert len(csv.splitlines()) == 2


def test_an_unknown_buyer_is_a_clear_error(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", "--from-file", export, "--buyer", "bytedanse")

    assert (code, out) == (2, "")
    assert err == "error: no buyer 'bytedanse' in the log; buyers: alibaba, baidu, bytedance, tencent\n"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--as-of", "last tuesday"], "argument --as-of: not an ISO 8601 time: 'last tuesday'"),
        (["--as-of", "2026-01-28T11:00"], "argument --as-of: '2026-01-28T11:00' has no time zone"),
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    ],
)
def test_a_malformed_argument_exits_2_naming_it(
    export: str, capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--from-file", export, *argv])

    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_a_missing_export_file_exits_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["verify", "--from-file", str(tmp_path / "nowhere.jsonl")])

    assert exited.value.code == 2
    assert "no file" in capsys.readouterr().err


def test_verify_from_a_file_needs_no_kafka_and_finds_nothing_wrong(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "verify", "--from-file", export)

    assert code == 0
    assert out.splitlines()[-1] == "verdict: the log keeps every invariant"
    assert "live read model ........... skipped" in out


def test_verify_catches_a_quantity_altered_in_the_export(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(Path(export))
    next(line for line in lines if line.get("value", {}).get("type") == "ChipsAllocated")["value"]["payload"][
        "quantity"
    ] = 499
    write_lines(Path(export), lines)

    code, out, _ = run(capsys, "verify", "--from-file", export, "--format", "json")

    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["determinism"]["divergences"][0]["what"] == "payload.quantity: expected 500, recorded 499"


def test_verify_names_a_decision_by_another_producer_and_an_unreadable_record_in_the_export(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = read_lines(Path(export))
    approval = next(line for line in lines if line.get("value", {}).get("type") == "OrderApproved")
    approval["value"]["producer"] = "ops"
    nested = {**approval, "offset": 99, "value_b64": base64.b64encode(b"[" * 100_000).decode()}
    del nested["value"]
    write_lines(Path(export), [*lines, nested])

    code, out, _ = run(capsys, "verify", "--from-file", export)

    assert code == 1
    assert "  records decode ............ FAILED (1 undecodable)" in out
    assert f"    {approval['topic']}[{approval['partition']}]@99: " in out
    assert f"    [impersonated_producer] OrderApproved {approval['value']['id']} at {approval['topic']}[" in out
    assert out.splitlines()[-1] == "verdict: VIOLATIONS FOUND"


def test_determinism_catches_two_inbox_records_swapped(export: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(Path(export))
    inbox = [n for n, line in enumerate(lines) if line.get("topic") == INBOX]
    first_batch = next(n for n in inbox if lines[n]["value"]["type"] == "BatchManufactured")
    first_approval = next(n for n in inbox if lines[n]["value"]["type"] == "OrderApproved")
    lines[first_approval], lines[first_batch] = lines[first_batch], lines[first_approval]
    write_lines(Path(export), lines)

    code, out, _ = run(capsys, "determinism", "--from-file", export)

    assert code == 1
    assert "DIVERGES in 1 pool(s)" in out
    assert "first divergence: pool h200, decision #1" in out
    assert "  input:    " in out and "  expected: ChipsAllocated" in out and "  recorded: ChipsAllocated" in out


def test_determinism_needs_the_inbox_in_the_export(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events-only.jsonl"
    lines = [line for line in read_lines(world.export(path)) if line.get("topic") != INBOX]
    lines[0]["topics"].pop(INBOX)
    write_lines(path, lines)

    code, _, err = run(capsys, "determinism", "--from-file", str(path))

    assert code == 2
    assert f"holds no {INBOX}: export it with `h200 export --to FILE`" in err


def test_what_if_shows_recorded_and_what_if_allocations_per_buyer(
    export: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "what-if", "--from-file", export, "--rule", "first_approved_first_served", "--format", "json"
    )

    assert code == 0
    buyers = {b["buyer"]: (b["recorded"], b["what_if"], b["difference"]) for b in json.loads(out)["buyers"]}
    assert buyers["tencent"] == (129, 0, -129)


@pytest.mark.parametrize("command", REPLAY_COMMANDS)
def test_every_replay_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    assert f"usage: h200 {command}" in capsys.readouterr().out


def test_import_refuses_a_file_that_is_not_an_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("buyer_id,quantity\n")

    code, _, err = run(capsys, "import", str(path), "--bootstrap", "127.0.0.1:1")

    assert code == 2
    assert "is not an h200 export" in err
