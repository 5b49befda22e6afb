"""The Redis side of the read models: atomic apply with position and id, and the queries that read them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

# One script call per record: the position check, the id check, the data and the new position change
# together or not at all, so a crash between records can neither lose nor repeat an event's effect.
APPLY = """
local next_offset = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local offset = tonumber(ARGV[2])
if offset < next_offset then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], offset + 1)
if ARGV[3] ~= '' and redis.call('SADD', KEYS[2], ARGV[3]) == 0 then return 0 end
for _, op in ipairs(cjson.decode(ARGV[4])) do redis.call(unpack(op)) end
return 1
"""


@dataclass(frozen=True)
class Pending:
    topic: str
    partition: int
    offset: int
    event_id: str
    ops: list[list[str]]


class ReadModelStore:
    def __init__(self, client: redis.Redis, namespace: str = "h200") -> None:
        # Every key and value the read models hold is text: decode once here.
        if not client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("ReadModelStore needs a Redis client made with decode_responses=True")
        self.client: Any = client
        self.ns = namespace
        self._apply = client.register_script(APPLY)

    @property
    def positions_key(self) -> str:
        return f"{self.ns}:positions"

    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition)."""
        raw = self.client.hgetall(self.positions_key)
        found = {}
        for field, value in raw.items():
            topic, _, partition = field.rpartition(":")
            found[(topic, int(partition))] = int(value)
        return found

    def apply(self, batch: list[Pending]) -> int:
        """Apply records in order (one atomic script each, pipelined); returns how many changed anything."""
        if not batch:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for item in batch:
            self._apply(
                keys=[self.positions_key, f"{self.ns}:applied"],
                args=[f"{item.topic}:{item.partition}", item.offset, item.event_id, json.dumps(item.ops)],
                client=pipe,
            )
        return sum(int(result) for result in pipe.execute())

    # --- queries ---------------------------------------------------------------------------------------

    def _hash(self, key: str) -> dict[str, str]:
        return dict(self.client.hgetall(key))

    def order(self, order_id: str) -> dict[str, str]:
        return self._hash(f"{self.ns}:order:{order_id}")

    def trail(self, order_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.client.lrange(f"{self.ns}:order:{order_id}:trail", 0, -1)]

    def buyers(self) -> dict[str, dict[str, str]]:
        names = sorted(self.client.smembers(f"{self.ns}:buyers"))
        return {name: self._hash(f"{self.ns}:buyer:{name}") for name in names}

    def batches(self) -> dict[str, dict[str, str]]:
        names = self.client.zrange(f"{self.ns}:batches", 0, -1)
        return {name: self._hash(f"{self.ns}:batch:{name}") for name in names}

    def ledger(self) -> list[dict[str, str]]:
        ids = self.client.zrange(f"{self.ns}:ledger", 0, -1)
        lines = [self._hash(f"{self.ns}:line:{i}") for i in ids]
        return sorted(lines, key=lambda line: (line["allocated_at"], line["buyer_id"], line["batch_id"]))

    def dead_letters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(f"{self.ns}:dead_letters").items()}
