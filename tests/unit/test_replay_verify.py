"""verify: every invariant of the domain, the decision trail, a stable replay, determinism and parity with the
read model, over a log built by the real cores, then over copies of it tampered with as a file can be."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest
from builders_replay import ORDER_AL, World, at, batch, cleared, edit, of_type, order, rules, story
from fake_read_model import FakeReadModel

from schemas.clock import ApprovalsPassed
from schemas.codec import encode
from schemas.envelope import order_id_for
from schemas.policy import ImporterSuspended
from schemas.topics import BY_NAME, EVENT_TOPICS
from services.ops.publish import envelope_for
from services.replay.eventlog import EventLog, build_log
from services.replay.invariants import check
from services.replay.live import live_ledger
from services.replay.records import CLOCK, INBOX, LogRecord
from services.replay.trail import check_trail
from services.replay.verify import VerifyReport, verify
from services.replay.violations import Violation

ORDER_TC = order_id_for("tencent", "TC-1")


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture(scope="module")
def log(world: World) -> EventLog:
    return world.log()


def tampered(
    world: World, where: Callable[[dict[str, Any]], bool], change: Callable[[dict[str, Any]], None]
) -> EventLog:
    topics = world.log().topics
    return build_log(edit(world.records(topics), where, change), topics, "tampered")


def codes(violations: list[Violation]) -> set[str]:
    return {v.code for v in violations}


def event_id(log: EventLog, type_: str, **fields: Any) -> str:
    return next(
        str(e.id) for e in log.events if e.type == type_ and all(getattr(e.payload, k) == v for k, v in fields.items())
    )


# --- a sound log -------------------------------------------------------------------------------------------


def test_the_log_of_the_four_cores_keeps_every_invariant(log: EventLog) -> None:
    read_model = FakeReadModel().apply(log.events)

    report = verify(log, live_ledger(read_model), "h200")  # type: ignore[arg-type]

    assert report.violations == []
    assert (
        report.trail.violations == [] and report.trail.decisions == 4 + 5 + 1
    )  # approval's, then chips allocated and released
    assert report.stable
    assert report.determinism is not None and report.determinism.divergences == []
    assert report.parity is not None and report.parity.same
    assert report.notes == []
    assert report.ok


def test_without_the_inbox_the_determinism_check_is_left_out(world: World) -> None:
    report = verify(world.log(topics=EVENT_TOPICS))

    assert report.determinism is None
    assert report.ok


# --- chips ---------------------------------------------------------------------------------------------------


def test_a_batch_giving_out_more_than_it_holds_is_named_with_its_events(world: World, log: EventLog) -> None:
    bumped = tampered(world, of_type("ChipsAllocated", batch_id="B1"), lambda e: e["payload"].update(quantity=550))

    found = [v for v in check(bumped) if v.code == "batch_overdrawn"]

    assert [str(v) for v in found] == [
        f"batch B1 gave out 550 chips but holds 500 (events: {event_id(log, 'BatchManufactured', batch_id='B1')}, "
        f"{event_id(log, 'ChipsAllocated', batch_id='B1')})"
    ]


def test_an_order_receiving_more_than_approved_is_named(world: World) -> None:
    bumped = tampered(
        world, of_type("ChipsAllocated", batch_id="B2", quantity=100), lambda e: e["payload"].update(quantity=150)
    )

    assert {"order_overfilled", "batch_overdrawn"} <= codes(check(bumped))


def test_an_order_of_one_line_is_overfilled_by_one_chip_and_not_at_its_approval() -> None:
    one = World().publish(*rules(), *cleared("bytedance", 1_000))
    one.publish(order("bytedance", "BD-1", 100, minute=1), batch("B1", 500, minute=60))
    over = tampered(one, of_type("ChipsAllocated"), lambda e: e["payload"].update(quantity=101))

    assert [v.message for v in check(over) if v.code.startswith("order_")] == [
        f"order {order_id_for('bytedance', 'BD-1')} holds 101 chips, approved for 100"
    ]
    assert check(one.log()) == []


def test_a_release_of_an_allocation_never_made_is_named(world: World) -> None:
    stray = tampered(world, of_type("AllocationReleased"), lambda e: e["payload"].update(allocation_id=str(uuid4())))

    assert [v.code for v in check(stray) if v.code == "bad_release"] == ["bad_release"]


def test_an_allocation_to_an_order_suspended_at_that_moment_is_named() -> None:
    # Given Tencent suspended by China, a new batch goes to Alibaba only; the log is then edited to give it to Tencent
    world = story().publish(
        ImporterSuspended(
            policy_id="cn-importer/tencent",
            revision=2,
            effective_at=at(700),
            issued_by="MOFCOM",
            buyer_id="tencent",
            reason="review",
        ),
        batch("B3", 100, minute=720),
    )
    assert [(a.buyer_id, a.quantity) for a in world.allocations() if a.batch_id == "B3"] == [("alibaba", 100)]
    moved = tampered(
        world,
        of_type("ChipsAllocated", batch_id="B3"),
        lambda e: e["payload"].update(order_id=str(ORDER_TC), buyer_id="tencent"),
    )

    found = [v for v in check(moved) if v.code == "not_approved_then"]

    assert len(found) == 1
    assert f"went to order {ORDER_TC} while it was suspended (decided on BatchManufactured" in found[0].message
    assert event_id(moved, "BatchManufactured", batch_id="B3") in found[0].events


# --- licences, quotas, shipments -----------------------------------------------------------------------------


def test_an_approval_beyond_the_buyers_licence_is_named(world: World, log: EventLog) -> None:
    over = tampered(
        world, of_type("OrderApproved", buyer_id="alibaba"), lambda e: e["payload"].update(approved_quantity=450)
    )

    found = [v for v in check(over) if v.code == "licence_exceeded"]

    assert found and found[0].message.startswith(
        "licence BIS-ALIBABA: 450 chips under open approvals, revision 1 allows 400"
    )
    assert event_id(log, "ExportLicenceIssued", licence_id="BIS-ALIBABA") in found[0].events


def test_a_delivery_without_a_shipment_is_named(world: World) -> None:
    topics = world.log().topics
    records = [r for r in world.records(topics) if not _is_step(r, "shipped", "bytedance")]

    found = [v for v in check(build_log(records, topics)) if v.code == "delivered_unshipped"]

    assert len(found) == 1 and "delivered before it was shipped" in found[0].message


def _is_step(record: LogRecord, step: str, buyer: str) -> bool:
    envelope = json.loads(record.value or b"{}")
    payload = envelope.get("payload", {})
    return bool(
        envelope.get("type") == "FulfilmentStepRecorded"
        and payload.get("step") == step
        and payload.get("buyer_id") == buyer
    )


# --- the decision trail ----------------------------------------------------------------------------------------


def test_a_decision_that_records_no_policy_revision_is_named(world: World) -> None:
    blind = tampered(
        world, of_type("OrderApproved", order_id=str(ORDER_AL)), lambda e: e["payload"].update(policy_refs=[])
    )

    assert "no_policy_revision" in codes(check(blind))
    assert "no_policy_revision" in codes(check_trail(blind).violations)


def test_an_allocation_under_the_built_in_rule_records_no_policy_revision(world: World) -> None:
    default = tampered(world, of_type("ChipsAllocated", batch_id="B1"), lambda e: e["payload"].update(policy_ref=None))

    [found] = check_trail(default).violations
    assert found.code == "no_policy_revision"
    assert "publish an AllocationPolicySet for pool h200" in found.message


def test_a_decision_naming_another_cause_than_its_envelope_is_named(world: World) -> None:
    other = tampered(
        world, of_type("ChipsAllocated", batch_id="B1"), lambda e: e["payload"].update(cause_event_id=str(uuid4()))
    )

    assert codes(check_trail(other).violations) == {"cause_mismatch"}


def test_a_cited_policy_revision_missing_from_the_log_is_named(world: World) -> None:
    ghost = tampered(
        world,
        of_type("ChipsAllocated", batch_id="B1"),
        lambda e: e["payload"].update(policy_ref={"policy_id": "allocation/h200", "revision": 9}),
    )

    assert "unknown_policy_revision" in codes(check_trail(ghost).violations)


# --- the whole verdict ---------------------------------------------------------------------------------------------


def test_a_tampered_quantity_fails_verify_through_the_determinism_check(world: World) -> None:
    # 500 -> 499 keeps every quantity invariant: only refolding the recorded inputs shows the log was changed
    shaved = tampered(world, of_type("ChipsAllocated", batch_id="B1"), lambda e: e["payload"].update(quantity=499))

    report: VerifyReport = verify(shaved)

    assert report.violations == []
    assert report.determinism is not None and report.determinism.first is not None
    assert report.determinism.first.what == "payload.quantity: expected 500, recorded 499"
    assert not report.ok


def test_an_undecodable_record_fails_verify_and_is_located(world: World) -> None:
    topics = world.log().topics
    records = world.records(topics)
    garbage = LogRecord("h200.orders", 0, 99, b"x", b"{oops")

    report = verify(build_log([*records, garbage], topics))

    assert [problem.split(": not valid")[0] for problem in report.undecodable] == ["h200.orders[0]@99: malformed_json"]
    assert not report.ok


def test_a_read_model_telling_another_story_fails_verify_with_the_differences(log: EventLog) -> None:
    delivered = next(e for e in log.events if getattr(e.payload, "step", None) == "delivered")
    stale = live_ledger(FakeReadModel().apply(e for e in log.events if e.id != delivered.id))  # type: ignore[arg-type]

    report = verify(log, stale, "h200", behind=1)

    assert report.parity is not None and not report.parity.same
    assert any("status: log 'delivered', live 'customs_cleared'" in d for d in report.parity.differences)
    assert not report.ok


def test_an_allocation_dated_before_its_batch_was_ready_is_noted_not_failed() -> None:
    # A core that dated a decision by the input it decided on (before the partition clock of docs/time.md) wrote
    # the allocation on an approval of minute 1 decided on after the batch of minute 60 with minute 1 on its
    # envelope, while its line is dated when the batch was ready. Such a log is edited here into that shape.
    world = World().publish(*rules(), *cleared("bytedance", 1_000)).publish(batch("B1", 500, minute=60))
    world.publish(order("bytedance", "BD-1", 600, minute=1))
    topics = (*EVENT_TOPICS, CLOCK)
    earlier = edit(world.records(topics), of_type("ChipsAllocated"), lambda e: e.update(occurred_at=at(1).isoformat()))

    report = verify(build_log(earlier, topics))

    assert report.ok
    assert report.notes == [
        "1 allocation(s) dated before their batch was ready (batches B1): decided on an earlier-dated input that "
        "arrived after the batch; their lines are allocated when the batch was ready, the time a replay --as-of "
        "cuts them on"
    ]


def test_a_lane_only_marker_in_another_lanes_allocation_partition_is_noted_not_failed(world: World) -> None:
    """Only a router that copied it wrongly puts it there, and the core ignores it there (which can only hold an
    admission back): verify names where, so that the defect is seen, and still passes the log."""
    topics = world.log().topics
    records = world.records(topics)
    inbox = BY_NAME[INBOX].partitions
    marker = ApprovalsPassed(source_partition=0, sources=6, lane=1, lanes=inbox, at=at(5), lane_only=True)
    placed = LogRecord(INBOX, 0, 10_000, b"h200", encode(envelope_for(marker, "approval")), 0, (), 0)

    report = verify(build_log([*records, placed], topics))

    assert report.ok
    assert report.notes == [
        f"1 lane-only approval marker(s) copied into an allocation partition other than their lane's ({INBOX}[0]@10000 "
        "(lane 1)): allocation's router copied them wrongly; the core ignored them, so admissions there waited for "
        "their own lane's markers. Check the allocation service's routing"
    ]
    at_home = replace(placed, partition=1)
    assert verify(build_log([*records, at_home], topics)).notes == []  # its own lane's partition: where it belongs
    version_1 = ApprovalsPassed(source_partition=0, sources=6, lane=1, lanes=inbox, at=at(5), lane_only=False)
    copied = replace(placed, value=encode(envelope_for(version_1, "approval")))
    assert verify(build_log([*records, copied], topics)).notes == []  # counted by every partition: in place anywhere
