"""The records of many partitions as one stream, oldest record timestamp first, each partition in offset order.

A consumer hands out records partition by partition (a whole fetch of h200.approvals may come before the
h200.orders records that caused it). The read models are not indifferent to that order (an order's status is
set by its placement and then by its approval), so a projector catching up from behind (after a restart, a
rebuild, a switch of namespace) must not apply an effect before its cause. Causes are written before their
effects, so their record timestamps are not later: merging the partitions by timestamp (ties by topic order)
restores the causal order. A partition that may still hold earlier records holds the merge back until it is
read: with `until` offsets (a rebuild), while it is below its target; live, while it is below its last known
high watermark, for at most `stall_s`.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from services.common.records import Record

log = logging.getLogger("h200.projector")

Positions = dict[tuple[str, int], int]


class TimeOrderedReader:
    def __init__(
        self,
        consumer: KafkaConsumer,
        partitions: Iterable[TopicPartition],
        buffered: int = 5_000,
        fetch_records: int = 5_000,
        stall_s: float = 5.0,
    ) -> None:
        self.consumer = consumer
        self.partitions = list(partitions)
        self._rank = {tp: index for index, tp in enumerate(self.partitions)}
        self._buffers: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in self.partitions}
        self._buffered = buffered
        self._fetch_records = fetch_records
        self._stall_s = stall_s
        self._blocked_since: float | None = None
        self.consumer.assign(self.partitions)

    def seek(self, positions: Positions) -> None:
        """Read each partition from `positions` on (0 where none is given); anything buffered is dropped."""
        for tp in self.partitions:
            self._buffers[tp].clear()
            self.consumer.seek(tp, positions.get((tp.topic, tp.partition), 0))
        self._blocked_since = None

    def end_offsets(self) -> Positions:
        return {(tp.topic, tp.partition): end for tp, end in self.consumer.end_offsets(self.partitions).items()}

    def read(self, max_records: int, timeout_ms: int, until: Positions | None = None) -> list[Record]:
        """Up to `max_records` in merged order (none below `until`'s offsets are held back by it)."""
        if not self._take(1, until, peek=True):
            self._fill(timeout_ms)
        return self._take(max_records, until)

    def reached(self, until: Positions) -> bool:
        """True when every record below `until` has been handed out."""
        return not any(self._eligible(tp, until) or self._behind(tp, until) for tp in self.partitions)

    # --- internals -------------------------------------------------------------------------------------

    def _fill(self, timeout_ms: int) -> None:
        full = {tp for tp, buffer in self._buffers.items() if len(buffer) >= self._buffered}
        if full:
            self.consumer.pause(*full)
        resume = [tp for tp in self.consumer.paused() if tp not in full]
        if resume:
            self.consumer.resume(*resume)
        for tp, messages in self.consumer.poll(timeout_ms=timeout_ms, max_records=self._fetch_records).items():
            self._buffers[tp].extend(messages)

    def _end(self, tp: TopicPartition, until: Positions | None) -> int | None:
        if until is not None:
            return until.get((tp.topic, tp.partition), 0)
        highwater = self.consumer.highwater(tp)
        return None if highwater is None else int(highwater)

    def _behind(self, tp: TopicPartition, until: Positions | None) -> bool:
        """Nothing buffered, but the partition may hold records not read yet that must come first."""
        if self._buffers[tp]:
            return False
        end = self._end(tp, until)
        return end is None or self.consumer.position(tp) < end

    def _eligible(self, tp: TopicPartition, until: Positions | None) -> bool:
        buffer = self._buffers[tp]
        return bool(buffer) and (until is None or buffer[0].offset < until.get((tp.topic, tp.partition), 0))

    def _held_back(self, until: Positions | None) -> bool:
        behind = [tp for tp in self.partitions if self._behind(tp, until)]
        if not behind:
            self._blocked_since = None
            return False
        if until is not None:
            return True
        now = time.monotonic()
        self._blocked_since = self._blocked_since or now
        if now - self._blocked_since < self._stall_s:
            return True
        log.warning("partitions %s stay behind their high watermark; going on without them", behind)
        return False

    def _take(self, max_records: int, until: Positions | None, peek: bool = False) -> list[Record]:
        if self._held_back(until):
            return []
        heads = [self._head(tp) for tp in self.partitions if self._eligible(tp, until)]
        heapq.heapify(heads)
        taken: list[Record] = []
        while heads and len(taken) < max_records:
            *_, tp = heapq.heappop(heads)
            if peek:
                return [self._record(tp, self._buffers[tp][0])]
            taken.append(self._record(tp, self._buffers[tp].popleft()))
            if self._eligible(tp, until):
                heapq.heappush(heads, self._head(tp))
            elif self._behind(tp, until):
                break  # its next record may be older than the other heads: read it first
        return taken

    def _head(self, tp: TopicPartition) -> tuple[int, int, TopicPartition]:
        return (self._buffers[tp][0].timestamp, self._rank[tp], tp)

    @staticmethod
    def _record(tp: TopicPartition, m: Any) -> Record:
        return Record(tp.topic, tp.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
