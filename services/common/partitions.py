"""A core's state per inbox partition, rebuilt from the partition itself whenever it is not current.

The inbox is the service's whole input in one order per partition, so the state after offset n is the fold
of records 0..n-1. A worker that starts, restarts after a crash or receives a partition in a rebalance sees
a first record whose offset is not the next one it expects; it then replays the partition from the start up
to that offset, silently (the outputs of that history were sent by whoever processed it), and goes on.
Record ids already applied are skipped, so a record written twice upstream is applied once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError
from schemas.envelope import Envelope
from services.common.decider import step
from services.common.records import Record, decode_record

log = logging.getLogger(__name__)

RETRY_S = 1.0

Replay = Callable[[str, int, int], AsyncIterator[Record]]
"""(topic, partition, until_offset) -> the records of offsets [0, until_offset) that are committed."""


@dataclass
class PartitionState:
    state: Any
    next_offset: int = 0
    applied: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Outcome:
    outputs: list[Envelope[Message]]
    rejected: ContractError | None = None
    duplicate: bool = False


class PartitionedCore:
    def __init__(self, core: Any, replay: Replay, max_bytes: int) -> None:
        self.core = core
        self._replay = replay
        self._max_bytes = max_bytes
        self._partitions: dict[tuple[str, int], PartitionState] = {}
        self.rebuilds = 0

    def _apply(self, current: PartitionState, record: Record) -> Outcome:
        current.next_offset = record.offset + 1
        try:
            envelope = decode_record(record, self._max_bytes)
        except ContractError as error:
            return Outcome([], rejected=error)
        if str(envelope.id) in current.applied:
            return Outcome([], duplicate=True)
        current.applied.add(str(envelope.id))
        try:
            current.state, outputs = step(self.core, current.state, envelope)
        except Exception as exc:
            # A defect in the core, not in the record: the record goes to the dead letters with the error.
            # Live processing and a rebuild fail the same way on it, so the states stay the same.
            log.exception("%s failed on %s", self.core.NAME, record.where)
            return Outcome([], rejected=ContractError("processing_failed", f"{type(exc).__name__}: {exc}"))
        return Outcome(outputs)

    async def _rebuild(self, topic: str, partition: int, until: int) -> PartitionState:
        rebuilt = PartitionState(self.core.initial_state())
        count = 0
        async for record in self._replay(topic, partition, until):
            self._apply(rebuilt, record)
            count += 1
        rebuilt.next_offset = until
        self.rebuilds += 1
        log.info(
            "rebuilt %s state of %s[%s] from %s records up to offset %s", self.core.NAME, topic, partition, count, until
        )
        return rebuilt

    async def handle(self, record: Record) -> Outcome:
        """Apply one live record; the outputs are the facts to publish for it."""
        key = (record.topic, record.partition)
        current = self._partitions.get(key)
        while current is None or current.next_offset != record.offset:
            try:
                current = self._partitions[key] = await self._rebuild(record.topic, record.partition, record.offset)
            except Exception:
                # Raising would end the agent and faust would skip this record (faust-streaming #315).
                log.exception("could not rebuild %s[%s]; retrying in %s s", record.topic, record.partition, RETRY_S)
                await asyncio.sleep(RETRY_S)
        return self._apply(current, record)

    def state_of(self, topic: str, partition: int) -> Any:
        current = self._partitions.get((topic, partition))
        return None if current is None else current.state
