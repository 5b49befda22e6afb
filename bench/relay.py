"""The pipeline bench's peer: a bare aiokafka relay, as little as a hop between two topics can do.

One process relays `bench.relay.<a>` to `bench.relay.<a+1>` and `<b>` to `<b+1>` (two hops, as each service has
its router and its core): the bytes copied unchanged under the same key, `acks=all`, offsets auto-committed, no
decoding and no waiting per record. What the broker and the client allow, for the services to be measured against.

    python -m bench.relay BOOTSTRAP A B
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.common.kafka_auth import aiokafka_options

HOPS = 6
"""Submission to allocation: intake's router and core, approval's, allocation's."""


def relay_topic(hop: int) -> str:
    return f"bench.relay.{hop}"


async def hop(bootstrap: str, source: int, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        relay_topic(source),
        **aiokafka_options(),
        bootstrap_servers=bootstrap,
        group_id=f"bench-relay-{source}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    await producer.send(relay_topic(source + 1), value=record.value, key=record.key)
    finally:
        await consumer.stop()


async def main(bootstrap: str, hops: list[int]) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    producer = AIOKafkaProducer(**aiokafka_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        await asyncio.gather(*(hop(bootstrap, source, producer, stop) for source in hops))
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(n) for n in sys.argv[2:]]))
