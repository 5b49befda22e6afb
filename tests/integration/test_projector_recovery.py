"""The live projector keeps its read models whole by itself, on a real broker and a Redis of its own: after a
FLUSHALL it rebuilds them from the log (and `h200 rebuild` works meanwhile), and while Redis is away it waits and
then catches up. Each time the read model ends equal to the ledger folded from the log."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kafka import KafkaProducer
from session_logins import redis_login_url, secret_of
from test_rebuild import MAX_BYTES, LiveProjector, Publisher, batch_story, order_story, send, wait_caught_up

from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import admin_client, reader
from services.ops.topics import ensure_topics
from services.projector.rebuild import rebuild
from services.projector.store import current_store
from services.replay.eventlog import build_log
from services.replay.kafka_io import read_topics
from services.replay.ledger import fold_ledger
from services.replay.live import live_ledger

REDIS_IMAGE = os.environ.get("H200_REDIS_IMAGE") or "h200/redis:7"


@pytest.fixture(scope="module")
def own_redis() -> Iterator[tuple[str, Any]]:
    """A Redis container for this module alone (it is flushed and paused): (url, container)."""
    import socket

    from testcontainers.core.container import DockerContainer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    container = DockerContainer(REDIS_IMAGE).with_name(f"h200-test-redis-{uuid.uuid4().hex[:8]}")
    container.ports["6379/tcp"] = ("127.0.0.1", port)  # loopback only, as tests/conftest.py publishes
    for user in ("ADMIN", "PROJECTOR", "READER"):
        container.with_env(f"REDIS_{user}_PASSWORD", secret_of(user.lower(), "H200_REDIS_SECRETS_DIR"))
    container.start()
    url = redis_login_url(port, "admin")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with redis.Redis.from_url(url, socket_timeout=2) as probe:
                    probe.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the container is starting
        yield url, container
    finally:
        container.stop(force=True, delete_volume=True)


@pytest.fixture
def system(module_kafka_bootstrap: str, own_redis: tuple[str, Any]) -> Iterator[tuple[str, str, Any]]:
    with admin_client(module_kafka_bootstrap) as admin:
        assert not ensure_topics(admin).problems
    url = own_redis[0]
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        yield module_kafka_bootstrap, url, client
    finally:
        client.close()


def stories(bootstrap: str, run: str, buyers: list[str], batch_id: str, numbers: range) -> None:
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    if numbers.start == 0:
        send(producer, batch_story(run, batch_id))
    for n in numbers:
        send(producer, order_story(run, buyers[n % len(buyers)], batch_id, n))
    producer.close()


def assert_read_model_is_the_log(client: Any, base: str, bootstrap: str, buyers: list[str], orders: int) -> None:
    store = current_store(client, base)
    assert len([line for line in store.ledger() if line["buyer_id"] in buyers]) == orders
    assert sum(int(store.buyers()[buyer]["orders"]) for buyer in buyers) == orders
    replayed = fold_ledger(build_log(read_topics(bootstrap, EVENT_TOPICS), EVENT_TOPICS).events)
    assert live_ledger(store).ledger_hash == replayed.ledger_hash


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "h200.projector" and text in r.getMessage()]


def test_after_a_flushall_the_projector_rebuilds_the_read_models_from_the_log_by_itself(
    system: tuple[str, str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="h200.projector")
    bootstrap, url, client = system
    run, base = uuid.uuid4().hex[:8], f"rc-{uuid.uuid4().hex[:8]}"
    buyers, batch_id = [f"buyer-{run}-{i}" for i in range(4)], f"B-{run}"
    stories(bootstrap, run, buyers, batch_id, range(60))
    live = LiveProjector(bootstrap, url, base)
    try:
        wait_caught_up(client, base, bootstrap)
        client.flushall()
        stories(bootstrap, run, buyers, batch_id, range(60, 90))
        assert wait_caught_up(client, base, bootstrap) == base
        assert_read_model_is_the_log(client, base, bootstrap, buyers, 90)
        assert len(messages(caplog, "were lost")) == 1, caplog.text
        assert len(messages(caplog, "rebuilt the read models of namespace")) == 1, caplog.text

        client.flushall()  # and `h200 rebuild` run at once, while the live projector rebuilds itself
        report: list[str] = []
        with reader(bootstrap) as consumer:
            result = rebuild(consumer, client, base, MAX_BYTES, out=report.append, grace_s=0.5)
        assert result.parity.ok and result.switched, "\n".join(report)
        stories(bootstrap, run, buyers, batch_id, range(90, 100))
        assert wait_caught_up(client, base, bootstrap) == result.new
        assert_read_model_is_the_log(client, base, bootstrap, buyers, 100)
    finally:
        live.stop()


def test_while_redis_is_away_the_projector_waits_and_then_catches_up_with_the_same_ledger(
    system: tuple[str, str, Any], own_redis: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="h200.projector")
    bootstrap, url, client = system
    container = own_redis[1].get_wrapped_container()
    run, base = uuid.uuid4().hex[:8], f"rc-{uuid.uuid4().hex[:8]}"
    buyers, batch_id = [f"buyer-{run}-{i}" for i in range(4)], f"B-{run}"
    stories(bootstrap, run, buyers, batch_id, range(40))
    live = LiveProjector(bootstrap, url, base, redis_timeout_s=1.0)
    try:
        wait_caught_up(client, base, bootstrap)
        publisher = Publisher(bootstrap, run, buyers, batch_id, first=40)
        container.pause()  # Redis accepts connections and answers nothing, as a hung or partitioned server
        try:
            time.sleep(6)  # the outage lasts while events keep coming
        finally:
            container.unpause()
        sent = publisher.stop()
        assert sent > 40, "events must keep coming while Redis is away"
        assert live.thread.is_alive() and live.error is None, live.error
        wait_caught_up(client, base, bootstrap)
        assert_read_model_is_the_log(client, base, bootstrap, buyers, sent)
        assert len(messages(caplog, "failed:")) == 1, caplog.text
        assert len(messages(caplog, "succeeded after")) == 1, caplog.text
        assert not messages(caplog, "were lost"), caplog.text
    finally:
        live.stop()
