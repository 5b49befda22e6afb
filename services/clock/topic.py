"""Reading and writing h200.clock with kafka-python: the last tick written, and a tick acknowledged by every
in-sync replica of an idempotent producer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.clock import ClockTicked
from schemas.codec import ContractError, decode, encode
from schemas.envelope import Envelope
from services.clock.ticks import last_tick
from services.common.kafka_auth import kafka_python_options

TOPIC = "h200.clock"
TAIL = 100
"""Records read back from the end for the last tick; the whole topic only if none of them is one of ours."""


def new_producer(bootstrap: str, timeout_s: float) -> KafkaProducer:
    timeout_ms = int(timeout_s * 1000)
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        max_block_ms=timeout_ms,
        request_timeout_ms=min(timeout_ms, 30_000),
        bootstrap_timeout_ms=timeout_ms,
        **kafka_python_options(),
    )


def write_tick(producer: KafkaProducer, tick: Envelope[ClockTicked], timeout_s: float) -> None:
    """Send the tick and wait for its acknowledgement (raises the client's error otherwise)."""
    producer.send(TOPIC, key=tick.key.encode(), value=encode(tick)).get(timeout=timeout_s)


def read_last_tick(bootstrap: str, clock_id: str, timeout_s: float = 30.0) -> datetime | None:
    """The `at` of the last tick of `clock_id` on h200.clock, None if it has none."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        **kafka_python_options(),
    )
    try:
        partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or {0})]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        found = _read(consumer, {tp: max(0, end - TAIL) for tp, end in ends.items()}, ends, clock_id, timeout_s)
        if found is None and any(end > TAIL for end in ends.values()):
            found = _read(consumer, dict.fromkeys(ends, 0), ends, clock_id, timeout_s)
        return found
    finally:
        consumer.close()


def _read(
    consumer: KafkaConsumer, starts: dict[Any, int], ends: dict[Any, int], clock_id: str, timeout_s: float
) -> datetime | None:
    envelopes = []
    for tp, start in starts.items():
        consumer.seek(tp, start)
    pending = {tp for tp in starts if starts[tp] < ends[tp]}
    while pending:
        batches = consumer.poll(timeout_ms=int(timeout_s * 1000))
        if not batches:
            raise TimeoutError(f"{TOPIC} gave nothing to read in {timeout_s:.0f} s")
        for records in batches.values():
            for record in records:
                try:
                    envelopes.append(decode(record.value or b""))
                except ContractError:
                    continue  # not a tick; `h200 verify` names it
        pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    return last_tick(envelopes, clock_id)
