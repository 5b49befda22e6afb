"""The projector's time-ordered merge of partitions, against an in-memory consumer: causes before effects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka import TopicPartition

from services.projector.merge import TimeOrderedReader

ORDERS, APPROVALS = TopicPartition("h200.orders", 0), TopicPartition("h200.approvals", 0)


@dataclass(frozen=True)
class Message:
    offset: int
    timestamp: int
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class FakeConsumer:
    """Hands out each partition's log a few records per poll, partition by partition, as kafka-python does."""

    def __init__(self, logs: dict[TopicPartition, list[int]], per_poll: int = 2) -> None:
        self.logs = {tp: [Message(i, ts) for i, ts in enumerate(stamps)] for tp, stamps in logs.items()}
        self.positions = dict.fromkeys(logs, 0)
        self.fetched: set[TopicPartition] = set()
        self.per_poll = per_poll
        self._paused: set[TopicPartition] = set()

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        assert set(partitions) == set(self.logs)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.logs[tp]) if tp in self.fetched else None

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp]) for tp in partitions}

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Message]]:
        # The whole of one partition's fetch before the next: the order that breaks causality.
        for tp in sorted(self.logs, key=lambda tp: tp.topic != "h200.approvals"):
            self.fetched.add(tp)
            start = self.positions[tp]
            if tp in self._paused or start >= len(self.logs[tp]):
                continue
            taken = self.logs[tp][start : start + self.per_poll]
            self.positions[tp] += len(taken)
            return {tp: taken}
        return {}


def drain(reader: TimeOrderedReader, until: dict[tuple[str, int], int] | None = None) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for _ in range(100):
        out += [(r.topic, r.offset) for r in reader.read(10, 0, until)]
    return out


def test_an_effect_in_another_topic_is_not_applied_before_its_cause() -> None:
    consumer = FakeConsumer({ORDERS: [10, 20, 30], APPROVALS: [11, 21, 31]})
    reader = TimeOrderedReader(consumer, [ORDERS, APPROVALS])  # type: ignore[arg-type]
    reader.seek({})
    assert drain(reader) == [(t, n) for n in range(3) for t in ("h200.orders", "h200.approvals")]


def test_each_partition_keeps_its_offset_order_whatever_its_timestamps() -> None:
    consumer = FakeConsumer({ORDERS: [50, 10, 60], APPROVALS: [20]})
    reader = TimeOrderedReader(consumer, [ORDERS, APPROVALS])  # type: ignore[arg-type]
    reader.seek({})
    assert drain(reader) == [("h200.approvals", 0), ("h200.orders", 0), ("h200.orders", 1), ("h200.orders", 2)]


def test_reading_up_to_given_offsets_stops_there_and_goes_on_later() -> None:
    consumer = FakeConsumer({ORDERS: [10, 20, 30, 40], APPROVALS: [11, 21, 31, 41]})
    reader = TimeOrderedReader(consumer, [ORDERS, APPROVALS])  # type: ignore[arg-type]
    reader.seek({})
    until = {("h200.orders", 0): 2, ("h200.approvals", 0): 1}
    assert drain(reader, until) == [("h200.orders", 0), ("h200.approvals", 0), ("h200.orders", 1)]
    assert reader.reached(until)
    rest = drain(reader, reader.end_offsets())
    expected = [("h200.approvals", 1), ("h200.orders", 2), ("h200.approvals", 2), ("h200.orders", 3)]
    assert rest == [*expected, ("h200.approvals", 3)]


def test_seeking_to_stored_positions_resumes_there() -> None:
    consumer = FakeConsumer({ORDERS: [10, 20, 30], APPROVALS: [11, 21, 31]})
    reader = TimeOrderedReader(consumer, [ORDERS, APPROVALS])  # type: ignore[arg-type]
    reader.seek({("h200.orders", 0): 2, ("h200.approvals", 0): 1})
    assert drain(reader) == [("h200.approvals", 1), ("h200.orders", 2), ("h200.approvals", 2)]
