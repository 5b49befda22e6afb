"""The Redis side of the read models: atomic apply with position and id, and the queries that read them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from services.projector.namespace import alias_key, current_namespace

# One script call per record: the position check, the id check, the data and the new position change
# together or not at all, so a crash between records can neither lose nor repeat an event's effect.
# A fenced writer (the live projector) names the namespace it believes current: once a rebuild has moved the
# alias (KEYS[4], absent = ARGV[7]) elsewhere, its writes are refused (-1) and it must follow the alias.
# Every writer names the generation of the read model it writes to (KEYS[3]): when that marker is gone or
# another (Redis flushed, restarted empty, the namespace deleted), its writes are refused (-2): applying new
# records on top of lost ones would leave a read model that looks current and is not.
GUARDS = """
if ARGV[6] ~= '' and (redis.call('GET', KEYS[4]) or ARGV[7]) ~= ARGV[6] then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return -2 end
"""
APPLY = (
    GUARDS
    + """local next_offset = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local offset = tonumber(ARGV[2])
if offset < next_offset then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], offset + 1)
if ARGV[3] ~= '' and redis.call('SADD', KEYS[2], ARGV[3]) == 0 then return 0 end
for _, op in ipairs(cjson.decode(ARGV[4])) do redis.call(unpack(op)) end
return 1
"""
)
# The guards alone, for a batch with no record: an idle projector finds a loss too (-2), or a move (-1).
CHECK = GUARDS + "return 0"


# The generation a namespace is written in: adopted if there is one, else the one proposed (a namespace new or
# emptied, whose positions are gone with it: it is projected from offset 0).
ADOPT_GENERATION = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""


@dataclass(frozen=True)
class Pending:
    topic: str
    partition: int
    offset: int
    event_id: str
    ops: list[list[str]]


def current_store(client: redis.Redis, base: str = "h200") -> ReadModelStore:
    """The read models to read under `base` now: its alias resolved (see services.projector.namespace)."""
    return ReadModelStore(client, current_namespace(client, base))


class NamespaceMovedError(RuntimeError):
    """The alias no longer names the namespace a fenced store writes to: the rest of the batch was refused."""

    def __init__(self, namespace: str, applied: int) -> None:
        super().__init__(f"the read models moved away from namespace {namespace}")
        self.applied = applied


class ReadModelLostError(RuntimeError):
    """The namespace's generation marker is gone or another: its read models were lost or reset meanwhile."""

    def __init__(self, namespace: str, applied: int) -> None:
        super().__init__(f"the read models of namespace {namespace} were lost (their generation marker is gone)")
        self.applied = applied


class ReadModelStore:
    def __init__(self, client: redis.Redis, namespace: str = "h200", fence: str | None = None) -> None:
        """`fence`: the alias base; writes are then refused once the alias no longer names `namespace`."""
        # Every key and value the read models hold is text: decode once here.
        if not client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("ReadModelStore needs a Redis client made with decode_responses=True")
        self.client: Any = client
        self.ns = namespace
        self.fence = fence
        self._apply = client.register_script(APPLY)
        self._adopt = client.register_script(ADOPT_GENERATION)
        self._check = client.register_script(CHECK)
        self.generation: str | None = None
        """The generation this store writes in, adopted at the first write (see generation_key)."""

    @property
    def generation_key(self) -> str:
        return f"{self.ns}:generation_id"

    def adopt_generation(self) -> str:
        """The namespace's generation marker, written with a new random id if it has none."""
        if self.generation is None:
            self.generation = str(self._adopt(keys=[self.generation_key], args=[uuid.uuid4().hex]))
        return self.generation

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
        """Apply records in order (one atomic script each, pipelined); returns how many changed anything.
        An empty batch checks the guards only.

        A fenced store raises NamespaceMovedError when the alias moved during the batch, and any store
        ReadModelLostError when its generation marker vanished (nothing more of the batch is applied then)."""
        if not batch and self.generation is None:
            return 0
        keys = [self.positions_key, f"{self.ns}:applied", self.generation_key]
        guards = [self.adopt_generation(), "", ""]
        if self.fence is not None:
            keys.append(alias_key(self.fence))
            guards[1:] = [self.ns, self.fence]
        if not batch:
            results = [int(self._check(keys=keys, args=["", "", "", "", *guards]))]
        else:
            pipe = self.client.pipeline(transaction=False)
            for item in batch:
                self._apply(
                    keys=keys,
                    args=[f"{item.topic}:{item.partition}", item.offset, item.event_id, json.dumps(item.ops), *guards],
                    client=pipe,
                )
            results = [int(result) for result in pipe.execute()]
        applied = sum(result for result in results if result > 0)
        if -1 in results:
            raise NamespaceMovedError(self.ns, applied)
        if -2 in results:
            raise ReadModelLostError(self.ns, applied)
        return applied

    # --- queries ---------------------------------------------------------------------------------------

    def _hash(self, key: str) -> dict[str, str]:
        return dict(self.client.hgetall(key))

    def order(self, order_id: str) -> dict[str, str]:
        return self._hash(f"{self.ns}:order:{order_id}")

    def trail(self, order_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.client.lrange(f"{self.ns}:order:{order_id}:trail", 0, -1)]

    def _hashes(self, kind: str, names: list[str]) -> dict[str, dict[str, str]]:
        """Many hashes in one round trip, read together (MULTI/EXEC)."""
        pipe = self.client.pipeline(transaction=True)
        for name in names:
            pipe.hgetall(f"{self.ns}:{kind}:{name}")
        return {name: dict(fields) for name, fields in zip(names, pipe.execute() if names else [], strict=True)}

    def orders(self) -> dict[str, dict[str, str]]:
        """Every order the read models know (placed or rejected at intake), by id."""
        return self._hashes("order", sorted(self.client.smembers(f"{self.ns}:orders")))

    def buyers(self) -> dict[str, dict[str, str]]:
        return self._hashes("buyer", sorted(self.client.smembers(f"{self.ns}:buyers")))

    def batches(self) -> dict[str, dict[str, str]]:
        return self._hashes("batch", self.client.zrange(f"{self.ns}:batches", 0, -1))

    def ledger(self) -> list[dict[str, str]]:
        lines = self._hashes("line", self.client.zrange(f"{self.ns}:ledger", 0, -1)).values()
        return sorted(lines, key=lambda line: (line["allocated_at"], line["buyer_id"], line["batch_id"]))

    def dead_letters(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(f"{self.ns}:dead_letters").items()}
