"""`h200 rebuild` on a real broker and Redis: the read models rebuilt from the log while events keep coming and the
live projector keeps running, parity with the live ones, an atomic switch the live projector follows, and a final
read model equal to a fresh projection of the whole log (and to the ledger replay folds from it)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from schemas import allocation, approval, fulfilment, intake, supply
from schemas.base import Message, PolicyRef
from schemas.codec import encode
from schemas.envelope import Envelope, derive_id, make_envelope, order_id_for
from schemas.routing import home_topic, record_key
from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import kafka_python_options
from services.common.settings import ClusterSettings
from services.ops.kafka_clients import admin_client, reader
from services.ops.topics import ensure_topics
from services.projector.app import Projector, ProjectorSettings
from services.projector.namespace import current_namespace, switch_namespace
from services.projector.parity import snapshot
from services.projector.rebuild import rebuild
from services.projector.store import NamespaceMovedError, Pending, ReadModelStore, current_store
from services.replay.eventlog import build_log
from services.replay.kafka_io import read_topics
from services.replay.ledger import fold_ledger
from services.replay.live import live_ledger

MAX_BYTES = 1_048_576
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


# --- a stream of facts, as the services would have written them ----------------------------------------------


def _envelope(payload: Message, at: datetime, cause: Envelope[Any] | None, tag: object) -> Envelope[Message]:
    if cause is None:
        return make_envelope(
            payload, key=record_key(payload), producer="test", occurred_at=at, message_id=derive_id(tag)
        )
    return make_envelope(payload, key=record_key(payload), producer="test", occurred_at=at, cause=cause)


def batch_story(run: str, batch_id: str) -> list[Envelope[Message]]:
    made = supply.BatchManufactured(batch_id=batch_id, pool_id="h200", quantity=5_000_000, site="Fab 18", ready_at=T0)
    return [_envelope(made, T0, None, (run, batch_id))]


def order_story(run: str, buyer: str, batch_id: str, n: int) -> list[Envelope[Message]]:
    """An order placed, approved, allocated, packed, shipped and delivered: each event caused by the one before."""
    at = T0 + timedelta(minutes=n)
    ref = f"{run}-{n}"
    order_id = order_id_for(buyer, ref)
    uses = [{"use": "ai_research", "share_pct": 100}]
    site = {"site_id": "BJ-1", "city": "Beijing"}
    placed = intake.OrderPlaced(
        buyer_id=buyer,
        buyer_name=buyer.title(),
        upstream_ref=ref,
        quantity=100 + n,
        unit_price_cents=2_500_000,
        declared_uses=uses,
        delivery_site=site,
        order_id=order_id,
        placed_at=at,
    )
    events = [_envelope(placed, at, None, (run, "placed", n))]
    refs = (PolicyRef(policy_id="us-licence/L-1", revision=1),)
    approved = approval.OrderApproved(
        order_id=order_id,
        buyer_id=buyer,
        pool_id="h200",
        policy_refs=refs,
        cause_event_id=events[-1].id,
        decided_at=at,
        requested_quantity=100 + n,
        approved_quantity=100 + n,
        licence_id="L-1",
        tranche_id="T1",
    )
    events.append(_envelope(approved, at, events[-1], ""))
    allocation_id = derive_id("allocation", run, n)
    line = {
        "allocation_id": allocation_id,
        "pool_id": "h200",
        "order_id": order_id,
        "buyer_id": buyer,
        "batch_id": batch_id,
        "quantity": 100 + n,
    }
    allocated = allocation.ChipsAllocated(
        **line, rule="first_approved_first_served", policy_ref=None, cause_event_id=events[-1].id, allocated_at=at
    )
    events.append(_envelope(allocated, at, events[-1], ""))
    for step in ("packed", "shipped", "delivered"):
        recorded = fulfilment.FulfilmentStepRecorded(**line, step=step, cause_event_id=events[-1].id, at=at)
        events.append(_envelope(recorded, at, events[-1], step))
    return events


def send(producer: KafkaProducer, events: list[Envelope[Message]]) -> None:
    for e in events:
        producer.send(home_topic(e.payload).name, key=e.key.encode(), value=encode(e))
    producer.flush()


# --- the system around the read models -----------------------------------------------------------------------


class LiveProjector:
    """The projector's own loop in a thread, as the process runs it."""

    def __init__(self, bootstrap: str, redis_url: str, base: str, **settings: Any) -> None:
        cluster = ClusterSettings(bootstrap_servers=bootstrap, redis_url=redis_url)
        self.projector = Projector(cluster, ProjectorSettings(namespace=base, poll_ms=100, **settings))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.projector.run()
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.projector.stop()
        self.thread.join(30)
        assert self.error is None, self.error


def wait_caught_up(client: Any, base: str, bootstrap: str, timeout_s: float = 60) -> str:
    """Until the namespace the alias names has applied every event topic to its end; returns that namespace."""
    with reader(bootstrap) as consumer:
        parts = [TopicPartition(t, p) for t in EVENT_TOPICS for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = {(tp.topic, tp.partition): end for tp, end in consumer.end_offsets(parts).items()}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        store = current_store(client, base)
        positions = store.positions()
        if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
            return store.ns
        time.sleep(0.1)  # polling the projector's recorded positions
    raise AssertionError(f"the projector of {base} did not reach the log ends {ends} in {timeout_s} s")


class Publisher:
    """Keeps publishing order stories until stopped."""

    def __init__(self, bootstrap: str, run: str, buyers: list[str], batch_id: str, first: int) -> None:
        self.producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        self.run, self.buyers, self.batch_id, self.sent = run, buyers, batch_id, first
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            send(
                self.producer,
                order_story(self.run, self.buyers[self.sent % len(self.buyers)], self.batch_id, self.sent),
            )
            self.sent += 1
            time.sleep(0.01)

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(30)
        self.producer.close()
        return self.sent


class Watcher:
    """A reader that keeps resolving the alias and reading the ledger: it must never find no read model."""

    def __init__(self, redis_url: str, base: str) -> None:
        self.client, self.base = redis.Redis.from_url(redis_url, decode_responses=True), base
        self.reads: list[tuple[str, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            store = current_store(self.client, self.base)
            self.reads.append((store.ns, len(store.ledger())))
            time.sleep(0.005)

    def stop(self) -> list[tuple[str, int]]:
        self.stopping.set()
        self.thread.join(10)
        self.client.close()
        return self.reads


@pytest.fixture
def cluster(module_kafka_bootstrap: str, redis_url: str) -> Iterator[tuple[str, Any]]:
    with admin_client(module_kafka_bootstrap) as admin:
        assert not ensure_topics(admin).problems
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield module_kafka_bootstrap, client
    finally:
        client.close()


def keys_of(client: Any, namespace: str) -> list[str]:
    return [
        k for k in client.scan_iter(match=f"{namespace}:*", count=1000) if not k.endswith(("current", "generation"))
    ]


# --- the tests -----------------------------------------------------------------------------------------------


def test_rebuild_while_the_system_runs_switches_without_a_gap_and_matches_a_fresh_projection(
    cluster: tuple[str, Any], redis_url: str
) -> None:
    bootstrap, client = cluster
    run, base = uuid.uuid4().hex[:8], f"rb-{uuid.uuid4().hex[:8]}"
    buyers, batch_id = [f"buyer-{run}-{i}" for i in range(5)], f"B-{run}"
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    send(producer, batch_story(run, batch_id))
    for n in range(150):
        send(producer, order_story(run, buyers[n % len(buyers)], batch_id, n))
    producer.close()

    live = LiveProjector(bootstrap, redis_url, base)
    try:
        assert wait_caught_up(client, base, bootstrap) == base
        lines_before = len(current_store(client, base).ledger())
        assert lines_before >= 150

        publisher, watcher = Publisher(bootstrap, run, buyers, batch_id, first=150), Watcher(redis_url, base)
        report: list[str] = []
        try:
            with reader(bootstrap) as consumer:
                result = rebuild(consumer, client, base, MAX_BYTES, out=report.append, grace_s=1.0)
            published_during = publisher.sent - 150
            time.sleep(0.3)  # more stories after the switch, for the live projector to apply in the new namespace
        finally:
            sent = publisher.stop()
            reads = watcher.stop()
        text = "\n".join(report)
        print(f"\n{text}\npublished during the rebuild: {published_during} stories; reads: {len(reads)}")
        assert result.parity.ok, text
        assert result.switched and result.old == base and result.new == f"{base}@1", text
        assert published_during > 0, "events must keep coming while the rebuild runs"
        assert current_namespace(client, base) == result.new
        assert keys_of(client, base) == [], "the old namespace's keys are deleted (only the alias keys stay)"
        assert reads and all(lines >= lines_before for _, lines in reads), "a reader never finds no read model"
        assert {ns for ns, _ in reads} <= {base, result.new}

        assert wait_caught_up(client, base, bootstrap) == result.new
        assert live.projector.store.ns == result.new, "the live projector follows the alias"
        final = current_store(client, base)
        # Every order of this run allocated once, counted once: nothing skipped, nothing applied twice.
        assert len([line for line in final.ledger() if line["buyer_id"] in buyers]) == sent
        assert sum(int(final.buyers()[buyer]["orders"]) for buyer in buyers) == sent

        with reader(bootstrap) as consumer:  # a fresh projection of the whole log, compared, then dropped
            fresh = rebuild(consumer, client, base, MAX_BYTES, switch=False, out=report.append)
        assert fresh.parity.ok and not fresh.switched, "\n".join(report)
        assert current_namespace(client, base) == result.new
        assert keys_of(client, fresh.new) == []

        replayed = fold_ledger(build_log(read_topics(bootstrap, EVENT_TOPICS), EVENT_TOPICS).events)
        assert live_ledger(final).ledger_hash == replayed.ledger_hash == snapshot(client, result.new).ledger_hash
    finally:
        live.stop()


def test_a_projector_fenced_on_the_old_namespace_cannot_write_after_the_switch(cluster: tuple[str, Any]) -> None:
    _, client = cluster
    base = f"rb-{uuid.uuid4().hex[:8]}"
    stale = ReadModelStore(client, base, fence=base)

    def stray(offset: int) -> Pending:
        return Pending("h200.supply", 0, offset, str(uuid.uuid4()), [["HINCRBY", f"{base}:stray", "n", "1"]])

    assert stale.apply([stray(0)]) == 1
    assert switch_namespace(client, base, base, f"{base}@1") is None
    with pytest.raises(NamespaceMovedError) as moved:
        stale.apply([stray(1), stray(2)])
    assert moved.value.applied == 0
    assert client.hget(f"{base}:stray", "n") == "1"
    assert switch_namespace(client, base, base, f"{base}@2") == f"{base}@1", "a stale switch changes nothing"
    assert current_namespace(client, base) == f"{base}@1"


def test_the_projector_reports_its_positions_to_its_group_so_kafkas_tools_show_its_lag(
    cluster: tuple[str, Any], redis_url: str
) -> None:
    bootstrap, client = cluster
    run, base = uuid.uuid4().hex[:8], f"rb-{uuid.uuid4().hex[:8]}"
    batch_id = f"B-{run}"
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    send(producer, batch_story(run, batch_id))
    for n in range(20):
        send(producer, order_story(run, f"buyer-{run}", batch_id, n))
    producer.close()

    live = LiveProjector(bootstrap, redis_url, base)
    try:
        wait_caught_up(client, base, bootstrap)
        held = current_store(client, base).positions()
        deadline, reported = time.monotonic() + 30, {}
        with admin_client(bootstrap) as admin:
            while time.monotonic() < deadline:
                try:
                    found = admin.list_group_offsets("h200-projector").get("h200-projector", {})
                except KafkaError:  # the group's coordinator still loading (its first use on this broker)
                    time.sleep(0.5)
                    continue
                reported = {(tp.topic, tp.partition): meta.offset for tp, meta in found.items()}
                if all(reported.get(where) == offset for where, offset in held.items() if offset):
                    break
                time.sleep(0.5)  # the projector reports with its lag measure, every few seconds
    finally:
        live.stop()
    assert {where: offset for where, offset in held.items() if offset} == {
        where: offset for where, offset in reported.items() if held.get(where)
    }
