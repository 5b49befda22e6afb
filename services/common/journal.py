"""Where a worker records its decisions (schemas.journal) and reads them back when it rebuilds a partition.

An entry is written, and acknowledged, before any output of its record is sent: whatever reached the topics was
recorded first, so a rebuild that folds the journal knows every decision that may have been seen. Outputs too
large for one record are split into parts; an entry missing a part was never complete, so nothing of it was sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.journal import JournalEntry
from services.common.records import Record

log = logging.getLogger(__name__)

ENTRY_OVERHEAD = 4096
"""Bytes kept free in a journal record for the entry's own fields around its outputs."""


def digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


@dataclass(frozen=True)
class Recorded:
    """A complete decision read back from the journal: its first position, and its parts joined."""

    position: int
    entry: JournalEntry


class Journal(Protocol):
    async def write_all(self, entries: list[JournalEntry]) -> dict[int, int]:
        """Record the parts of several decisions (of one inbox, any of its partitions), in order, after every entry
        written before, all in flight at once; per journal partition written, the position after its last entry,
        once every one is acknowledged."""
        ...

    async def write_later(self, entries: list[JournalEntry]) -> None:
        """Record the parts of a decision that sends nothing: queued in order, acknowledged by the next `write_all`
        or `flush` (nothing waits for it: most inbox records, ticks and markers, decide nothing)."""
        ...

    async def flush(self, inbox: str, partition: int) -> int:
        """Wait for every queued entry; the position after the last entry of the partition's journal written."""
        ...

    def read(self, inbox: str, partition: int, start: int) -> AsyncIterator[tuple[int, bytes | None]]:
        """The journal records of an inbox partition from position `start` to the end it has now."""
        ...

    async def end(self, inbox: str, partition: int) -> int:
        """The position after the last record of the inbox partition's journal."""
        ...


def split(entry: JournalEntry, max_bytes: int) -> list[JournalEntry]:
    """One entry, or parts whose outputs each fit in a record of `max_bytes` (one output per part at least)."""
    budget = max(max_bytes - ENTRY_OVERHEAD - len(entry.error_detail or ""), 1)
    groups: list[list[str]] = [[]]
    size = 0
    for output in entry.outputs:
        cost = len(output.encode("utf-8")) * 2 + 8  # an encoded envelope is escaped inside the entry's JSON
        if groups[-1] and size + cost > budget:
            groups.append([])
            size = 0
        groups[-1].append(output)
        size += cost
    if len(groups) == 1:
        return [entry]
    return [
        entry.model_copy(update={"outputs": tuple(group), "part": index, "parts": len(groups)})
        for index, group in enumerate(groups)
    ]


async def decisions(records: AsyncIterator[tuple[int, bytes | None]], start_offset: int) -> AsyncIterator[Recorded]:
    """Complete decisions in journal order, the first one for each inbox offset, none for offsets below
    `start_offset`. A later entry for an offset already seen is a producer's retry or a zombie worker's: the first
    one is what went out first, so it stands."""
    seen_up_to = start_offset - 1
    gathering: list[JournalEntry] = []
    first_position = 0
    async for position, value in records:
        try:
            entry = JournalEntry.model_validate_json(value or b"")
        except ValidationError as error:
            log.error("journal record at position %s is not a journal entry (skipped): %s", position, error)
            continue
        if entry.offset <= seen_up_to:
            continue
        if entry.part == 0:
            gathering, first_position = [entry], position
        elif gathering and gathering[0].offset == entry.offset and entry.part == len(gathering):
            gathering.append(entry)
        else:
            gathering = []  # a part without its start: an entry cut short by a crash, never sent
            continue
        if len(gathering) == entry.parts:
            outputs = tuple(output for part in gathering for output in part.outputs)
            whole = gathering[0].model_copy(update={"outputs": outputs, "part": 0, "parts": 1})
            seen_up_to = entry.offset
            gathering = []
            yield Recorded(first_position, whole)


class MemoryJournal:
    """A journal in memory: for unit tests and the simulation (which crashes workers, never the journal)."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[bytes]] = {}
        self.fail_after: int | None = None
        """Tests: parts to accept before failing a write (a crash between two parts)."""

    async def write(self, entries: list[JournalEntry]) -> int:
        log_ = self.logs.setdefault((entries[0].inbox, entries[0].partition), [])
        for entry in entries:
            if self.fail_after is not None:
                if self.fail_after <= 0:
                    raise ConnectionError("journal write failed (test)")
                self.fail_after -= 1
            log_.append(entry.model_dump_json().encode("utf-8"))
        return len(log_)

    async def write_all(self, entries: list[JournalEntry]) -> dict[int, int]:
        positions: dict[int, int] = {}
        for entry in entries:
            positions[entry.partition] = await self.write([entry])
        return positions

    async def write_later(self, entries: list[JournalEntry]) -> None:
        await self.write(entries)

    async def flush(self, inbox: str, partition: int) -> int:
        return len(self.logs.get((inbox, partition), []))

    async def read(self, inbox: str, partition: int, start: int) -> AsyncIterator[tuple[int, bytes | None]]:
        records = self.logs.get((inbox, partition), [])
        for position in range(start, len(records)):
            yield position, records[position]

    async def end(self, inbox: str, partition: int) -> int:
        return len(self.logs.get((inbox, partition), []))


Replay = Callable[..., AsyncIterator[Record]]
Send = Callable[..., Any]
EndOffset = Callable[[str, int], Any]


class KafkaJournal:
    """The journal on the cluster: topic h200.<service>.journal, partition = inbox partition.

    A queued entry (`write_later`) is handed to the producer at once, so entries reach a partition in the order
    written, and only its acknowledgement is awaited later. If the worker crashes before it is acknowledged and
    after its record was committed, that record has no entry: a rebuild decides it again, which gives the same
    nothing with the same core (and sends nothing in any case)."""

    def __init__(self, topic: str, enqueue: Send, replay: Replay, end_offset: EndOffset) -> None:
        self.topic = topic
        self._enqueue = enqueue
        self._replay = replay
        self._end_offset = end_offset
        self._queued: list[tuple[int, Any]] = []
        self._positions: dict[int, int] = {}

    async def _drain(self) -> None:
        queued, self._queued = self._queued, []
        for partition, pending in queued:
            try:
                metadata = await pending
            except Exception as error:
                raise RuntimeError(
                    f"a journal entry for {self.topic}[{partition}] was not written ({error}); the worker stops so "
                    "that nothing is sent without its decision recorded first"
                ) from error
            self._advance(partition, metadata)

    def _advance(self, partition: int, metadata: Any) -> int:
        position = max(self._positions.get(partition, 0), int(getattr(metadata, "offset", -1)) + 1)
        self._positions[partition] = position
        return position

    def _record(self, entry: JournalEntry) -> tuple[str, bytes, bytes]:
        return self.topic, str(entry.offset).encode(), entry.model_dump_json().encode("utf-8")

    async def write_all(self, entries: list[JournalEntry]) -> dict[int, int]:
        # Handed to the producer in order and awaited together: aiokafka sends one batch per partition at a time,
        # so they land in this order. A failure stops the worker (see _drain): nothing of them is sent.
        await self.write_later(entries)
        partitions = {entry.partition for entry in entries}
        await self._drain()
        return {partition: self._positions.get(partition, 0) for partition in partitions}

    async def write_later(self, entries: list[JournalEntry]) -> None:
        for entry in entries:
            self._queued.append((entry.partition, await self._enqueue(*self._record(entry), None, entry.partition)))

    async def flush(self, inbox: str, partition: int) -> int:
        await self._drain()
        return self._positions.get(partition, 0)

    async def read(self, inbox: str, partition: int, start: int) -> AsyncIterator[tuple[int, bytes | None]]:
        until = await self.end(inbox, partition)
        async for record in self._replay(self.topic, partition, until, start=start):
            yield record.offset, record.value

    async def end(self, inbox: str, partition: int) -> int:
        return int(await self._end_offset(self.topic, partition))
