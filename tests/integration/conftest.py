"""Fixtures for the integration tier: a Kafka admin client and a factory for uniquely named topics.

The broker and Redis fixtures (``kafka_bootstrap``, ``redis_url``, ``redis_client``) live in tests/conftest.py.
Every test in this directory is marked ``integration`` automatically (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient

from services.common.kafka_auth import kafka_python_options


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(
        **kafka_python_options(),
        bootstrap_servers=kafka_bootstrap,
        client_id="h200-test-admin",
        request_timeout_ms=30000,
    )
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def make_topic(kafka_admin: KafkaAdminClient) -> Iterator[Callable[..., str]]:
    """``make_topic(prefix="t", partitions=1, configs=None) -> name``: creates a topic with a random name
    (auto topic creation is off on the broker), waits until every partition has a leader, deletes it after."""
    created: list[str] = []

    def _make(prefix: str = "t", partitions: int = 1, configs: dict[str, Any] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        kafka_admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": dict(configs or {})}},
            wait_for_metadata=True,
        )
        created.append(name)
        return name

    yield _make
    if created:
        with contextlib.suppress(Exception):
            kafka_admin.delete_topics(created, raise_errors=False)
