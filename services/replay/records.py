"""A record of the log as replay sees it, wherever it was read from (a Kafka partition or an export file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from schemas.envelope import Arrival
from schemas.topics import CATALOGUE, EVENT_TOPICS
from services.common.records import LOG_APPEND_TIME, Record

INBOX = "h200.allocation.inbox"
"""The allocation core's inputs, in the order it decided on them: what the determinism check and what-if refold."""
CLOCK = "h200.clock"
"""Business time as data: ticks cause decisions (a licence expiring, a policy coming into force), so a decision's
cause may be a tick; verify reads the clock to find it (the projector has nothing to show of it)."""
CAUSE_TOPICS = (*EVENT_TOPICS, CLOCK)
"""Every topic a decision's cause may live on."""
CATALOGUE_ORDER = {topic.name: index for index, topic in enumerate(CATALOGUE)}


class ReplayError(ValueError):
    """Something the operator asked for or handed over that replay cannot use; the message says what to do."""


class Spot(NamedTuple):
    """Where a record sits in the log."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


IMPORTED_ARRIVAL = "h200.imported_arrival"
"""Header `h200 import` puts on an inbox record whose time was the broker's when it was exported: the import keeps
that time as the producer's (a broker stamping it again would date it at the import), and a replay reads it as the
arrival it was. Only replays read it: a service never takes a sender's header for a time of receipt."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_type: int | None = None
    """Kafka's: 1 when the broker stamped the record (an inbox's LogAppendTime), 0 for the producer's CreateTime."""

    @property
    def spot(self) -> Spot:
        return Spot(self.topic, self.partition, self.offset)

    @property
    def arrival(self) -> Arrival | None:
        """When the service reading this record learned of it, as the services read it (services.common.records):
        a replay refolds an inbox with the very times its core decided on."""
        kind = self.timestamp_type
        if kind == 0 and (IMPORTED_ARRIVAL, b"1") in self.headers:
            kind = LOG_APPEND_TIME
        if kind != LOG_APPEND_TIME:
            return None  # as Record says for a producer's time, without building one for every event of a replay
        as_read = Record(*self.spot, self.key, self.value, self.headers, self.timestamp_ms, kind)
        return as_read.arrival


def in_catalogue_order(topics: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Topics in the order of the catalogue (unknown names last, by name): the order replays read them in."""
    return tuple(sorted(set(topics), key=lambda name: (CATALOGUE_ORDER.get(name, len(CATALOGUE_ORDER)), name)))
