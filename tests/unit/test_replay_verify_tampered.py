"""verify on copies of a sound log tampered with as a file can be: chips given again while they were shipped,
licences and quotas exceeded by chips that left, one order placed twice, decisions by a producer the catalogue
does not allow, and records no decoder can read. Each is named with its events; none makes verify fail to run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from builders_replay import ORDER_AL, ORDER_BD, World, at, edit, of_type, story

from schemas.approval import ApprovalReleased, OrderApproved
from schemas.base import Message, PolicyRef
from schemas.codec import encode
from schemas.envelope import make_envelope, order_id_for
from schemas.samples import sample_envelopes
from services.replay.eventlog import EventLog, build_log
from services.replay.invariants import check
from services.replay.records import LogRecord
from services.replay.verify import verify
from services.replay.violations import Violation

Records = list[LogRecord]


@pytest.fixture(scope="module")
def world() -> World:
    return story()


def records(world: World) -> Records:
    return world.records(world.log().topics)


def as_log(world: World, changed: Records) -> EventLog:
    return build_log(changed, world.log().topics, "tampered")


def found(log: EventLog, code: str) -> list[Violation]:
    return [v for v in check(log) if v.code == code]


def envelope_of(record: LogRecord) -> dict[str, Any]:
    value = json.loads(record.value or b"null")
    return value if isinstance(value, dict) else {}


def without(changed: Records, where: Callable[[dict[str, Any]], bool]) -> Records:
    kept = [r for r in changed if not where(envelope_of(r))]
    assert len(kept) < len(changed), "no record matched"
    return kept


def appended(changed: Records, topic: str, partition: int, payload: Message, producer: str) -> Records:
    """A record written after the others of its partition, with an envelope of its own."""
    offset = sum(1 for r in changed if (r.topic, r.partition) == (topic, partition))
    key: str = payload.buyer_id  # type: ignore[attr-defined]
    envelope = make_envelope(payload, key=key, producer=producer, occurred_at=at(900), message_id=uuid4())
    return [*changed, LogRecord(topic, partition, offset, envelope.key.encode(), encode(envelope))]


def partition_of(changed: Records, type_: str, **fields: Any) -> int:
    return next(r.partition for r in changed if of_type(type_, **fields)(envelope_of(r)))


# --- 1. chips allocated again while they were shipped --------------------------------------------------------


def test_chips_released_after_they_shipped_and_given_again_overdraw_their_batch_and_order(world: World) -> None:
    # Alibaba's 300 chips of B2 shipped; the log no longer says they were lost, yet they went back and out again
    lost = of_type("FulfilmentStepRecorded", buyer_id="alibaba", step="lost")
    forged = without(without(records(world), lost), of_type("DeliveryFailed", buyer_id="alibaba"))
    log = as_log(world, forged)
    line = world.allocation_of("alibaba", "B2")

    [batch] = found(log, "batch_overdrawn_by_shipped_chips")
    [order] = found(log, "order_overfilled_by_shipped_chips")

    # named when the first chips given again (129 to Tencent) take the batch over what it holds
    assert batch.message.startswith("batch B2 gave out 529 chips, holds 400: 229 on live lines and 300 on lines ")
    assert f"(shipped lines: {line} (300))" in batch.message
    assert order.message.startswith(f"order {ORDER_AL} holds 471 chips, approved for 400: 171 on live lines and 300")
    shipped_line = next(str(e.id) for e in log.events if getattr(e.payload, "allocation_id", None) == line)
    assert shipped_line in batch.events and shipped_line in order.events
    assert not verify(log).ok


def test_a_lost_shipment_returns_its_chips_to_be_allocated_again(world: World) -> None:
    log = world.log()

    assert [v for v in check(log) if "shipped" in v.code] == []


# --- 2. licences and quotas against the chips that left ----------------------------------------------------


def test_chips_shipped_beyond_the_latest_licence_revision_are_named(world: World) -> None:
    smaller = edit(
        records(world),
        of_type("ExportLicenceIssued", buyer_id="bytedance"),
        lambda e: e["payload"].update(quantity=450),
    )

    [shipped] = found(as_log(world, smaller), "licence_exceeded_by_shipped_chips")

    assert shipped.message == (
        f"licence BIS-BYTEDANCE: 500 chips shipped and not lost or refused (orders {ORDER_BD}), its latest revision 1 "
        "allows 450"
    )


def test_an_ended_order_keeps_its_shipped_chips_on_the_licence_and_the_quota(world: World) -> None:
    # ByteDance's order ends with 500 chips delivered, its whole approval is given back, and 900 more are approved
    changed = records(world)
    first: Any = next(e for e in world.events("h200.approvals") if getattr(e.payload, "order_id", None) == ORDER_BD)
    terms = {
        "buyer_id": "bytedance",
        "pool_id": "h200",
        "policy_refs": first.payload.policy_refs,
        "cause_event_id": first.id,
        "decided_at": at(900),
        "licence_id": first.payload.licence_id,
        "tranche_id": "T1",
    }
    release = ApprovalReleased(**terms, order_id=ORDER_BD, quantity=600, why="cancelled")
    second = OrderApproved(
        **terms, order_id=order_id_for("bytedance", "BD-2"), requested_quantity=900, approved_quantity=900
    )
    partition = partition_of(changed, "OrderApproved", buyer_id="bytedance")
    for decision in (release, second):
        changed = appended(changed, "h200.approvals", partition, decision, "approval")

    log = as_log(world, changed)

    [licence] = found(log, "licence_exceeded")
    [quota] = found(log, "quota_exceeded")
    assert licence.message == (
        "licence BIS-BYTEDANCE: 900 chips under open approvals and 500 chips kept by ended orders, revision 1 allows "
        "1000"
    )
    assert quota.message.startswith("quota bytedance/T1: 900 chips under open approvals and 500 chips kept by ended")
    approved_again = next(str(e.id) for e in log.of(OrderApproved) if e.payload == second)
    assert approved_again in licence.events and approved_again in quota.events


# --- 3. one order per (buyer, upstream reference) ------------------------------------------------------------


def test_one_reference_placed_twice_is_named_with_both_placements(world: World) -> None:
    changed = records(world)
    placed = next(r for r in changed if of_type("OrderPlaced", buyer_id="bytedance")(envelope_of(r)))
    twice = {**envelope_of(placed), "id": str(uuid4())}
    offset = sum(1 for r in changed if (r.topic, r.partition) == (placed.topic, placed.partition))
    changed = [*changed, LogRecord(placed.topic, placed.partition, offset, placed.key, json.dumps(twice).encode())]

    [violation] = found(as_log(world, changed), "order_placed_twice")

    assert violation.message == f"bytedance/BD-1 was placed 2 times (order {ORDER_BD}): one reference is one order"
    assert twice["id"] in violation.events and len(violation.events) == 2


def test_an_order_id_not_derived_from_its_reference_is_named(world: World) -> None:
    other = str(uuid4())
    changed = edit(
        records(world), of_type("OrderPlaced", buyer_id="tencent"), lambda e: e["payload"].update(order_id=other)
    )

    [violation] = found(as_log(world, changed), "order_id_not_derived")

    assert violation.message.startswith(f"order {other} placed for tencent/TC-1, whose order id is ")


# --- 4. who may publish what ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("producer", "code"), [("mallory", "unknown_producer"), ("intake", "impersonated_producer")])
def test_a_decision_by_a_producer_the_catalogue_does_not_allow_is_named_where_it_is(
    world: World, producer: str, code: str
) -> None:
    changed = edit(records(world), of_type("OrderApproved", buyer_id="alibaba"), lambda e: e.update(producer=producer))
    log = as_log(world, changed)
    approval = next(i for i in log.located(OrderApproved) if getattr(i.envelope.payload, "buyer_id", "") == "alibaba")

    [violation] = found(log, code)

    assert violation.message == (
        f"OrderApproved {approval.envelope.id} at {approval.spot} names producer {producer!r}; only approval may "
        "publish it (h200.approvals in the catalogue)"
    )
    assert violation.events == (str(approval.envelope.id),)


def test_a_forged_approval_found_only_in_the_allocation_inbox_is_named(world: World) -> None:
    approved: Any = next(e.payload for e in world.events("h200.approvals") if isinstance(e.payload, OrderApproved))
    forged = approved.model_copy(update={"order_id": uuid4(), "approved_quantity": 50})
    changed = appended(records(world), "h200.allocation.inbox", 0, forged, "ops")

    [violation] = found(as_log(world, changed), "impersonated_producer")

    assert " at h200.allocation.inbox[0]@" in violation.message and "names producer 'ops'" in violation.message


def test_a_message_on_a_topic_that_does_not_carry_it_is_named(world: World) -> None:
    approved: Any = next(e.payload for e in world.events("h200.approvals") if isinstance(e.payload, OrderApproved))
    changed = appended(records(world), "h200.orders", 0, approved.model_copy(update={"order_id": uuid4()}), "approval")

    [violation] = found(as_log(world, changed), "message_on_wrong_topic")

    assert violation.message.endswith("h200.orders does not carry OrderApproved")


# --- any record at all ---------------------------------------------------------------------------------------


def test_a_record_no_decoder_can_read_is_counted_where_it_is(world: World) -> None:
    nested = LogRecord("h200.approvals", 1, 99, b"x", b"[" * 200_000)
    empty = LogRecord("h200.orders", 2, 98, b"x", None)

    report = verify(as_log(world, [*records(world), nested, empty]))

    assert [problem.split(":")[0] for problem in report.undecodable] == ["h200.approvals[1]@99", "h200.orders[2]@98"]
    assert not report.ok


def test_every_kind_of_message_on_every_topic_read_is_reported_not_a_crash(world: World) -> None:
    changed = records(world)
    for topic in world.log().topics:
        for envelope in sample_envelopes():
            offset = sum(1 for r in changed if (r.topic, r.partition) == (topic, 0))
            changed.append(LogRecord(topic, 0, offset, envelope.key.encode(), encode(envelope)))

    report = verify(as_log(world, changed))

    assert not report.ok
    assert {"unknown_producer", "message_on_wrong_topic"} <= {v.code for v in report.violations}


def test_the_policy_revisions_of_a_forged_decision_do_not_matter_to_who_may_publish_it(world: World) -> None:
    # A decision citing only real revisions, published by ops: still not approval's
    ref = PolicyRef(policy_id="us-licence/alibaba", revision=1)
    approved: Any = next(e.payload for e in world.events("h200.approvals") if isinstance(e.payload, OrderApproved))
    forged = approved.model_copy(update={"order_id": UUID(int=7), "policy_refs": (ref,)})
    partition = partition_of(records(world), "OrderApproved", buyer_id="alibaba")

    log = as_log(world, appended(records(world), "h200.approvals", partition, forged, "ops"))

    assert [v.code for v in check(log) if v.code.endswith("_producer")] == ["impersonated_producer"]
