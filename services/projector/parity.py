"""Two read-model namespaces compared: ledger, buyers, batches, orders and their trails, counters, positions.

A snapshot is read by one script, so a live projector writing meanwhile cannot tear it: it is the read model
exactly at the positions it holds. Trails are compared as sets of entries: events of one order on
different topics may be appended in another order by a projector that read them in another interleaving.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from services.projector.store import ReadModelStore
from services.replay.live import live_ledger

Hashes = dict[str, dict[str, str]]

# Read server-side in one script, so the live projector cannot write between two reads. It holds Redis for as
# long as the read takes: milliseconds for thousands of keys, about a second per few hundred thousand.
SNAPSHOT = """
local ns = ARGV[1]
local function hashes(kind, names)
  local found = {}
  for i, name in ipairs(names) do found[i] = redis.call('HGETALL', ns .. ':' .. kind .. ':' .. name) end
  return found
end
local orders = redis.call('SMEMBERS', ns .. ':orders')
local lines = redis.call('ZRANGE', ns .. ':ledger', 0, -1)
local buyers = redis.call('SMEMBERS', ns .. ':buyers')
local batches = redis.call('ZRANGE', ns .. ':batches', 0, -1)
local trails = {}
for i, name in ipairs(orders) do trails[i] = redis.call('LRANGE', ns .. ':order:' .. name .. ':trail', 0, -1) end
return {
  redis.call('HGETALL', ns .. ':positions'),
  redis.call('HGETALL', ns .. ':policies'),
  redis.call('HGETALL', ns .. ':dead_letters'),
  redis.call('HGETALL', ns .. ':rejected_steps'),
  orders, hashes('order', orders), lines, hashes('line', lines), buyers, hashes('buyer', buyers), trails,
  batches, hashes('batch', batches),
}
"""


@dataclass
class Snapshot:
    namespace: str
    positions: dict[str, int] = field(default_factory=dict)
    lines: Hashes = field(default_factory=dict)
    buyers: Hashes = field(default_factory=dict)
    batches: Hashes = field(default_factory=dict)
    orders: Hashes = field(default_factory=dict)
    trails: dict[str, list[str]] = field(default_factory=dict)
    counters: Hashes = field(default_factory=dict)
    """policies, dead_letters and rejected_steps."""
    ranked_batches: list[str] = field(default_factory=list)

    # The three queries services.replay.live reads a ledger through, so the hash is computed exactly as there.
    def ledger(self) -> list[dict[str, str]]:
        lines = list(self.lines.values())
        return sorted(lines, key=lambda line: (line["allocated_at"], line["buyer_id"], line["batch_id"]))

    def buyers_view(self) -> dict[str, dict[str, str]]:
        return dict(sorted(self.buyers.items()))

    def batches_view(self) -> dict[str, dict[str, str]]:
        return {name: self.batches.get(name, {}) for name in self.ranked_batches}

    @property
    def ledger_hash(self) -> str:
        return live_ledger(cast(ReadModelStore, _LedgerView(self))).ledger_hash

    @property
    def records(self) -> int:
        return sum(self.positions.values())


class _LedgerView:
    def __init__(self, snapshot: Snapshot) -> None:
        self.ledger = snapshot.ledger
        self.buyers = snapshot.buyers_view
        self.batches = snapshot.batches_view


def snapshot(client: Any, namespace: str) -> Snapshot:
    """The namespace's read models and positions at one instant (one script: nothing is written meanwhile)."""
    found = iter(client.eval(SNAPSHOT, 0, namespace))
    snap = Snapshot(namespace, positions={k: int(v) for k, v in _pairs(next(found)).items()})
    for counter in ("policies", "dead_letters", "rejected_steps"):
        snap.counters[counter] = _pairs(next(found))
    orders = next(found)
    snap.orders = _named(orders, next(found))
    snap.lines = _named(next(found), next(found))
    snap.buyers = _named(next(found), next(found))
    snap.trails = dict(zip(orders, next(found), strict=True))
    snap.ranked_batches = list(next(found))
    snap.batches = _named(snap.ranked_batches, next(found))
    return snap


def _named(names: list[str], hashes: list[list[str]]) -> Hashes:
    return {name: _pairs(fields) for name, fields in zip(names, hashes, strict=True)}


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


# --- comparison ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    what: str
    """e.g. `order 1f2e…` or `buyer bytedance`."""
    live: object
    rebuilt: object

    def __str__(self) -> str:
        return f"{self.what}: live {self.live!r}, rebuilt {self.rebuilt!r}"


@dataclass
class Parity:
    live: Snapshot
    rebuilt: Snapshot
    differences: list[Difference]

    @property
    def same_positions(self) -> bool:
        return _nonzero(self.live.positions) == _nonzero(self.rebuilt.positions)

    @property
    def ok(self) -> bool:
        return self.same_positions and not self.differences


def compare(live: Snapshot, rebuilt: Snapshot) -> Parity:
    differences: list[Difference] = []
    for kind, a, b in (
        ("ledger line", live.lines, rebuilt.lines),
        ("buyer", live.buyers, rebuilt.buyers),
        ("batch", live.batches, rebuilt.batches),
        ("order", live.orders, rebuilt.orders),
        ("counters", live.counters, rebuilt.counters),
    ):
        differences += _hashes(kind, a, b)
    if live.ranked_batches != rebuilt.ranked_batches:
        differences.append(Difference("batch order", live.ranked_batches, rebuilt.ranked_batches))
    for order in sorted(set(live.trails) | set(rebuilt.trails)):
        mine, theirs = Counter(live.trails.get(order, [])), Counter(rebuilt.trails.get(order, []))
        if mine != theirs:
            only_live = [_what(e) for e in (mine - theirs).elements()]
            only_rebuilt = [_what(e) for e in (theirs - mine).elements()]
            differences.append(Difference(f"order {order} trail", only_live, only_rebuilt))
    return Parity(live, rebuilt, differences)


def _hashes(kind: str, live: Hashes, rebuilt: Hashes) -> list[Difference]:
    found = []
    for name in sorted(set(live) | set(rebuilt)):
        a, b = live.get(name), rebuilt.get(name)
        if a is None or b is None:
            found.append(Difference(f"{kind} {name}", _presence(a), _presence(b)))
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                found.append(Difference(f"{kind} {name} {key}", a.get(key), b.get(key)))
    return found


def _presence(fields: dict[str, str] | None) -> str:
    return "missing" if fields is None else "present"


def _what(entry: str) -> str:
    try:
        item = json.loads(entry)
        return f"{item['type']} {item['what']}"
    except (ValueError, KeyError, TypeError):
        return entry


def _nonzero(positions: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in positions.items() if v}
