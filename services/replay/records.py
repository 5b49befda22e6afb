"""A record of the log as replay sees it, wherever it was read from (a Kafka partition or an export file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from schemas.topics import CATALOGUE

INBOX = "h200.allocation.inbox"
"""The allocation core's inputs, in the order it decided on them: what the determinism check and what-if refold."""
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


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def spot(self) -> Spot:
        return Spot(self.topic, self.partition, self.offset)


def in_catalogue_order(topics: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Topics in the order of the catalogue (unknown names last, by name): the order replays read them in."""
    return tuple(sorted(set(topics), key=lambda name: (CATALOGUE_ORDER.get(name, len(CATALOGUE_ORDER)), name)))
