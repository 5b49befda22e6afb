"""verify on copies of a sound log tampered with as a file can be: one order placed twice, decisions by a producer
the catalogue does not allow, and records no decoder can read. Each is named where it is; none stops verify."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from builders_replay import ORDER_BD, World, edit, of_type, story
from builders_tampering import appended, as_log, envelope_of, found, partition_of, records

from schemas.approval import OrderApproved
from schemas.base import PolicyRef
from schemas.codec import encode
from schemas.samples import sample_envelopes
from services.replay.invariants import check
from services.replay.records import LogRecord
from services.replay.verify import verify


@pytest.fixture(scope="module")
def world() -> World:
    return story()


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


def _placed_again(world: World, buyer: str, change: dict[str, str]) -> list[LogRecord]:
    """The log with `buyer`'s first OrderPlaced written again under a new event id, its payload changed."""
    changed = records(world)
    placed = next(r for r in changed if of_type("OrderPlaced", buyer_id=buyer)(envelope_of(r)))
    again = {**envelope_of(placed), "id": str(uuid4())}
    again["payload"] = {**again["payload"], **change}
    offset = sum(1 for r in changed if (r.topic, r.partition) == (placed.topic, placed.partition))
    return [*changed, LogRecord(placed.topic, placed.partition, offset, placed.key, json.dumps(again).encode())]


def test_one_reference_placed_under_two_order_ids_is_named_by_its_reference(world: World) -> None:
    other = str(uuid4())
    changed = _placed_again(world, "bytedance", {"order_id": other})

    [violation] = found(as_log(world, changed), "order_placed_twice")

    assert violation.message == (
        f"bytedance/BD-1 was placed 2 times (order {ORDER_BD}, {other}): one reference is one order"
    )


def test_one_order_id_placed_under_two_references_is_named_by_its_order(world: World) -> None:
    changed = _placed_again(world, "bytedance", {"upstream_ref": "BD-OTHER"})

    [violation] = found(as_log(world, changed), "order_placed_twice")

    assert violation.message == (
        f"order {ORDER_BD} was placed 2 times (as bytedance/BD-1, bytedance/BD-OTHER): one order id is one order"
    )
    assert len(violation.events) == 2


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
