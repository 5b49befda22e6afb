"""The decoded log: every event of the event topics once (by envelope id), and the allocation inbox as recorded.

Records arrive in partition order (topic by topic, partition by partition, offset by offset). Event ids are
derived from their causes, so a record written twice (a retry after a crash) carries the same id and counts
once. The inbox holds copies of events under other keys, with the ids of the originals: it is kept apart,
per partition and undeduplicated, exactly as the allocation core read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
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
    """Decode records read in partition order into an EventLog; undecodable ones are counted and named."""
    log = EventLog(topics=tuple(topics), source=source)
    seen: set[UUID] = set()
    for record in records:
        log.ends[(record.topic, record.partition)] = record.offset + 1
        try:
            envelope = _decode(record)
        except ContractError as error:
            log.undecodable += 1
            log.rejected.append(f"{record.spot}: {error}")
            continue
        arrival = record.arrival
        if arrival is not None:  # an inbox record: its core decided at the broker's time of it (docs/time.md)
            envelope = envelope.arrived(arrival)
        if record.topic == INBOX:
            log.inbox.setdefault(record.partition, []).append(Located(envelope, record.spot))
            continue
        if envelope.id in seen:
            log.duplicates += 1
            continue
        seen.add(envelope.id)
        log.events.append(envelope)
        log.spots.append(record.spot)
    return log


def _decode(record: LogRecord) -> Envelope[Message]:
    """The record's envelope; any failure to read it is a ContractError naming it, so one bad record is reported
    where it is and the rest of the log is still checked."""
    if record.value is None:
        raise ContractError("empty_value", "the record has no value")
    try:
        return decode(record.value)
    except ContractError:
        raise
    except Exception as exc:  # e.g. RecursionError on deeply nested JSON: the record is bad, not the audit
        raise ContractError("undecodable", f"the decoder failed on it: {type(exc).__name__}: {exc}") from None
