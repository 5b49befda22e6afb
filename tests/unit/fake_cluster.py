"""The cluster and the read models as the CLI sees them, without Kafka or Redis: a World of real cores (from
builders_replay) behind the functions services.ops uses to publish, read topics and follow an outcome topic, and a
FakeReadModel with the queries `h200 show` makes. Records that are no envelope (dead letters) are added raw."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from builders_replay import World, partition_of
from fake_read_model import FakeReadModel

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
from schemas.topics import BY_NAME, EVENT_TOPICS
from services.ops.outcomes import CaughtUp, Seen
from services.ops.publish import envelope_for
from services.ops.redrive import Resend
from services.replay.records import LogRecord


class FakeCluster:
    """Publishing runs the cores at once (unless `deciding` is off: the services are down); reading sees every topic."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.deciding = True
        self.sent: list[Envelope[Message]] = []
        self.bootstraps: list[str] = []
        self.raw: dict[tuple[str, int], list[LogRecord]] = {}
        self.resent: list[Resend] = []

    def publish(self, bootstrap: str, payloads: Iterable[Message], producer_name: str = "ops") -> list[Envelope[Any]]:
        self.bootstraps.append(bootstrap)
        payloads = list(payloads)
        sent = [envelope_for(payload, producer_name) for payload in payloads]
        if self.deciding:
            self.world.publish(*payloads, producer=producer_name)
        self.sent += sent
        return sent

    def _partitions(self, topic: str) -> dict[int, list[Envelope[Any]]]:
        return {p: self.world.partitions.get((topic, p), []) for p in range(BY_NAME[topic].partitions)}

    def ends(self, bootstrap: str, topic: str) -> dict[int, int]:
        self.bootstraps.append(bootstrap)
        return {p: len(records) for p, records in self._partitions(topic).items()}

    def follow(
        self, bootstrap: str, topic: str, keys: Collection[bytes], history: dict[int, int], seconds: float
    ) -> Iterator[Seen | CaughtUp]:
        self.bootstraps.append(bootstrap)
        found = [
            (offset >= history[p], envelope)
            for p, records in self._partitions(topic).items()
            for offset, envelope in enumerate(records)
            if envelope.key.encode() in keys
        ]
        yield from (Seen(envelope, fresh=False) for fresh, envelope in found if not fresh)
        yield CaughtUp()
        yield from (Seen(envelope, fresh=True) for fresh, envelope in found if fresh)

    def read_topics(
        self, bootstrap: str, topics: Iterable[str], stream: object = None, starts: object = None
    ) -> Iterator[LogRecord]:
        self.bootstraps.append(bootstrap)
        wanted = list(topics)
        raw = [r for name in wanted for (topic, _), found in sorted(self.raw.items()) if topic == name for r in found]
        return iter([*self.world.records(wanted), *raw])

    def add_raw(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]] = ()
    ) -> LogRecord:
        """A record on partition 0 of `topic`, as it is (a dead letter, a malformed value)."""
        records = self.raw.setdefault((topic, 0), [])
        records.append(LogRecord(topic, 0, len(records), key, value, None, tuple(headers)))
        return records[-1]

    def send_record(self, bootstrap: str, record: Resend) -> tuple[int, int]:
        """One record sent as services.ops.dead_letter_commands sends it: an envelope goes to the cores."""
        self.bootstraps.append(bootstrap)
        self.resent.append(record)
        partition = partition_of(record.topic, record.key.decode()) if record.partition is None else record.partition
        try:
            envelope = decode(record.value)
        except ContractError:
            return partition, self.add_raw(record.topic, record.key, record.value).offset
        offset = len(self.world.partitions.get((record.topic, partition), []))
        self.world._put(record.topic, envelope, partition)
        return partition, offset

    def events(self, topic: str) -> list[Envelope[Any]]:
        return self.world.events(topic)


class ReadModel(FakeReadModel):
    """The projector's read models of a World, with the order queries of services.projector.store."""

    @classmethod
    def of(cls, world: World) -> ReadModel:
        model = cls()
        for topic in EVENT_TOPICS:
            model.apply(world.events(topic))
        return model

    def order(self, order_id: str) -> dict[str, str]:
        return self._hash(f"{self.ns}:order:{order_id}")

    def trail(self, order_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.data.get(f"{self.ns}:order:{order_id}:trail", [])]

    def orders(self) -> dict[str, dict[str, str]]:
        return {o: self.order(o) for o in sorted(self.data.get(f"{self.ns}:orders", set()))}
