"""What the API needs from the outside: a producer to h200.intake.commands, the read models in Redis, and the
dead-letter topics (read to their end at each request, re-driven through services.ops' own functions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import redis
from aiokafka import AIOKafkaProducer

from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import Envelope
from schemas.routing import home_topic
from services.common.kafka_auth import aiokafka_options
from services.ops.dead_letter_commands import letters, send_record, sent_before
from services.ops.redrive import Letter, Resend
from services.projector.store import ReadModelStore, current_store

if TYPE_CHECKING:
    from services.api.reads import ReadModel

COUNTERS = frozenset({"quantity", "approved_quantity", "allocated", "shipped", "delivered", "released", "requested"})


def typed(fields: dict[str, str]) -> dict[str, Any]:
    """A read-model hash with its quantities as numbers (Redis keeps strings)."""
    return {k: int(v) if k in COUNTERS and v.lstrip("-").isdigit() else v for k, v in fields.items()}


class Gateway(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, envelope: Envelope[Message]) -> None: ...
    def order(self, order_id: str) -> dict[str, Any] | None: ...
    def buyer_orders(self, buyer_id: str) -> list[dict[str, Any]]: ...
    def ready(self) -> tuple[bool, str]: ...
    def read_model(self) -> ReadModel: ...
    def dead_letters(self, services: Iterable[str]) -> list[Letter]: ...
    def sent_before(self, record: Resend) -> str | None: ...
    def send(self, record: Resend) -> tuple[int, int]: ...


class KafkaRedisGateway:
    """The real one: an idempotent producer (acks=all) and the projector's current namespace in Redis."""

    def __init__(self, bootstrap: str, redis_url: str, namespace: str = "h200") -> None:
        self._bootstrap = bootstrap
        self._redis = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
        self._namespace = namespace
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            client_id="h200-api",
            **aiokafka_options(),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._redis.close()

    async def publish(self, envelope: Envelope[Message]) -> None:
        if self._producer is None:
            raise RuntimeError("the API's producer is not started")
        await self._producer.send_and_wait(home_topic(envelope.payload).name, encode(envelope), envelope.key.encode())

    def _store(self) -> ReadModelStore:
        return current_store(self._redis, self._namespace)

    def order(self, order_id: str) -> dict[str, Any] | None:
        store = self._store()
        found = store.order(order_id)
        if not found:
            return None
        return {**typed(found), "order_id": order_id, "trail": store.trail(order_id)}

    def buyer_orders(self, buyer_id: str) -> list[dict[str, Any]]:
        orders = [
            {**typed(fields), "order_id": order_id}
            for order_id, fields in self._store().orders().items()
            if fields.get("buyer_id") == buyer_id
        ]
        return sorted(orders, key=lambda order: (str(order.get("placed_at", "")), str(order.get("upstream_ref", ""))))

    def read_model(self) -> ReadModel:
        return self._store()

    def dead_letters(self, services: Iterable[str]) -> list[Letter]:
        return letters(self._bootstrap, services)

    def sent_before(self, record: Resend) -> str | None:
        found = sent_before(self._bootstrap, record)
        return None if found is None else f"{found.topic}[{found.partition}]@{found.offset}"

    def send(self, record: Resend) -> tuple[int, int]:
        return send_record(self._bootstrap, record)

    def ready(self) -> tuple[bool, str]:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            return False, f"Redis does not answer: {exc}"
        if self._producer is None:
            return False, "the producer is not started"
        return True, f"publishing to {self._bootstrap}, reading namespace {self._namespace}"
