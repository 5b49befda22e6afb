"""The consumers a rebuild reads with (services.common.inbox_replay) ask the broker not to hold a fetch at a
partition's end: a read stops at an offset it knows, the fetcher's next request waits there for fetch.max.wait,
and the next read on that consumer waits behind it (with aiokafka's 500 ms, a restart of 6 partitions took 7.8 s
to lag 0 in the recovery bench; 3.1 s with 10 ms)."""

from __future__ import annotations

import asyncio
import inspect

from aiokafka import AIOKafkaConsumer

from services.common import inbox_replay


def test_rebuild_consumers_hold_no_fetch_at_a_partition_s_end_for_long() -> None:
    async def settings() -> tuple[int, str]:
        consumer = inbox_replay._consumer("127.0.0.1:1")  # built, never started: no connection is made
        try:
            return consumer._fetch_max_wait_ms, consumer._isolation_level
        finally:
            await consumer.stop()

    wait_ms, isolation = asyncio.run(settings())
    default = inspect.signature(AIOKafkaConsumer).parameters["fetch_max_wait_ms"].default
    assert wait_ms == inbox_replay.FETCH_MAX_WAIT_MS <= 50 < default
    assert isolation == "read_committed"
