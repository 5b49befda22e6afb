"""A worker that holds partitions with records waiting on them and commits nothing for `stall_after_s` ends itself,
so that its restart (compose's on-failure, the supervisor, systemd) reads them.

Why: faust-streaming can come out of a rebalance "Worker ready" and never fetch again (faust-streaming #523, open
upstream). The fault drill saw it after a worker was paused beyond its session timeout: fulfilment rejoined its
group, logged ready, and left three allocations unread for five minutes. Exiting is safe at any moment: offsets
are committed only past records whose outputs are acknowledged, and the restart folds what the journal recorded.

The judgement (`StallWatch`) is pure and fed observations; `OffsetProbe` makes them with clients of its own,
outside faust's consumer, which is the thing under suspicion. A partition counts as stalled only when every
observation for `stall_after_s` succeeded, saw the same committed offset, saw records past it, and the worker was
neither rebuilding state nor retrying a send; and then only if a record can really be read past the committed
offset (a transaction's commit marker also lies between the committed offset and the end, and is no record).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka_auth import aiokafka_options

PROBE_TIMEOUT_S = 10.0
Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class Stall:
    topic: str
    partition: int
    committed: int
    end: int
    for_s: float

    def __str__(self) -> str:
        waiting = self.end - self.committed
        return (
            f"{self.topic}[{self.partition}]: {waiting} offsets waiting past the committed {self.committed} "
            f"(end {self.end}) and nothing committed for {self.for_s:.0f} s"
        )


@dataclass
class StallWatch:
    stall_after_s: float
    # (topic, partition) -> (committed offset, when it was first seen stuck there with records behind it)
    _stuck: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)

    def reset(self) -> None:
        """No verdict across a gap: an observation failed, or the worker was busy in a way that excuses it."""
        self._stuck.clear()

    def observe(self, now: float, committed: Offsets, ends: Offsets) -> list[Stall]:
        """Partitions (of those observed now) stuck at one committed offset with records past it for long enough."""
        stuck: dict[tuple[str, int], tuple[int, float]] = {}
        for tp, end in ends.items():
            at = committed.get(tp)
            if at is None or end <= at:
                continue
            previous = self._stuck.get(tp)
            stuck[tp] = previous if previous is not None and previous[0] == at else (at, now)
        self._stuck = stuck
        return [
            Stall(tp[0], tp[1], at, ends[tp], now - since)
            for tp, (at, since) in sorted(stuck.items())
            if now - since >= self.stall_after_s
        ]


class OffsetProbe:
    """The group's committed offsets and the partitions' ends, asked of the cluster by clients of the probe's own."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.bootstrap, self.group = bootstrap, group
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **aiokafka_options())
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                **aiokafka_options(),
            )
            await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
            await asyncio.wait_for(consumer.start(), PROBE_TIMEOUT_S)
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def offsets(self, partitions: set[tuple[str, int]]) -> tuple[Offsets, Offsets]:
        """(committed, ends) for `partitions`; a partition never committed counts from its log start."""
        admin, consumer = await self._clients()
        tps = [TopicPartition(topic, partition) for topic, partition in sorted(partitions)]
        found = await asyncio.wait_for(admin.list_consumer_group_offsets(self.group, partitions=tps), PROBE_TIMEOUT_S)
        ends = await asyncio.wait_for(consumer.end_offsets(tps), PROBE_TIMEOUT_S)
        starts = await asyncio.wait_for(consumer.beginning_offsets(tps), PROBE_TIMEOUT_S)
        committed: Offsets = {}
        for tp in tps:
            meta = found.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            committed[(tp.topic, tp.partition)] = max(offset, starts[tp])
        return committed, {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

    async def has_record(self, stall: Stall) -> bool:
        """Whether a record can be read between the stalled partition's committed offset and its end."""
        _, consumer = await self._clients()
        tp = TopicPartition(stall.topic, stall.partition)
        consumer.assign([tp])
        consumer.seek(tp, stall.committed)
        batches = await consumer.getmany(tp, timeout_ms=int(PROBE_TIMEOUT_S * 1000), max_records=1)
        return any(record.offset < stall.end for record in batches.get(tp, []))

    async def close(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                await client.close() if isinstance(client, AIOKafkaAdminClient) else await client.stop()
        self._admin = self._consumer = None
