"""Poison records (JSON nested 2,000 levels deep, a 5,000-digit integer, `true` for a quantity, a duplicate "type"
key, a 1,010,000-byte record) sent into every input topic while good traffic flows: the good traffic is decided
as if they were not there, each is dead-lettered exactly once by each service that reads it, with its code (the
record too large to dead-letter whole as its head, with the original length and SHA-256), and every service
still stops on SIGTERM within seconds."""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checks import decisions_by_order
from harness import StartSystem, System

from schemas import builders as s
from schemas.allocation import ChipsAllocated
from schemas.base import Message
from schemas.codec import encode
from schemas.intake import OrderPlaced
from services.common.dead_letters import VALUE_HEAD
from services.ops.publish import envelope_for
from services.ops.topics import ensure_topics
from services.projector.app import DEAD_LETTER_TOPICS

BUYERS = ("bytedance", "alibaba", "tencent")
ORDERS_PER_BUYER = 10
HUGE = 1_010_000
STOP_WITHIN_S = 10.0

READERS = {  # who reads each input topic (schemas.topics.inputs_of), the projector included
    "h200.intake.commands": ("intake",),
    "h200.policy": ("intake", "approval", "allocation", "projector"),  # intake: the submission window
    "h200.supply": ("allocation", "projector"),
    "h200.fulfilment.commands": ("fulfilment",),
}


@dataclass(frozen=True)
class Poison:
    topic: str
    key: bytes
    value: bytes
    code: str
    partition: int = -1
    offset: int = -1

    @property
    def source(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


def as_written(payload: Message) -> bytes:
    return encode(envelope_for(payload, "upstream"))


def poisons(topic: str, key: bytes, payload: Message, number_field: bytes) -> list[Poison]:
    """The five kinds, built from a valid record of the topic as encode writes it."""
    valid = as_written(payload)
    field = re.compile(b'"' + number_field + b'":("[^"]*"|[0-9]+)')
    assert field.search(valid), (number_field, valid)
    return [
        Poison(topic, key, b'{"a":' * 2_000 + b"1" + b"}" * 2_000, "too_deep"),
        Poison(topic, key, field.sub(b'"' + number_field + b'":' + b"7" * 5_000, valid, 1), "number_too_long"),
        Poison(topic, key, field.sub(b'"' + number_field + b'":true', valid, 1), "invalid_payload"),
        Poison(topic, key, valid.replace(b'"version":', b'"type":"CancelOrder","version":', 1), "duplicate_key"),
        Poison(topic, key, b"x" * HUGE, "malformed_json"),
    ]


def all_poisons() -> list[Poison]:
    allocation = "00000000-0000-0000-0000-0000000000aa"
    return [
        *poisons("h200.intake.commands", b"bytedance", s.submit("bytedance", "BD-POISON", 100), b"quantity"),
        *poisons("h200.policy", b"cn-quota/T1/alibaba", s.quota("alibaba", 5_000, revision=7), b"quantity"),
        *poisons("h200.supply", b"h200", s.batch("TSMC-POISON", 1_000), b"quantity"),
        *poisons("h200.fulfilment.commands", allocation.encode(), s.step(allocation, "packed", minute=5), b"at"),
    ]


def good_orders() -> list[Message]:
    return [
        s.submit(buyer, f"{buyer[:2].upper()}-{n}", 100, minute=10 + n)
        for n in range(ORDERS_PER_BUYER)
        for buyer in BUYERS
    ]


class Publisher(threading.Thread):
    """Publishes in the background; `run_` gives what it placed."""

    def __init__(self, name: str, run_: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.run_ = run_
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.run_()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> Any:
        self.join(120)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def send_poisons(system: System, records: list[Poison]) -> list[Poison]:
    # A producer allowing more than ours, as a user's misconfigured one: the broker takes the 1,010,000 bytes.
    producer = system.raw_producer()
    try:
        placed = []
        for record in records:
            meta = producer.send(record.topic, key=record.key, value=record.value).get(timeout=60)
            placed.append(Poison(**{**record.__dict__, "partition": meta.partition, "offset": meta.offset}))
            time.sleep(0.02)  # spread among the good records
        return placed
    finally:
        producer.close()


def send_orders(system: System, orders: list[Message]) -> None:
    for start in range(0, len(orders), 5):
        system.publish(orders[start : start + 5], "upstream")


def source_of(headers: dict[str, str]) -> tuple[str, int, int]:
    return (headers["dlq.source_topic"], int(headers["dlq.source_partition"]), int(headers["dlq.source_offset"]))


def dead_letters(system: System, service: str) -> list[tuple[dict[str, str], Any]]:
    return [({k: v.decode() for k, v in r.headers}, r) for r in system.records(f"h200.dlq.{service}")]


def test_poison_in_every_input_topic_stops_nothing_and_is_dead_lettered_once(start_system: StartSystem) -> None:
    system = start_system()
    system.publish(
        [s.use_rules(), *(m for buyer in BUYERS for m in s.cleared_buyer(buyer, 10_000)), s.allocation_rule()]
    )

    # When good orders, a batch and poison records arrive at once, nothing settled in between
    publishers = [
        Publisher("poison", lambda: send_poisons(system, all_poisons())),
        Publisher("orders", lambda: send_orders(system, good_orders())),
        Publisher("supply", lambda: system.publish([s.batch("TSMC-B01", 5_000, minute=30)])),
    ]
    for publisher in publishers:
        publisher.start()
    sent: list[Poison] = publishers[0].outcome()
    for publisher in publishers[1:]:
        publisher.outcome()
    system.settle(timeout_s=240)
    system.wait_for_projector(DEAD_LETTER_TOPICS)

    # Then the good traffic went through as if the poison were not there
    log = system.log()
    placed = {(e.payload.buyer_id, e.payload.upstream_ref) for e in log.of(OrderPlaced)}  # type: ignore[attr-defined]
    wanted = {(o.buyer_id, o.upstream_ref) for o in good_orders()}  # type: ignore[attr-defined]
    assert placed == wanted
    decisions = decisions_by_order(log)
    assert {decisions[str(s.order_id(*order))][-1].type for order in wanted} == {"OrderApproved"}
    assert sum(e.payload.quantity for e in log.of(ChipsAllocated)) == 100 * len(wanted)  # type: ignore[attr-defined]
    assert log.undecodable == sum(1 for p in sent if p.topic in ("h200.policy", "h200.supply"))

    # And each poison record is dead-lettered exactly once by each service that reads it, with its code
    for service in ("intake", "approval", "allocation", "fulfilment", "projector"):
        letters = dead_letters(system, service)
        expected = [p for p in sent if service in READERS[p.topic]]
        by_source = Counter(source_of(h) for h, _ in letters)
        assert by_source == Counter(p.source for p in expected), service
        found = {source_of(h): (h, r) for h, r in letters}
        for poison in expected:
            headers, record = found[poison.source]
            assert headers["dlq.error_code"] == poison.code, (service, poison.topic, poison.code, headers["dlq.error"])
            assert headers["dlq.original_length"] == str(len(poison.value))
            assert headers["dlq.original_sha256"] == hashlib.sha256(poison.value).hexdigest()
            if headers["dlq.truncated"] == "true":
                assert record.value == poison.value[:VALUE_HEAD]
            else:
                assert record.value == poison.value
            if len(poison.value) == HUGE and service != "projector":
                assert headers["dlq.truncated"] == "true", service  # 1,010,000 bytes and headers exceed 1,000,000
    assert system.store.dead_letters() == dict(
        Counter(f"{service}:{p.code}" for p in sent for service in READERS[p.topic])
    )

    # And every service still stops on SIGTERM within seconds
    stopped = stop_each(system)
    assert stopped == {name: 0 for name in stopped}, stopped


def stop_each(system: System) -> dict[str, int | None]:
    """SIGTERM to every process; the exit code of each, or None if it was still running after STOP_WITHIN_S."""
    processes = [p for p in system.supervisor.processes.values() if p.alive]
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WITHIN_S
    codes: dict[str, int | None] = {}
    for process in processes:
        assert process.popen is not None
        try:
            codes[process.name] = process.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[process.name] = None
    return codes


def test_a_worker_that_cannot_publish_stops_on_sigterm_and_dead_letters_the_record_after_a_restart(
    start_system: StartSystem,
) -> None:
    # Given intake's dead-letter topic is gone, so that every attempt to send to it fails (and passes the time)
    system = start_system(env={"H200_INTAKE_SEND_TIMEOUT_S": "2"})
    system.admin.delete_topics(["h200.dlq.intake"])
    system.wait_until("h200.dlq.intake deleted", lambda: "h200.dlq.intake" not in system.admin.list_topics())
    intake = system.process("intake-1")
    (poison,) = send_poisons(system, [Poison("h200.intake.commands", b"bytedance", b"{oops", "malformed_json")])
    system.wait_until(
        "intake retrying its dead letter",
        lambda: "publishing to h200.dlq.intake failed" in intake.log_path.read_text(errors="replace"),
    )

    # When it is asked to stop, it stops at once, without committing the record it could not finish
    started = time.monotonic()
    intake.signal(signal.SIGTERM)
    assert intake.popen is not None
    assert intake.popen.wait(STOP_WITHIN_S) == 75
    assert time.monotonic() - started < STOP_WITHIN_S

    # Then, the topic back and intake restarted, the record is dead-lettered, once
    assert not ensure_topics(system.admin).problems
    system.restart("intake-1")

    def dead_lettered() -> list[dict[str, str]]:
        return [h for h, _ in dead_letters(system, "intake") if source_of(h) == poison.source]

    system.wait_until("the record dead-lettered after the restart", lambda: bool(dead_lettered()), timeout_s=90)
    # Intake sends a dead letter before it commits the record: once it has committed every input (settled),
    # any second copy would already be on the topic.
    system.settle()
    (letter,) = dead_lettered()
    assert letter["dlq.error_code"] == "malformed_json"
