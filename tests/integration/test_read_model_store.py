"""The read-model store on a real Redis: an event's data and its position change together, once."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from schemas.samples import sample_envelopes
from services.projector.projection import project
from services.projector.store import Pending, ReadModelStore

ENVELOPES = {e.type: e for e in sample_envelopes()}


def store(redis_url: str) -> ReadModelStore:
    return ReadModelStore(redis.Redis.from_url(redis_url, decode_responses=True), f"t{uuid.uuid4().hex[:8]}")


def pending(s: ReadModelStore, type_: str, offset: int, topic: str = "h200.allocations") -> Pending:
    envelope = ENVELOPES[type_]
    return Pending(topic, 0, offset, str(envelope.id), project(s.ns, envelope))


def test_an_event_is_applied_with_its_position(redis_url: str) -> None:
    s = store(redis_url)
    assert s.apply([pending(s, "ChipsAllocated", 0)]) == 1
    assert s.positions() == {("h200.allocations", 0): 1}
    [line] = s.ledger()
    assert line["quantity"] == "20000" and line["batch_id"] == "TSMC-B001"


def test_a_record_below_the_position_is_not_applied_again(redis_url: str) -> None:
    s = store(redis_url)
    s.apply([pending(s, "ChipsAllocated", 0)])
    assert s.apply([pending(s, "ChipsAllocated", 0)]) == 0
    assert s.order(str(ENVELOPES["ChipsAllocated"].payload.order_id))["allocated"] == "20000"  # type: ignore[attr-defined]


def test_the_same_event_id_at_another_offset_is_applied_once(redis_url: str) -> None:
    s = store(redis_url)
    s.apply([pending(s, "ChipsAllocated", 0)])
    assert s.apply([pending(s, "ChipsAllocated", 1)]) == 0
    assert s.positions() == {("h200.allocations", 0): 2}
    order: Any = ENVELOPES["ChipsAllocated"].payload
    assert s.order(str(order.order_id))["allocated"] == "20000"


def test_a_release_after_delivery_failure_leaves_the_shipped_count_too(redis_url: str) -> None:
    s = store(redis_url)
    s.apply([pending(s, "ChipsAllocated", 0), pending(s, "FulfilmentStepRecorded", 0, "h200.fulfilment")])
    s.apply([pending(s, "AllocationReleased", 1)])
    batch = s.batches().get("TSMC-B001") or s.client.hgetall(f"{s.ns}:batch:TSMC-B001")
    assert batch["allocated"] == "0" and batch["shipped"] == "0"
