"""verify on copies of a sound log tampered with as a file can be: chips given again while they were shipped, and
licences and quotas exceeded by chips that left or by approvals that forgot them. Each is named with its events."""

from __future__ import annotations

from typing import Any

import pytest
from builders_replay import ORDER_AL, ORDER_BD, World, at, batch, cleared, edit, of_type, order, rules, steps, story
from builders_tampering import appended, as_log, found, partition_of, records, without

from schemas.approval import ApprovalReleased, OrderApproved
from schemas.envelope import order_id_for
from services.replay.invariants import check
from services.replay.verify import verify


@pytest.fixture(scope="module")
def world() -> World:
    return story()


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


def test_chips_shipped_by_many_orders_are_summed_and_the_first_ten_orders_named() -> None:
    # Twelve orders of 100 chips each ship and are delivered; the licence, as edited, allows 1,000: no order alone
    # goes over it, their sum does.
    many = World().publish(*rules(), *cleared("bytedance", 10_000))
    many.publish(*(order("bytedance", f"BD-{n}", 100, minute=1 + n) for n in range(12)))
    many.publish(batch("B1", 1_200, minute=60))
    lines = [line.allocation_id for line in many.allocations()]
    many.publish(
        *(s for n, line in enumerate(lines) for s in steps(line, "packed", "shipped", "delivered", minute=90 + n))
    )
    smaller = edit(records(many), of_type("ExportLicenceIssued"), lambda e: e["payload"].update(quantity=1_000))

    [shipped] = found(as_log(many, smaller), "licence_exceeded_by_shipped_chips")

    assert len(lines) == 12
    approved = [e for e in many.events("h200.approvals") if isinstance(e.payload, OrderApproved)]
    named = [str(e.payload.order_id) for e in approved[:10]]
    assert shipped.message == (
        f"licence BIS-BYTEDANCE: 1200 chips shipped and not lost or refused (orders {', '.join(named)}), its latest "
        "revision 1 allows 1000"
    )
    assert [str(e.id) for e in approved[:10]] == list(shipped.events[1:])


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


def test_approvals_of_two_pools_on_one_licence_are_counted_in_the_order_they_were_decided(world: World) -> None:
    # Tencent's licence allows 300. An order of another pool took it all and gave it back before TC-1 (minute 3)
    # was approved; that pool's partition is read after the one of TC-1, which must not count them together.
    first: Any = next(e for e in world.events("h200.approvals") if getattr(e.payload, "buyer_id", "") == "tencent")
    other = order_id_for("tencent", "TC-0")
    terms = {**first.payload.model_dump(), "order_id": other, "pool_id": "pool0", "decided_at": at(0.5)}
    approval = OrderApproved.model_validate(terms)
    fields = ("buyer_id", "pool_id", "policy_refs", "cause_event_id", "licence_id", "tranche_id")
    release = ApprovalReleased(
        **{name: terms[name] for name in fields}, order_id=other, decided_at=at(2), quantity=300, why="cancelled"
    )
    later = 1 + partition_of(records(world), "OrderApproved", buyer_id="tencent")
    changed = records(world)
    for decision in (approval, release):
        changed = appended(changed, "h200.approvals", later, decision, "approval")

    assert [v for v in check(as_log(world, changed)) if v.code.endswith("_exceeded")] == []
