"""Reading an outcome topic for the CLI: where it ends before a command is sent, then everything in it, the
history first and then what arrives, until the time allowed is up (kafka-python, no group, committed only)."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator

from kafka import TopicPartition

from schemas.codec import ContractError, decode
from services.ops.kafka_clients import reader
from services.ops.outcomes import CaughtUp, Seen

POLL_S = 0.5


class MissingTopicError(RuntimeError):
    """The topic that carries a command's answer is not on the cluster."""


def ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The offset after the last record of each partition of `topic`, now."""
    with reader(bootstrap) as consumer:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise MissingTopicError(
                f"topic {topic} does not exist on the cluster at {bootstrap}: create the catalogue with "
                "`h200 topics create`, or give the h200 cluster with --bootstrap"
            )
        found = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
    return {tp.partition: offset for tp, offset in found.items()}


def follow(
    bootstrap: str, topic: str, keys: Collection[bytes], history: dict[int, int], seconds: float
) -> Iterator[Seen | CaughtUp]:
    """The events of `topic` under `keys`, oldest first: those below `history` (the ends before sending), then
    CaughtUp once, then new ones as they come. Ends after `seconds`, or when the caller stops reading."""
    deadline = time.monotonic() + seconds
    wanted = set(keys)
    with reader(bootstrap) as consumer:
        partitions = [TopicPartition(topic, p) for p in sorted(history)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        caught_up = False
        while True:
            if not caught_up and all(consumer.position(tp) >= history[tp.partition] for tp in partitions):
                caught_up = True
                yield CaughtUp()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for tp, batch in consumer.poll(timeout_ms=int(min(left, POLL_S) * 1000)).items():
                for record in batch:
                    if record.key not in wanted or record.value is None:
                        continue
                    try:
                        envelope = decode(record.value)
                    except ContractError:
                        continue  # not an answer to anything; the services dead-letter it
                    yield Seen(envelope, fresh=record.offset >= history[tp.partition])
