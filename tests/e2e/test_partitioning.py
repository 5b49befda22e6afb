"""The outcome of a submission never depends on the client that sent it: whatever key and partition an upstream
system's Kafka client chose, one (buyer, upstream reference) is one order, and a cancellation sent by another
client finds it.

Clients disagree on partitions: librdkafka (kcat, confluent-kafka, Go, .NET) hashes keys with CRC32 by default,
Java and kafka-python with murmur2, and a key in another case or no key lands elsewhere again. Intake decides
on its own inbox, re-keyed by buyer, so all of them meet in one partition.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from harness import StartSystem, System
from kafka.partitioner.default import murmur2

from schemas import builders as s
from schemas.base import Message
from schemas.codec import ContractError, decode, encode
from schemas.envelope import make_envelope
from schemas.intake import CancelOrder, CommandRejected, OrderCancelled, OrderPlaced, OrderSubmissionRejected
from schemas.topics import BY_NAME
from services.ops import audit

COMMANDS = "h200.intake.commands"
PARTITIONS = BY_NAME[COMMANDS].partitions
BUYER, REF = "bytedance", "BD-PART-1"


@dataclass(frozen=True)
class Sent:
    """One client's record: its key as that client sets it and the partition its partitioner chose."""

    client: str
    key: bytes | None
    partition: int


def librdkafka_partition(key: bytes) -> int:
    """librdkafka's default for keyed records ('consistent_random'): CRC32 of the key."""
    return zlib.crc32(key) % PARTITIONS


def java_partition(key: bytes) -> int:
    """The Java client's and kafka-python's default: murmur2 of the key, sign bit cleared."""
    return int(murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def clients() -> tuple[list[Sent], int]:
    """The same submission as five clients write it, each to its own partition, and a spare partition."""
    key, upper = BUYER.encode(), BUYER.upper().encode()
    chosen = list(dict.fromkeys([java_partition(key), librdkafka_partition(key), librdkafka_partition(upper)]))
    spare = [p for p in range(PARTITIONS) if p not in chosen]
    sent = [
        Sent("kafka-python", key, java_partition(key)),
        Sent("confluent-kafka", key, librdkafka_partition(key)),
        Sent("kcat, key upper case", upper, librdkafka_partition(upper)),
        Sent("no key", None, spare.pop(0)),
        Sent("explicit partition", key, spare.pop(0)),
    ]
    partitions = {record.partition for record in sent}
    assert len(partitions) >= 4 and spare, f"the submissions should spread over partitions: {sent}"
    return sent, spare[0]


def record(payload: Message, key: bytes | None, at: datetime) -> bytes:
    """An envelope as another upstream client makes it: its own message id, its own idea of the key."""
    envelope = make_envelope(
        payload, key=(key or BUYER.encode()).decode(), producer="upstream", occurred_at=at, message_id=uuid4()
    )
    return encode(envelope)


def send_concurrently(system: System, records: list[tuple[Sent, bytes]]) -> None:
    """One producer per client, all released at once: the submissions race each other to intake."""
    start, errors = threading.Barrier(len(records)), []

    def send(sent: Sent, value: bytes) -> None:
        client = system.raw_producer()
        try:
            start.wait(timeout=30)
            client.send(COMMANDS, key=sent.key, value=value, partition=sent.partition).get(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=item) for item in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def of_order(system: System, *types: type[Message]) -> list[Any]:
    """Every record of h200.orders about the order, duplicates included: a second placement is a second record."""
    order_id, found = s.order_id(BUYER, REF), []
    for raw in system.records("h200.orders"):
        try:
            envelope = decode(raw.value)
        except ContractError:
            continue
        p: Any = envelope.payload
        # Each type names the order its own way: by order id, by (buyer, upstream ref), or both
        ours = p.buyer_id == BUYER and getattr(p, "upstream_ref", REF) == REF
        if isinstance(p, types) and ours and getattr(p, "order_id", order_id) == order_id:
            found.append(envelope)
    return found


def test_one_submission_from_any_client_is_one_order_and_any_client_can_cancel_it(start_system: StartSystem) -> None:
    system = start_system()
    system.publish([s.use_rules(), *s.cleared_buyer(BUYER, 1_000)])
    system.settle()

    # When five clients send the same submission at once, each to another partition of h200.intake.commands
    order = s.submit(BUYER, REF, 300, minute=5)
    sent, spare = clients()
    send_concurrently(system, [(client, record(order, client.key, s.at(5))) for client in sent])
    system.settle()

    # Then it is placed exactly once, and no resend is refused
    assert len(of_order(system, OrderPlaced)) == 1, [c.client for c in sent]
    assert of_order(system, OrderSubmissionRejected) == []

    # When yet another client cancels it through a partition none of them used
    cancel = CancelOrder(buyer_id=BUYER, upstream_ref=REF, reason="the buyer withdrew", requested_at=s.at(10))
    send_concurrently(system, [(Sent("another client", b"ByteDance", spare), record(cancel, b"ByteDance", s.at(10)))])
    system.settle()

    # Then the order is cancelled; nothing was refused as an unknown order
    assert len(of_order(system, OrderCancelled)) == 1
    refused = [r.code for e in of_order(system, CommandRejected) for r in e.payload.reasons]
    assert refused == []
    assert audit.check_invariants(system.log()) == []
