"""The faust wiring every service shares: an inbox agent that runs the core, and router agents that copy
inputs from other topics into the inbox under its key. Agents decode at the edge, call the core and send
its events; business rules live in the cores only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import faust

from schemas.base import Message
from schemas.codec import ContractError, encode
from schemas.routing import home_topic, record_key
from schemas.topics import BY_NAME, Topic
from services.common.dead_letters import DeadLetters, dead_letter_topic
from services.common.inbox_replay import replay_partition
from services.common.partitions import PartitionedCore
from services.common.records import Record, decode_record, from_faust
from services.common.settings import ClusterSettings, WorkerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Copy the records of `source` whose message type is in `types` into the service's inbox."""

    source: str
    types: tuple[type[Message], ...]


def make_faust_app(service: str, cluster: ClusterSettings, worker: WorkerSettings) -> faust.App:
    datadir = worker.datadir / service / worker.worker_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"h200-{service}",
        broker=f"kafka://{cluster.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=worker.web_port > 0,
        web_port=worker.web_port or 6066,
        web_bind="127.0.0.1",
        # Topics come from the catalogue (`h200 topics create`); faust must not invent its own.
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        processing_guarantee="at_least_once",
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=worker.heartbeat_interval_s,
        broker_commit_interval=worker.commit_interval_s,
    )


class ServiceWorker:
    def __init__(
        self,
        app: faust.App,
        service: str,
        core: Any,
        inbox: str,
        routes: tuple[Route, ...],
        cluster: ClusterSettings,
        worker: WorkerSettings,
    ) -> None:
        self.app = app
        self.service = service
        self.inbox: Topic = BY_NAME[inbox]
        self._max_bytes = cluster.max_message_bytes
        self._retry_s = worker.send_retry_s
        self._topics: dict[str, Any] = {}
        self.core = PartitionedCore(core, partial(replay_partition, cluster.bootstrap_servers), self._max_bytes)
        self.dead_letters = DeadLetters(service, self._send)
        self.decided = 0
        app.agent(self._topic(inbox), name=f"{service}.decide", concurrency=1)(self._decide)
        for route in routes:
            app.agent(self._topic(route.source), name=f"{service}.route.{route.source}", concurrency=1)(
                self._router(route)
            )
        app.page("/stats/")(self._stats_page)

    def _topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
        return self._topics[name]

    async def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> object:
        # Retry until the broker takes it: an exception here would make faust skip the record (faust #315).
        while True:
            try:
                pending = await self._topic(topic).send(
                    key=key, value=value, headers=headers, partition=partition, force=True
                )
                return await pending
            except Exception:
                log.exception("could not publish to %s; retrying in %s s", topic, self._retry_s)
                await asyncio.sleep(self._retry_s)

    async def _reject(self, record: Record, error: ContractError) -> None:
        await self.dead_letters.reject(record, error, datetime.now(UTC))

    async def _decide(self, stream: Any) -> None:
        async for event in stream.events():
            record = from_faust(event.message)
            outcome = await self.core.handle(record)
            if outcome.rejected is not None:
                await self._reject(record, outcome.rejected)
            for envelope in outcome.outputs:
                await self._send(home_topic(envelope.payload).name, envelope.key.encode(), encode(envelope))
            self.decided += 1

    def _router(self, route: Route) -> Callable[[Any], Coroutine[Any, Any, None]]:
        async def forward(stream: Any) -> None:
            async for event in stream.events():
                record = from_faust(event.message)
                try:
                    envelope = decode_record(record, self._max_bytes)
                except ContractError as error:
                    await self._reject(record, error)
                    continue
                if isinstance(envelope.payload, route.types):
                    await self._forward(record, envelope.payload)

        return forward

    async def _forward(self, record: Record, payload: Message) -> None:
        """Copy the original bytes, unchanged, under the inbox's key (to every partition for broadcast rules)."""
        if isinstance(payload, self.inbox.broadcast):
            for partition in range(self.inbox.partitions):
                await self._send(self.inbox.name, record.key, record.value, partition=partition)
        else:
            await self._send(self.inbox.name, record_key(payload, self.inbox).encode(), record.value)

    async def _stats_page(self, web: Any, request: Any) -> Any:
        return web.json(
            {
                "service": self.service,
                "decided": self.decided,
                "rebuilds": self.core.rebuilds,
                "dead_letters": dict(self.dead_letters.counts),
                "dead_letter_topic": dead_letter_topic(self.service),
            }
        )
