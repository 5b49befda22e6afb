"""The hash chain of an export: `h200 verify --from-file` finds a record changed, removed, inserted or moved, and
names it by topic, partition, offset and line of the file; a file cut short, or rewritten with a fresh chain, is
caught too; an untouched export passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders_replay import World, read_lines, story, write_lines

from services.ops.cli import main
from services.replay import commands
from services.replay.chain import Chain
from services.replay.exportfile import check_export_chain, record_of


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture
def export(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def no_kafka(*_: Any, **__: Any) -> Any:
        raise AssertionError("a command given --from-file must not read Kafka")

    monkeypatch.setattr(commands, "read_topics", no_kafka)
    return world.export(tmp_path / "export.jsonl")


def verify_chain(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["verify", "--from-file", str(path), "--no-live", "--format", "json", *argv])
    return code, json.loads(capsys.readouterr().out)["chain"]


def decision_line(lines: list[dict[str, Any]], type_: str, nth: int = 0) -> int:
    """The index of the nth record line holding an event of this type."""
    found = [
        i for i, line in enumerate(lines) if isinstance(line.get("value"), dict) and line["value"]["type"] == type_
    ]
    return found[nth]


def named(line: dict[str, Any], index: int) -> str:
    """How verify names the record of lines[index]: topic[partition]@offset (line N of the file)."""
    return f"{line['topic']}[{line['partition']}]@{line['offset']} (line {index + 1} of the file)"


def test_an_untouched_export_chains_every_record_to_the_head_export_printed(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = read_lines(export)
    code, chain = verify_chain(capsys, export, "--chain-head", lines[-1]["chain_head"])

    assert code == 0 and chain["ok"] and chain["problem"] is None
    assert chain["records"] == len(lines) - 2 == lines[-1]["records"]
    assert chain["head"] == lines[-1]["chain_head"] == lines[-2]["hash"]


def test_a_changed_decision_is_named(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(export)
    index = decision_line(lines, "ChipsAllocated")
    lines[index]["value"]["payload"]["quantity"] += 1  # one more chip, the chain fields left as they were

    code, chain = verify_chain(capsys, write_lines(export, lines))

    assert code == 1 and chain["code"] == "changed"
    assert chain["problem"] == f"{named(lines[index], index)} was changed: its content no longer gives its hash"


def test_a_removed_decision_is_named_by_the_record_that_followed_it(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = read_lines(export)
    index = decision_line(lines, "AllocationReleased")
    del lines[index]

    code, chain = verify_chain(capsys, write_lines(export, lines))

    assert code == 1 and chain["code"] == "removed"
    assert chain["problem"].startswith(f"a record was removed just before {named(lines[index], index)}")


def test_an_inserted_decision_is_named_even_with_chain_fields_computed_for_it(
    export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = read_lines(export)
    index = decision_line(lines, "ChipsAllocated")
    forged = {**lines[index], "offset": lines[index]["offset"] + 1}
    chain_at = Chain({})
    chain_at.head = lines[index]["hash"]  # the forger links it properly after the record before it
    forged.update(chain_at.seal(record_of(forged, "forged")))
    lines.insert(index + 1, forged)

    code, chain = verify_chain(capsys, write_lines(export, lines))

    assert code == 1 and chain["code"] == "inserted"
    assert chain["problem"].startswith(f"{named(forged, index + 1)} inserted into the export: ")


def test_a_bare_record_inserted_without_chain_fields_is_named(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(export)
    index = decision_line(lines, "OrderApproved")
    bare = {k: v for k, v in lines[index].items() if k not in ("prev", "hash")}
    lines.insert(index, bare)

    code, chain = verify_chain(capsys, write_lines(export, lines))

    assert code == 1 and chain["code"] == "inserted"
    assert chain["problem"] == f"{named(bare, index)} carries no chain fields: inserted into the export"


def test_two_decisions_swapped_are_named_as_moved(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(export)
    first = decision_line(lines, "ChipsAllocated")
    lines[first], lines[first + 1] = lines[first + 1], lines[first]

    code, chain = verify_chain(capsys, write_lines(export, lines))

    assert code == 1 and chain["code"] == "reordered"
    assert chain["problem"] == (
        f"{named(lines[first], first)} was moved: it follows {named(lines[first + 1], first + 1)} in the export, "
        "which is now after it"
    )


def test_records_cut_off_the_end_are_caught_by_the_trailer(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(export)

    code, chain = verify_chain(capsys, write_lines(export, [*lines[:-3], lines[-1]]))
    assert code == 1 and chain["code"] == "truncated" and "removed from its end" in chain["problem"]

    code, chain = verify_chain(capsys, write_lines(export, lines[:-1]))
    assert code == 1 and chain["code"] == "truncated" and "without its chain trailer" in chain["problem"]


def test_a_file_rewritten_with_a_fresh_chain_is_not_the_one_exported(
    world: World, export: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    printed = read_lines(export)[-1]["chain_head"]
    lines = read_lines(export)
    lines[decision_line(lines, "ChipsAllocated")]["value"]["payload"]["quantity"] += 1
    rechained = Chain(lines[0])
    for line in lines[1:-1]:
        line.update(rechained.seal(record_of(line, "rewritten")))
    lines[-1] = rechained.trailer()
    write_lines(export, lines)

    assert check_export_chain(export).ok  # type: ignore[union-attr]  # every link holds on its own
    code, chain = verify_chain(capsys, export, "--chain-head", printed)
    assert code == 1 and chain["code"] == "other_head" and printed in chain["problem"]


def test_export_prints_the_chain_head_to_keep_apart_and_verify_takes_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "read_topics", lambda bootstrap, topics, stream=None: world.records(topics))
    path = tmp_path / "audit.jsonl"

    assert main(["export", "--to", str(path), "--bootstrap", "127.0.0.1:1"]) == 0
    exported, head = capsys.readouterr().out.splitlines()

    trailer = read_lines(path)[-1]
    assert exported.startswith(f"exported {trailer['records']:,} records of ")
    assert head.startswith(f"chain head {trailer['chain_head']}: keep it apart from the file; ")
    monkeypatch.undo()
    code, chain = verify_chain(capsys, path, "--chain-head", trailer["chain_head"])
    assert code == 0 and chain["ok"]
