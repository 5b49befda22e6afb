"""One pass over the log, record by record: decode each record, date an inbox copy at its arrival, count a record
written twice once, and name every record that cannot be read.

Records arrive in partition order (topic by topic, partition by partition, offset by offset). Event ids are
derived from their causes, so a record written twice (a retry after a crash) carries the same id and counts
once. The allocation inbox holds copies of events under other keys, with the ids of the originals: its records
are passed on undeduplicated, exactly as the allocation core read them. What a pass keeps for itself is small:
its counts, the records it could not read, and one integer per event id for the duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
from services.domain_kit.seen_ids import SeenIds
from services.replay.id_types import IdTypes
from services.replay.records import INBOX, LogRecord, Spot


class Read(NamedTuple):
    """A decoded event and where it was read; `inbox` for a record of the allocation inbox."""

    envelope: Envelope[Message]
    spot: Spot
    inbox: bool


@dataclass
class Reading:
    """What a pass over the log saw besides the events it passed on."""

    topics: tuple[str, ...] = ()
    source: str = ""
    events: int = 0
    """Events of the event topics passed on, each id once."""
    duplicates: int = 0
    undecodable: int = 0
    rejected: list[str] = field(default_factory=list)
    """Each undecodable record: where it is and what is wrong with it."""
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per partition read, the offset after its last record: how far a reader must be to have seen it all."""
    types: IdTypes | None = None
    """Event id -> type, when asked for (the ledger table names the kind of each line's cause)."""
    _seen: SeenIds = field(default_factory=SeenIds, repr=False)
    """The event ids passed on, 16 bytes each (a set of ints cost ~80: 80 MB at a million events)."""

    @property
    def seen(self) -> SeenIds:
        """The ids of the events passed on so far, each added before its event is: checks that need the same set
        share this one (Verification)."""
        return self._seen

    def type_of(self, event_id: UUID) -> str | None:
        return None if self.types is None else self.types.get(event_id)


def read_events(records: Iterable[LogRecord], reading: Reading) -> Iterator[Read]:
    """The decodable records of a log read in partition order, events of the event topics once by id."""
    seen = reading._seen
    for record in records:
        reading.ends[(record.topic, record.partition)] = record.offset + 1
        try:
            envelope = _decode(record)
        except ContractError as error:
            reading.undecodable += 1
            reading.rejected.append(f"{record.spot}: {error}")
            continue
        arrival = record.arrival
        if arrival is not None:  # an inbox record: its core decided at the broker's time of it (docs/time.md)
            envelope = envelope.arrived(arrival)
        if record.topic == INBOX:
            yield Read(envelope, record.spot, True)
            continue
        if not seen.add_new(envelope.id):
            reading.duplicates += 1
            continue
        reading.events += 1
        if reading.types is not None:
            reading.types.add(envelope.id, envelope.type)
        yield Read(envelope, record.spot, False)


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
