"""What the operator CLI says and does: write commands tell what they wrote and what the deciding service answered,
read commands show what the next command needs, a closed pipe ends any command quietly, --bootstrap points any
command at a cluster, and samples stay out of the live topics unless asked. No Kafka, no Redis: a World of real
cores stands for the cluster (fake_cluster)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from builders_replay import at, order, story
from fake_cluster import FakeCluster, ReadModel

from schemas.base import Reason
from schemas.envelope import Envelope, make_envelope, order_id_for
from schemas.fulfilment import FulfilmentStepRejected, RecordFulfilmentStep
from schemas.policy import AllocationPolicySet
from schemas.topics import BY_NAME, CATALOGUE
from services.ops import cli, following, reads, writes
from services.ops.outcomes import CaughtUp, Seen, StepWatch, settle
from services.ops.publish import envelope_for
from services.ops.samples import Echo
from services.ops.settings import OpsSettings

LATER = "2026-02-01T09:00:00+00:00"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster(story())
    monkeypatch.setattr(writes, "publish", fake.publish)
    monkeypatch.setattr(writes, "read_topics", fake.read_topics)
    monkeypatch.setattr(following, "ends", fake.ends)
    monkeypatch.setattr(following, "follow", fake.follow)
    return fake


@pytest.fixture
def read_model(monkeypatch: pytest.MonkeyPatch) -> tuple[ReadModel, list[OpsSettings]]:
    model, used = ReadModel.of(story()), []

    @contextmanager
    def store(settings: OpsSettings, namespace: str) -> Iterator[ReadModel]:
        used.append(settings)
        yield model

    monkeypatch.setattr(reads, "_store", store)
    return model, used


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def allocation_of(cluster: FakeCluster, buyer: str) -> str:
    return str(next(a.allocation_id for a in cluster.world.allocations() if a.buyer_id == buyer))


def policies(cluster: FakeCluster) -> list[AllocationPolicySet]:
    return [e.payload for e in cluster.events("h200.policy") if isinstance(e.payload, AllocationPolicySet)]


# --- allocation-rule: nothing written when nothing would change -------------------------------------------


def test_allocation_rule_with_the_revision_in_force_writes_nothing_and_says_why(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "allocation-rule", "--rule", "pro_rata", "--revision", "2")

    assert code == 0
    assert out.startswith("nothing written: revision 2 (pro_rata, effective 2026-01-28T11:30:00+00:00")
    assert "of pool h200 is already in force; a revision is applied once" in out
    assert cluster.sent == []


def test_allocation_rule_already_in_force_without_a_revision_writes_nothing(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "allocation-rule", "--rule", "pro_rata")

    assert (code, cluster.sent) == (0, [])
    assert out.startswith("nothing written: pool h200 already allocates by pro_rata, revision 2")


def test_allocation_rule_at_a_revision_allocation_would_ignore_is_refused_naming_the_next_one(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "allocation-rule", "--rule", "first_approved_first_served", "--revision", "2")

    assert (code, cluster.sent) == (1, [])
    assert "allocation ignores any revision that is not above it" in out
    assert "give --revision 3 (or leave --revision out)" in out


def test_allocation_rule_that_changes_the_rule_publishes_the_next_revision(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "allocation-rule", "--rule", "first_approved_first_served", "--at", LATER)

    assert code == 0
    assert [(p.revision, p.rule) for p in policies(cluster)][-1] == (3, "first_approved_first_served")
    assert out.startswith("published revision 3 of allocation/h200: first_approved_first_served from 2026-02-01")
    assert "(revision 2 allocated by pro_rata)" in out


# --- fulfil and publish: the service's answer, not just "published" -----------------------------------------


def test_fulfil_refused_by_fulfilment_prints_the_reason_and_exits_1(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    allocation = allocation_of(cluster, "tencent")

    code, out, _ = run(capsys, "fulfil", "--allocation", allocation, "--step", "delivered", "--at", LATER)

    assert code == 1
    bootstrap = OpsSettings().bootstrap_servers
    assert out.splitlines()[0] == f"published 1 RecordFulfilmentStep to h200.fulfilment.commands on {bootstrap}"
    assert out.splitlines()[1] == (
        f"  RecordFulfilmentStep delivered of allocation {allocation}: fulfilment refused it [step_out_of_order] "
        "a shipment that is allocated cannot be delivered (it may be packed)"
    )


def test_fulfil_recorded_by_fulfilment_prints_the_step_and_its_line(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    allocation = allocation_of(cluster, "tencent")

    code, out, _ = run(capsys, "fulfil", "--allocation", allocation, "--step", "packed", "--at", LATER)

    assert code == 0
    assert f"recorded: allocation {allocation} packed at 2026-02-01T09:00:00+00:00 (" in out
    assert "chips of batch B2 for tencent, order " in out


def test_fulfil_repeating_the_last_step_says_nothing_new_was_recorded(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = str(cluster.world.allocation_of("bytedance", "B1"))

    code, out, _ = run(capsys, "fulfil", "--allocation", delivered, "--step", "delivered", "--at", LATER)

    assert code == 0
    assert f"nothing new: allocation {delivered} was already reported delivered" in out


def test_fulfil_without_an_answer_in_time_exits_3_and_says_where_the_report_waits(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.deciding = False

    code, out, _ = run(
        capsys, "fulfil", "--allocation", allocation_of(cluster, "tencent"), "--step", "packed", "--timeout", "2"
    )

    assert code == 3
    assert "no answer on h200.fulfilment within 2 s: the report waits on h200.fulfilment.commands" in out


def test_fulfil_with_no_wait_reads_nothing_back(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reading(*_: Any) -> Any:
        raise AssertionError("--no-wait must not read the outcome topic")

    monkeypatch.setattr(following, "follow", no_reading)
    monkeypatch.setattr(following, "ends", no_reading)

    allocation = allocation_of(cluster, "tencent")

    code, out, _ = run(capsys, "fulfil", "--allocation", allocation, "--step", "packed", "--no-wait")

    assert code == 0
    assert out.splitlines()[-1] == "not waiting for the answers on h200.fulfilment (--no-wait)"


def test_fulfil_names_the_ledger_column_when_the_allocation_is_not_an_id(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["fulfil", "--allocation", "a1b2c3d4", "--step", "packed"])

    assert exited.value.code == 2
    assert "the full id from the allocation_id column of `h200 ledger`" in capsys.readouterr().err


def _orders_file(tmp_path: Path, *orders: Any) -> str:
    path = tmp_path / "orders.jsonl"
    items = [{"type": "SubmitOrder", **json.loads(o.model_dump_json())} for o in orders]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def test_publish_of_orders_prints_intake_s_answer_to_each(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = order("tencent", "TC-2", 100, minute=300)
    resent = order("bytedance", "BD-1", 600, minute=1)
    conflicting = order("alibaba", "AL-1", 500, minute=2).model_copy(update={"quantity": 999})
    path = _orders_file(tmp_path, new, resent, conflicting)

    code, out, _ = run(capsys, "publish", path, "--producer", "upstream")

    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("published 3 SubmitOrder to h200.intake.commands on ")
    assert lines[1] == f"  SubmitOrder tencent/TC-2: placed as order {order_id_for('tencent', 'TC-2')} for 100 chips"
    assert lines[2].startswith(f"  SubmitOrder bytedance/BD-1: nothing new: order {order_id_for('bytedance', 'BD-1')}")
    assert lines[2].endswith("intake records an identical resend once")
    assert lines[3] == (
        "  SubmitOrder alibaba/AL-1: intake refused it [conflicting_resubmission] alibaba/AL-1 was already "
        "submitted with another quantity"
    )


def test_publish_of_the_same_file_again_says_it_was_recorded_before(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _orders_file(tmp_path, order("tencent", "TC-2", 100, minute=300))
    run(capsys, "publish", path)

    code, out, _ = run(capsys, "publish", path)

    assert code == 0
    assert out.splitlines()[1].endswith("for 100 chips (this same submission was recorded before)")


def test_publish_of_policies_waits_for_nothing(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "rule.jsonl"
    rule = {"type": "AllocationPolicySet", "policy_id": "allocation/h200", "revision": 9, "pool_id": "h200"}
    path.write_text(json.dumps({**rule, "effective_at": LATER, "issued_by": "ops", "rule": "pro_rata"}) + "\n")

    code, out, _ = run(capsys, "publish", str(path))

    assert code == 0
    assert out == f"published 1 AllocationPolicySet to h200.policy on {OpsSettings().bootstrap_servers}\n"


# --- a closed pipe --------------------------------------------------------------------------------------------


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


def test_a_closed_pipe_ends_the_ledger_quietly_with_status_0(
    read_model: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())

    code = cli.main(["ledger"])

    assert code == 0
    assert capsys.readouterr().err == ""


def test_a_reader_that_stops_reading_gets_no_traceback_from_a_real_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ops", "samples"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `head` does once it has its lines
    err = process.stderr.read().decode()
    process.stderr.close()

    assert process.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipeError" not in err


# --- ledger and show -----------------------------------------------------------------------------------------


def test_the_ledger_shows_each_line_s_full_allocation_id_in_every_format(
    read_model: tuple[ReadModel, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [line["allocation_id"] for line in read_model[0].ledger()]

    _, table, _ = run(capsys, "ledger")
    _, text, _ = run(capsys, "ledger", "--format", "csv")
    _, document, _ = run(capsys, "ledger", "--format", "json")

    assert table.startswith("allocation_id") and all(f"\n{i}  " in table for i in ids)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["allocation_id"] for row in rows] == ids
    assert rows[0]["buyer_id"] and int(rows[0]["quantity"]) > 0
    lines = json.loads(document)["lines"]
    assert [line["allocation_id"] for line in lines] == ids and isinstance(lines[0]["quantity"], int)


def test_show_a_buyer_without_a_ref_lists_its_orders(
    read_model: tuple[ReadModel, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "--buyer", "tencent")

    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "1 order(s) of buyer tencent (namespace h200):"
    assert lines[3].startswith(f"TC-1               {order_id_for('tencent', 'TC-1')}  approved")
    assert lines[-1] == "an order's trail: h200 show --buyer tencent --ref TC-1"


def test_show_a_buyer_with_no_orders_names_the_buyers_there_are(
    read_model: tuple[ReadModel, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "show", "--buyer", "tencnet")

    assert (code, out) == (1, "")
    assert err == (
        "no orders of buyer tencnet in the read model (namespace h200); buyers: alibaba, baidu, bytedance, tencent\n"
    )


def test_show_a_buyer_and_ref_gives_the_order_s_trail(
    read_model: tuple[ReadModel, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "--buyer", "tencent", "--ref", "TC-1")

    assert code == 0
    assert out.startswith(f"order {order_id_for('tencent', 'TC-1')}  buyer tencent  ref TC-1")
    assert "  trail:" in out


# --- --bootstrap and --redis-url --------------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs (`topics create`, not `topics`) with its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                yield from _commands(sub, f"{prefix}{name} ") if nested else [(f"{prefix}{name}", sub)]


NO_KAFKA = {"catalogue", "demo", "show", "ledger", "access principals", "access secrets"}
"""Commands that reach no cluster of the operator's: the catalogue and the principals' grants are printed, secrets
are written to files, the demo starts its own broker, show and ledger read Redis (they take --redis-url)."""


def test_every_command_that_reaches_kafka_takes_bootstrap_and_every_redis_reader_takes_redis_url() -> None:
    commands = dict(_commands(cli.build_parser()))
    options = {name: set(sub._option_string_actions) for name, sub in commands.items()}

    assert {name for name in commands if "--bootstrap" not in options[name]} == NO_KAFKA
    assert {name for name in ("show", "ledger", "rebuild", "verify") if "--redis-url" not in options[name]} == set()


def test_bootstrap_overrides_the_environment_for_that_call(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("H200_BOOTSTRAP_SERVERS", "from-the-environment:9092")
    allocation = allocation_of(cluster, "tencent")

    code, out, _ = run(capsys, "fulfil", "--allocation", allocation, "--step", "packed", "--bootstrap", "10.1.2.3:9092")

    assert code == 0
    assert set(cluster.bootstraps) == {"10.1.2.3:9092"}
    assert "on 10.1.2.3:9092" in out


def test_redis_url_overrides_the_environment_for_that_call(
    read_model: tuple[ReadModel, list[OpsSettings]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("H200_REDIS_URL", "redis://from-the-environment:6379/0")

    run(capsys, "ledger", "--redis-url", "redis://10.1.2.3:6379/1")

    assert [settings.redis_url for settings in read_model[1]] == ["redis://10.1.2.3:6379/1"]


# --- samples ------------------------------------------------------------------------------------------------------


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Each call of samples' Kafka side: what it did and the topics it touched."""
    calls: list[tuple[str, list[str]]] = []

    def send(bootstrap: str, envelopes: list[Envelope[Any]], destination: Any, timeout_s: float) -> list[Echo]:
        topics = [destination(envelope) for envelope in envelopes]
        calls.append(("send", topics))
        return [Echo(e.type, topic, 0, n, True) for n, (e, topic) in enumerate(zip(envelopes, topics, strict=True))]

    def create(bootstrap: str, names: list[str], timeout_s: float) -> Any:
        calls.append(("create", list(names)))
        return type("Report", (), {"problems": []})()

    monkeypatch.setattr(cli, "send_and_read_back", send)
    monkeypatch.setattr(cli, "create_scratch_topics", create)
    return calls


def test_samples_by_default_print_the_samples_and_write_nothing(
    sends: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "samples")

    assert (code, sends) == (0, [])
    printed = [json.loads(line) for line in out.splitlines()]
    assert {"ChipsAllocated", "AllocationPolicySet", "SubmitOrder"} <= {e["type"] for e in printed}
    assert err.startswith(f"wrote nothing: {len(printed)} samples printed, one per message kind")


def test_samples_to_scratch_topics_touch_no_topic_of_the_catalogue(
    sends: list[tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "samples", "--scratch")

    [(first, created), (then, sent)] = sends
    assert (first, then) == ("create", "send")
    assert code == 0 and err == ""
    assert set(sent) == set(created) and all(topic.startswith("h200.scratch.") for topic in sent)
    assert not set(sent) & set(BY_NAME)
    assert out.splitlines()[-1].startswith(f"wrote {len(sent)} samples into h200.scratch.")


def test_samples_into_the_live_topics_only_when_asked_and_with_a_warning_naming_them(
    sends: list[tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "samples", "--into-live-topics")

    [(what, sent)] = sends
    assert what == "send"
    assert code == 0
    assert set(sent) <= {topic.name for topic in CATALOGUE} and "h200.allocations" in sent
    assert err.startswith(f"WARNING: writing {len(sent)} fake messages")
    assert all(topic in err for topic in set(sent)) and "keep them forever" in err
    assert "h200.policy" in out.splitlines()[-1]


# --- edges ------------------------------------------------------------------------------------------------------


def test_a_report_refused_as_unknown_before_and_sent_again_waits_for_the_new_decision() -> None:
    world = story()
    line = next(a for a in world.allocations() if a.buyer_id == "tencent")  # not shipped yet
    report = envelope_for(RecordFulfilmentStep(allocation_id=line.allocation_id, step="packed", at=at(400)), "ops")
    unknown = FulfilmentStepRejected(
        allocation_id=line.allocation_id,
        step="packed",
        reason=Reason(code="unknown_allocation", message="not on the ledger yet", gate="fulfilment"),
        cause_event_id=report.id,
        at=at(400),
    )
    [recorded] = [e for e in world.publish(report.payload).events("h200.fulfilment") if e.causation_id == report.id]
    earlier = make_envelope(unknown, key=report.key, producer="fulfilment", occurred_at=at(400), cause=report)

    waited = settle([StepWatch(report)], [Seen(earlier, fresh=False), CaughtUp()], 5)
    answered = settle([StepWatch(report)], [Seen(earlier, fresh=False), CaughtUp(), Seen(recorded, fresh=True)], 5)

    assert waited[0].verdict == "refused" and "refused this report before [unknown_allocation]" in waited[0].text
    assert answered[0].verdict == "recorded"


def test_publish_of_an_empty_file_says_it_wrote_nothing(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")

    code, out, _ = run(capsys, "publish", str(path))

    assert (code, out, cluster.sent) == (0, f"nothing written: {path} holds no messages\n", [])


def test_show_with_an_order_id_and_a_ref_says_the_ref_goes_with_the_buyer(
    read_model: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "show", "--order", str(order_id_for("tencent", "TC-1")), "--ref", "TC-1")

    assert code == 2
    assert err == "error: --ref goes with --buyer (e.g. --buyer tencent --ref TC-1), not --order\n"
