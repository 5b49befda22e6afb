"""The decoded log held in memory: every event of the event topics once (by envelope id), and the allocation inbox
as recorded, per partition and undeduplicated (services.replay.reading reads them). For callers that have a small
log at hand (tests, the simulation, the protocol audit): the `h200` commands stream (services.replay.checking) and
hold none of it; verify(log) and the like feed the same checks from an EventLog.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from schemas.base import Message
from schemas.envelope import Envelope
from services.replay.reading import Reading, read_events
from services.replay.records import INBOX, LogRecord, Spot


@dataclass(frozen=True, slots=True)
class Located:
    """An event and where it was read."""

    envelope: Envelope[Message]
    spot: Spot


@dataclass
class EventLog:
    events: list[Envelope[Message]] = field(default_factory=list)
    spots: list[Spot] = field(default_factory=list)
    """Where each event of `events` was first read (same index)."""
    inbox: dict[int, list[Located]] = field(default_factory=dict)
    """h200.allocation.inbox per partition, every decodable record in offset order, duplicates included."""
    duplicates: int = 0
    undecodable: int = 0
    rejected: list[str] = field(default_factory=list)
    """Each undecodable record: where it is and what is wrong with it."""
    topics: tuple[str, ...] = ()
    """The topics read."""
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per partition read, the offset after its last record: how far a reader must be to have seen it all."""
    source: str = ""
    _index: dict[UUID, int] | None = field(default=None, repr=False)

    def of(self, *types: type[Message]) -> list[Envelope[Message]]:
        return [e for e in self.events if isinstance(e.payload, types)]

    def located(self, *types: type[Message]) -> Iterator[Located]:
        for envelope, spot in zip(self.events, self.spots, strict=True):
            if not types or isinstance(envelope.payload, types):
                yield Located(envelope, spot)

    def _position(self, event_id: UUID) -> int | None:
        if self._index is None:
            self._index = {e.id: index for index, e in enumerate(self.events)}
        return self._index.get(event_id)

    def event(self, event_id: UUID) -> Envelope[Message] | None:
        index = self._position(event_id)
        return None if index is None else self.events[index]

    def where(self, event_id: UUID) -> Spot | None:
        index = self._position(event_id)
        return None if index is None else self.spots[index]

    def ids(self) -> set[UUID]:
        """Every event id of the log, the inbox's included."""
        found = {e.id for e in self.events}
        found.update(item.envelope.id for records in self.inbox.values() for item in records)
        return found

    @property
    def has_inbox(self) -> bool:
        return INBOX in self.topics

    def by_partition(self) -> list[list[Envelope[Message]]]:
        """The events grouped by the partition they were read from, in reading order."""
        groups: dict[tuple[str, int], list[Envelope[Message]]] = {}
        for envelope, spot in zip(self.events, self.spots, strict=True):
            groups.setdefault((spot.topic, spot.partition), []).append(envelope)
        return list(groups.values())


def build_log(records: Iterable[LogRecord], topics: Iterable[str], source: str = "") -> EventLog:
    """Decode records read in partition order into an EventLog (services.replay.reading: each event once, the
    inbox as recorded); undecodable ones are counted and named."""
    reading = Reading(topics=tuple(topics), source=source)
    log = EventLog(topics=reading.topics, source=source, ends=reading.ends, rejected=reading.rejected)
    for read in read_events(records, reading):
        if read.inbox:
            log.inbox.setdefault(read.spot.partition, []).append(Located(read.envelope, read.spot))
        else:
            log.events.append(read.envelope)
            log.spots.append(read.spot)
    log.duplicates, log.undecodable = reading.duplicates, reading.undecodable
    return log
