"""kafka-python clients with the guarantees set on purpose, and errors that say what to do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from services.common.kafka_auth import kafka_python_options

BOOTSTRAP_TIMEOUT_MS = 10_000


class BrokerUnavailableError(RuntimeError):
    pass


def _unreachable(bootstrap: str) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"no Kafka broker answers at {bootstrap}, or it refused this client's login: start one with `make kafka-up`, "
        "or give a running cluster with --bootstrap or H200_BOOTSTRAP_SERVERS, and check the principal "
        "(H200_KAFKA_USERNAME) and its password (H200_KAFKA_PASSWORD or H200_KAFKA_SECRETS_DIR)"
    )


@contextmanager
def admin_client(bootstrap: str, timeout_s: float = 30.0) -> Iterator[KafkaAdminClient]:
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **kafka_python_options(),
        )
    except KafkaTimeoutError:
        raise _unreachable(bootstrap) from None
    try:
        yield admin
    finally:
        admin.close()


@contextmanager
def producer(bootstrap: str, **overrides: object) -> Iterator[KafkaProducer]:
    """An idempotent producer that waits for every in-sync replica: no acknowledged record is lost."""
    try:
        client = KafkaProducer(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **kafka_python_options(),
            **overrides,
        )
    except KafkaTimeoutError:
        raise _unreachable(bootstrap) from None
    try:
        yield client
    finally:
        client.flush()
        client.close()


@contextmanager
def reader(bootstrap: str, **overrides: object) -> Iterator[KafkaConsumer]:
    """A consumer without a group that sees committed transactions only: for tools and replays."""
    try:
        client = KafkaConsumer(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            **kafka_python_options(),
            **overrides,
        )
    except KafkaTimeoutError:
        raise _unreachable(bootstrap) from None
    try:
        yield client
    finally:
        client.close()
