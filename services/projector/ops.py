"""The shapes every projection writes: Redis commands, an order's trail entry, counters per order, buyer, batch."""

from __future__ import annotations

import json
from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope

Op = list[str]


def trail(ns: str, order_id: object, envelope: Envelope[Message], summary: str) -> Op:
    entry = {"at": envelope.occurred_at.isoformat(), "type": envelope.type, "id": str(envelope.id), "what": summary}
    return ["RPUSH", f"{ns}:order:{order_id}:trail", json.dumps(entry, sort_keys=True)]


def counts(ns: str, p: Any, field: str, delta: int) -> list[Op]:
    """The same counter moved on the order, its buyer and its batch."""
    return [
        ["HINCRBY", f"{ns}:order:{p.order_id}", field, str(delta)],
        ["HINCRBY", f"{ns}:buyer:{p.buyer_id}", field, str(delta)],
        ["HINCRBY", f"{ns}:batch:{p.batch_id}", field, str(delta)],
    ]
