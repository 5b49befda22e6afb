"""The projector reads orders and decisions from different topics, so it may apply a decision before the
placement it answers (found by tests/e2e/test_crash.py): the order's status must not depend on that order."""

from __future__ import annotations

import uuid

import pytest
import redis

from schemas.samples import sample_envelopes
from services.projector.projection import project
from services.projector.store import Pending, ReadModelStore

ENVELOPES = {e.type: e for e in sample_envelopes()}
TOPICS = {"OrderPlaced": "h200.orders", "OrderApproved": "h200.approvals"}


@pytest.mark.parametrize("first", ["OrderPlaced", "OrderApproved"])
def test_an_approved_order_shows_approved_whichever_topic_is_applied_first(redis_url: str, first: str) -> None:
    store = ReadModelStore(redis.Redis.from_url(redis_url, decode_responses=True), f"t{uuid.uuid4().hex[:8]}")
    for type_ in sorted(TOPICS, key=lambda t: t != first):
        envelope = ENVELOPES[type_]
        store.apply([Pending(TOPICS[type_], 0, 0, str(envelope.id), project(store.ns, envelope))])
    order = store.order(str(ENVELOPES["OrderPlaced"].payload.order_id))  # type: ignore[attr-defined]
    assert order["status"] == "approved"
    assert order["placed_at"] and order["approved_quantity"]
