"""The determinism check (allocation's recorded inputs refolded must give its recorded decisions) and what-if
(the same inputs under another rule), on exports of a log built by the real cores."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders_replay import World, allocation_rule, batch, cleared, order, read_lines, rules, story, write_lines

from schemas.policy import AllocationPolicySet
from schemas.topics import EVENT_TOPICS
from services.replay.determinism import check_determinism
from services.replay.eventlog import EventLog, build_log
from services.replay.exportfile import read_export
from services.replay.records import INBOX, in_catalogue_order
from services.replay.whatif import rule_from_start, what_if

TOPICS = in_catalogue_order((*EVENT_TOPICS, INBOX))


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture
def export(world: World, tmp_path: Path) -> Path:
    return world.export(tmp_path / "export.jsonl")


def load(path: Path) -> EventLog:
    return build_log(read_export(path, TOPICS), TOPICS, str(path))


def test_the_recorded_inputs_refolded_give_exactly_the_recorded_decisions(export: Path) -> None:
    report = check_determinism(load(export))

    assert (report.inputs, report.decided, report.recorded) == (16, 6, 6)
    assert report.divergences == []


def test_an_input_recorded_twice_is_applied_once(export: Path) -> None:
    lines = read_lines(export)
    inbox = [line for line in lines if line.get("topic") == INBOX]
    repeated = write_lines(export, [*lines, inbox[-1]])

    report = check_determinism(load(repeated))

    assert report.duplicates == 1
    assert report.divergences == []


def test_a_quantity_altered_in_an_export_is_caught_with_the_input_expected_and_recorded(export: Path) -> None:
    lines = read_lines(export)
    line = next(line for line in lines if line.get("value", {}).get("type") == "ChipsAllocated")
    line["value"]["payload"]["quantity"] -= 1
    tampered = write_lines(export, lines)

    first = check_determinism(load(tampered)).first

    assert first is not None
    assert first.what == "payload.quantity: expected 500, recorded 499"
    assert first.cause is not None and first.cause.envelope.type == "BatchManufactured"
    assert first.expected is not None and first.actual is not None
    assert first.expected.id == first.actual.envelope.id
    assert str(first.actual.spot) == f"h200.allocations[{line['partition']}]@{line['offset']}"


def test_two_inbox_records_swapped_in_an_export_are_caught(export: Path) -> None:
    # The batch B1 moved before the approvals it was shared among: the core then allocates it on another input.
    lines = read_lines(export)
    inbox = [n for n, line in enumerate(lines) if line.get("topic") == INBOX]
    kinds = {n: lines[n]["value"]["type"] for n in inbox}
    batch = next(n for n in inbox if kinds[n] == "BatchManufactured")
    approval = next(
        n for n in inbox if kinds[n] == "OrderApproved" and lines[n]["partition"] == lines[batch]["partition"]
    )
    lines[batch], lines[approval] = lines[approval], lines[batch]
    reordered = write_lines(export, lines)

    report = check_determinism(load(reordered))

    assert report.first is not None
    assert report.first.pool_id == "h200" and report.first.position == 0
    assert "payload.cause_event_id: expected" in report.first.what


def test_a_decision_missing_from_the_log_is_caught(export: Path) -> None:
    lines = read_lines(export)
    last = max(n for n, line in enumerate(lines) if line.get("topic") == "h200.allocations")
    del lines[last]

    first = check_determinism(load(write_lines(export, lines))).first

    assert first is not None and first.what == "decided by the core, not in the recorded log"


# --- what-if ---------------------------------------------------------------------------------------------------------


def test_what_if_with_first_approved_first_served_from_the_start(world: World) -> None:
    # Recorded: the pool went pro rata before Alibaba's lost 300 chips were shared with Tencent (171 / 129).
    # First approved, first served throughout, Alibaba (approved before Tencent) takes them all back.
    report = what_if(world.log(), "first_approved_first_served")

    assert {b.buyer: (b.approved, b.recorded, b.what_if, b.difference) for b in report.buyers} == {
        "alibaba": (400, 171, 300, 129),
        "bytedance": (600, 600, 600, 0),
        "tencent": (300, 129, 0, -129),
    }
    assert report.pools == ("h200",)


def test_what_if_pro_rata_from_the_start_shares_every_batch(world: World) -> None:
    report = what_if(world.log(), "pro_rata")

    outcome = {b.buyer: b.what_if for b in report.buyers}
    assert outcome == {"alibaba": 212, "bytedance": 459, "tencent": 229}
    assert sum(outcome.values()) == sum(b.recorded for b in report.buyers) == 900


def test_what_if_never_changes_the_recorded_log(world: World) -> None:
    log = world.log()
    before = [e.model_dump_json() for e in log.events]

    what_if(log, "pro_rata")

    assert [e.model_dump_json() for e in log.events] == before
    assert check_determinism(log).divergences == []


def test_what_if_on_a_pool_that_is_not_there_changes_nothing(world: World) -> None:
    report = what_if(world.log(), "pro_rata", pools={"elsewhere"})

    assert report.pools == ()
    assert all(b.recorded == b.what_if == 0 for b in report.buyers)


def test_what_if_changes_only_the_rule_keeping_the_pools_deadline_for_unfilled_orders() -> None:
    deadline = 90 * 86_400
    world = World().publish(
        *rules()[:1],
        allocation_rule("first_approved_first_served").model_copy(update={"close_unfilled_after_s": deadline}),
    )
    world.publish(*cleared("bytedance", 1_000), order("bytedance", "BD-1", 600, minute=1), batch("B1", 500, minute=60))
    inbox = world.log().inbox

    imagined = [
        item.envelope.payload
        for partition, records in inbox.items()
        for item in rule_from_start("pro_rata")(partition, records)
        if isinstance(item.envelope.payload, AllocationPolicySet)
    ]

    assert [(p.policy_id, p.rule, p.close_unfilled_after_s) for p in imagined] == [
        ("what-if/h200", "pro_rata", deadline),
        ("allocation/h200", "pro_rata", deadline),
    ]
