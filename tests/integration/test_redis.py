"""Redis container round trips: plain set/get, MULTI/EXEC and a Lua script."""

from __future__ import annotations

from typing import Any

# Applies an event once: stores the value and the applied position together, skips positions already applied.
APPLY_ONCE = """
local applied = tonumber(redis.call('GET', KEYS[2]) or '-1')
local position = tonumber(ARGV[2])
if position <= applied then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


def test_redis_round_trip(redis_client: Any, redis_key_prefix: str) -> None:
    p = redis_key_prefix
    assert redis_client.set(f"{p}plain", b"hello")
    assert redis_client.get(f"{p}plain") == b"hello"

    with redis_client.pipeline(transaction=True) as pipe:  # MULTI ... EXEC
        pipe.hset(f"{p}order:1", mapping={"side": "buy", "qty": "10"})
        pipe.incrby(f"{p}counter", 5)
        pipe.rpush(f"{p}log", "a", "b")
        results = pipe.execute()
    assert results == [2, 5, 2]
    assert redis_client.hgetall(f"{p}order:1") == {b"side": b"buy", b"qty": b"10"}
    assert redis_client.get(f"{p}counter") == b"5"
    assert redis_client.lrange(f"{p}log", 0, -1) == [b"a", b"b"]

    apply_once = redis_client.register_script(APPLY_ONCE)
    keys = [f"{p}book:X", f"{p}book:X:position"]
    assert apply_once(keys=keys, args=["v1", 1]) == 1
    assert apply_once(keys=keys, args=["stale", 1]) == 0  # same position again: skipped
    assert apply_once(keys=keys, args=["older", 0]) == 0
    assert apply_once(keys=keys, args=["v2", 2]) == 1
    assert redis_client.hget(keys[0], "value") == b"v2"
    assert redis_client.get(keys[1]) == b"2"
