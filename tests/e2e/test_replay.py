"""Replay after a scenario played through the four services as processes: the ledger folded from the log is the
same on every replay and the same as the live read model's, the log keeps every invariant, a replay as of a
past moment shows exactly the allocations made by then, and an export imported into a fresh broker replays to
the same ledger hash. The commands run as operators run them (`python -m services.ops ...` once, then
services.ops.cli.main in the test process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import System

from schemas import builders as s
from schemas.allocation import ChipsAllocated
from services.ops.cli import main
from services.replay.live import live_ledger

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def played(_module_system: System) -> System:
    """The scenario of test_order_flow, shorter: three buyers cleared, two batches an hour apart shared first
    approved first served, the rule flipped to pro rata, one shipment delivered and one lost at sea."""
    system = _module_system
    system.publish(
        [
            s.use_rules(),
            *s.cleared_buyer("bytedance", 1_000),
            *s.cleared_buyer("alibaba", 1_000, licensed=400),
            *s.cleared_buyer("tencent", 300),
            s.allocation_rule("first_approved_first_served"),
        ]
    )
    system.settle()
    # Each step is decided before the next is published: decisions are dated when the deciding service learns of
    # their input (docs/time.md), so the order of publishing is the order of business time.
    for placed in (
        s.submit("bytedance", "BD-1", 600, minute=1),
        s.submit("alibaba", "AL-1", 500, minute=2),
        s.submit("tencent", "TC-1", 300, minute=3),
    ):
        system.publish([placed])
        system.settle()
    system.publish([s.batch("TSMC-B1", 500, minute=60)])
    system.settle()
    system.moments["mid-scenario"] = datetime.now(UTC)
    system.publish([s.batch("TSMC-B2", 400, minute=120)])
    system.settle()
    lines = {(e.payload.buyer_id, e.payload.batch_id): e.payload.allocation_id for e in _allocated(system)}
    system.publish([s.allocation_rule("pro_rata", revision=2)])
    system.settle()
    # Logistics reports its steps at the times they happened (fulfilment records the claimed `at`): now, after
    # the moment noted mid-scenario, a minute apart.
    reports = [
        *s.steps(lines[("bytedance", "TSMC-B1")], "packed", "shipped", "customs_cleared", "delivered", minute=180),
        *s.steps(lines[("alibaba", "TSMC-B2")], "packed", "shipped", "lost", minute=180),
    ]
    start = datetime.now(UTC)
    system.publish([r.model_copy(update={"at": start + (r.at - s.at(180)) / 60}) for r in reports])
    system.settle()
    return system


def _allocated(system: System) -> list[Any]:
    return system.log().of(ChipsAllocated)


def h200(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_gives_the_same_ledger_hash_twice_and_the_live_read_models(
    played: System, module_system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    system = module_system
    # read by two processes (services/replay/parallel.py), then by one
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.ops",
            "replay",
            "--format",
            "json",
            "--jobs",
            "2",
            "--bootstrap",
            system.bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    )
    code, second, _ = h200(capsys, "replay", "--format", "json", "--bootstrap", system.bootstrap)
    assert "the log was read and folded by 2 processes" in first.stderr

    replayed = json.loads(first.stdout)
    assert code == 0
    assert replayed["ledger_hash"] == json.loads(second)["ledger_hash"]
    assert replayed["ledger_hash"] == live_ledger(system.store).ledger_hash
    assert {(line["buyer"], line["batch_id"], line["quantity"], line["status"]) for line in replayed["lines"]} == {
        ("bytedance", "TSMC-B1", 500, "delivered"),
        ("bytedance", "TSMC-B2", 100, "allocated"),
        ("alibaba", "TSMC-B2", 300, "released"),
        ("alibaba", "TSMC-B2", 171, "allocated"),
        ("tencent", "TSMC-B2", 129, "allocated"),
    }


def test_verify_finds_no_violation_and_parity_with_the_live_read_model(
    played: System, module_system: System, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    system = module_system
    code, out, _ = h200(
        capsys,
        "verify",
        "--format",
        "json",
        "--bootstrap",
        system.bootstrap,
        "--redis-url",
        redis_url,
        "--namespace",
        system.namespace,
    )

    report = json.loads(out)
    assert report["violations"] == [] and report["trail"]["violations"] == []
    assert report["determinism"]["deterministic"] and report["determinism"]["recorded"] == 6
    assert report["parity"]["same"], report["parity"]["differences"]
    assert report["notes"] == []
    assert (code, report["ok"]) == (0, True)


def test_replay_as_of_a_moment_mid_scenario_shows_exactly_the_allocations_made_by_then(
    played: System, module_system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    system = module_system
    mid_scenario = system.moments["mid-scenario"]  # after the first batch was shared, before the second arrived
    code, out, _ = h200(
        capsys, "replay", "--format", "json", "--bootstrap", system.bootstrap, "--as-of", mid_scenario.isoformat()
    )

    made_by_then = {str(e.payload.allocation_id) for e in _allocated(system) if e.occurred_at <= mid_scenario}
    lines = json.loads(out)["lines"]
    assert code == 0
    assert {line["allocation_id"] for line in lines} == made_by_then
    assert [(line["buyer"], line["batch_id"], line["quantity"], line["status"]) for line in lines] == [
        ("bytedance", "TSMC-B1", 500, "allocated")
    ]
    assert all(datetime.fromisoformat(line["allocated_at"]) <= mid_scenario for line in lines)


def test_an_export_imported_into_a_fresh_broker_replays_to_the_same_ledger_hash(
    played: System,
    module_system: System,
    spare_kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = module_system
    if spare_kafka_bootstrap == system.bootstrap:
        pytest.skip("$H200_TEST_KAFKA_BOOTSTRAP gives one broker only: there is no fresh one to import into")
    export = tmp_path / "h200-export.jsonl"
    _, original, _ = h200(capsys, "replay", "--format", "json", "--bootstrap", system.bootstrap)

    assert h200(capsys, "export", "--to", str(export), "--bootstrap", system.bootstrap)[0] == 0
    assert h200(capsys, "import", str(export), "--bootstrap", spare_kafka_bootstrap)[0] == 0
    _, imported, _ = h200(capsys, "replay", "--format", "json", "--bootstrap", spare_kafka_bootstrap)
    _, from_file, _ = h200(capsys, "replay", "--format", "json", "--from-file", str(export))

    hashes = {json.loads(text)["ledger_hash"] for text in (original, imported, from_file)}
    assert hashes == {json.loads(original)["ledger_hash"]}
    code, out, _ = h200(capsys, "verify", "--bootstrap", spare_kafka_bootstrap, "--no-live")
    assert code == 0, out
    refused, _, err = h200(capsys, "import", str(export), "--bootstrap", spare_kafka_bootstrap)
    assert refused == 2 and "import into an empty cluster, or give --force" in err
