"""A core's state per partition: applied once, rebuilt from the partition after a restart or a gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.intake import OrderPlaced, SubmitOrder
from schemas.samples import AT, sample_payloads
from services.common.partitions import PartitionedCore
from services.common.records import Record
from services.common.retry import Backoff, StopRequestedError

SUBMIT: SubmitOrder = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
QUICK = Backoff(first_s=0.001, max_s=0.01)


class PlaceOnce:
    """A toy core: places each (buyer, reference) once."""

    NAME = "toy"

    @staticmethod
    def initial_state() -> set[str]:
        return set()

    @staticmethod
    def decide(state: set[str], message: Envelope[Any]) -> Sequence[Message]:
        payload = message.payload
        if not isinstance(payload, SubmitOrder) or payload.upstream_ref in state:
            return []
        if payload.upstream_ref == "BOOM":
            raise RuntimeError("defect in the core")
        fields = payload.model_dump(exclude={"submitted_at"})
        return [OrderPlaced(**fields, order_id=derive_id("order", payload.upstream_ref), placed_at=AT)]

    @staticmethod
    def evolve(state: set[str], message: Envelope[Any]) -> set[str]:
        if isinstance(message.payload, OrderPlaced):
            state.add(message.payload.upstream_ref)
        return state


def submission(ref: str, message_id: str | None = None) -> bytes:
    payload = SUBMIT.model_copy(update={"upstream_ref": ref})
    envelope = make_envelope(
        payload, key="bytedance", producer="test", occurred_at=AT, message_id=derive_id(message_id or ref)
    )
    return encode(envelope)


def records(values: list[bytes]) -> list[Record]:
    return [Record("inbox", 0, offset, b"bytedance", value) for offset, value in enumerate(values)]


class Log:
    """An in-memory partition log standing in for Kafka in this pure test."""

    def __init__(self, log: list[Record]) -> None:
        self.log = log
        self.replays: list[int] = []

    async def replay(self, topic: str, partition: int, until: int) -> AsyncIterator[Record]:
        self.replays.append(until)
        for record in self.log[:until]:
            yield record


def run(core: PartitionedCore, log: list[Record]) -> list[list[str]]:
    async def go() -> list[list[str]]:
        return [[o.payload.TYPE for o in (await core.handle(record)).outputs] for record in log]

    return asyncio.run(go())


def test_a_fresh_partition_is_processed_without_replay() -> None:
    log = records([submission("A"), submission("B")])
    fake = Log(log)
    core = PartitionedCore(PlaceOnce, fake.replay, 1_000_000)
    assert run(core, log) == [["OrderPlaced"], ["OrderPlaced"]]
    assert fake.replays == [0]


def test_a_restarted_worker_rebuilds_state_and_does_not_decide_again() -> None:
    log = records([submission("A"), submission("B"), submission("A", "A-resent"), submission("C")])
    fake = Log(log)
    restarted = PartitionedCore(PlaceOnce, fake.replay, 1_000_000)
    # The worker crashed after offset 1: it resumes at offset 2 and must know A and B are placed.
    outputs = run(restarted, log[2:])
    assert outputs == [[], ["OrderPlaced"]]
    assert fake.replays == [2]
    assert restarted.state_of("inbox", 0) == {"A", "B", "C"}


def test_the_same_record_twice_decides_nothing_the_second_time_because_the_core_is_idempotent() -> None:
    log = records([submission("A"), submission("A")])
    core = PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000)
    asyncio.run(core.handle(log[0]))
    second = asyncio.run(core.handle(log[1]))
    assert second.outputs == [] and second.rejected is None


def test_a_gap_in_offsets_triggers_a_rebuild() -> None:
    log = records([submission("A"), submission("B"), submission("C")])
    fake = Log(log)
    core = PartitionedCore(PlaceOnce, fake.replay, 1_000_000)
    asyncio.run(core.handle(log[0]))
    asyncio.run(core.handle(log[2]))  # another worker had offset 1 meanwhile
    assert fake.replays == [0, 2]
    assert core.state_of("inbox", 0) == {"A", "B", "C"}


def test_undecodable_bytes_are_rejected_with_a_reason_and_processing_goes_on() -> None:
    log = records([b"{oops", submission("A")])
    core = PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000)
    first = asyncio.run(core.handle(log[0]))
    assert first.rejected is not None and first.rejected.code == "malformed_json"
    assert [o.payload.TYPE for o in asyncio.run(core.handle(log[1])).outputs] == ["OrderPlaced"]


def test_a_defect_in_the_core_is_rejected_as_processing_failed() -> None:
    log = records([submission("BOOM"), submission("A")])
    core = PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000)
    failed = asyncio.run(core.handle(log[0]))
    assert failed.rejected is not None and failed.rejected.code == "processing_failed"
    assert "defect in the core" in failed.rejected.detail
    assert [o.payload.TYPE for o in asyncio.run(core.handle(log[1])).outputs] == ["OrderPlaced"]


def test_outputs_of_a_replayed_decision_have_the_same_ids() -> None:
    log = records([submission("A")])
    first = asyncio.run(PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000).handle(log[0]))
    again = asyncio.run(PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000).handle(log[0]))
    assert [o.id for o in first.outputs] == [o.id for o in again.outputs]


def test_a_failed_rebuild_is_retried_not_skipped() -> None:
    log = records([submission("A"), submission("B")])
    fake = Log(log)
    failures = [ConnectionError("broker away")]

    async def flaky(topic: str, partition: int, until: int) -> AsyncIterator[Record]:
        if failures:
            raise failures.pop()
        async for record in fake.replay(topic, partition, until):
            yield record

    core = PartitionedCore(PlaceOnce, flaky, 1_000_000, backoff=QUICK)
    outcome = asyncio.run(core.handle(log[1]))
    assert [o.payload.TYPE for o in outcome.outputs] == ["OrderPlaced"]
    assert core.state_of("inbox", 0) == {"A", "B"}


def test_a_rebuild_that_keeps_failing_ends_when_the_service_stops() -> None:
    async def broken(topic: str, partition: int, until: int) -> AsyncIterator[Record]:
        raise ConnectionError("broker away")
        yield  # pragma: no cover - makes this an async generator

    stopping = Stopping(after_sleeps=3)
    core = PartitionedCore(PlaceOnce, broken, 1_000_000, stopping, QUICK)
    with pytest.raises(StopRequestedError):
        asyncio.run(core.handle(records([submission("A"), submission("B")])[1]))
    assert stopping.sleeps == 3


def test_a_record_the_core_failed_on_is_processed_when_sent_again() -> None:
    log = records([submission("BOOM", "order-1"), submission("BOOM", "order-1")])
    core = PartitionedCore(FixedLater(), Log(log).replay, 1_000_000)
    failed = asyncio.run(core.handle(log[0]))
    assert failed.rejected is not None and failed.rejected.code == "processing_failed"
    # The defect is fixed; the upstream system sends the same command (same id) again
    again = asyncio.run(core.handle(log[1]))
    assert [o.payload.TYPE for o in again.outputs] == ["OrderPlaced"]


class FixedLater(PlaceOnce):
    """Fails on its first decision only, as a core whose defect is fixed and redeployed."""

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, state: set[str], message: Envelope[Any]) -> Sequence[Message]:  # type: ignore[override]
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("defect in the core")
        payload = message.payload
        fields = payload.model_dump(exclude={"submitted_at"})
        return [OrderPlaced(**fields, order_id=derive_id("order", payload.upstream_ref), placed_at=AT)]


class Stopping:
    """A service that is asked to stop after a number of waits."""

    def __init__(self, after_sleeps: int) -> None:
        self.after = after_sleeps
        self.sleeps = 0

    @property
    def should_stop(self) -> bool:
        return self.sleeps >= self.after

    async def sleep(self, n: float) -> None:
        self.sleeps += 1


def test_the_state_of_a_revoked_partition_is_dropped_and_rebuilt_if_it_comes_back() -> None:
    log = records([submission("A"), submission("B")])
    fake = Log(log)
    core = PartitionedCore(PlaceOnce, fake.replay, 1_000_000)
    asyncio.run(core.handle(log[0]))

    assert core.forget("inbox", 0) and core.state_of("inbox", 0) is None
    assert not core.forget("inbox", 0)
    assert [o.payload.TYPE for o in asyncio.run(core.handle(log[1])).outputs] == ["OrderPlaced"]
    assert fake.replays == [0, 1] and core.state_of("inbox", 0) == {"A", "B"}


def test_a_long_rebuild_lets_other_tasks_run_while_it_folds() -> None:
    log = records([submission(f"R{n}") for n in range(2_001)])
    core = PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def rebuild_with_heartbeat() -> int:
        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        before = ticks
        await core.handle(log[-1])  # a first record at offset 2,000: the other 2,000 are folded first
        beating.cancel()
        return ticks - before

    assert asyncio.run(rebuild_with_heartbeat()) >= 2_000 // 500


def test_a_worker_drops_the_states_of_its_revoked_inbox_partitions(tmp_path: Any) -> None:
    from faust.types import TP

    from services.common.faust_app import make_faust_app
    from services.common.settings import ClusterSettings, WorkerSettings
    from services.intake import app as intake_app

    cluster, settings = ClusterSettings(), WorkerSettings(worker_id="unit", datadir=tmp_path)
    worker = intake_app.IntakeWorker(make_faust_app("intake", cluster, settings), cluster, settings)
    log = records([submission("A")])
    inbox = [Record(intake_app.INBOX, p, 0, r.key, r.value) for r in log for p in (0, 1)]
    worker.core = PartitionedCore(PlaceOnce, Log(log).replay, 1_000_000)
    for record in inbox:
        asyncio.run(worker.core.handle(record))

    asyncio.run(worker._on_revoked(None, {TP(intake_app.INBOX, 1), TP("h200.intake.commands", 0)}))

    assert worker.core.state_of(intake_app.INBOX, 0) == {"A"} and worker.core.state_of(intake_app.INBOX, 1) is None


class SlowLog:
    """Partitions 0..n of one inbox, each read with a wait before its first record (a broker's round trip), counting
    how many reads are under way at once."""

    def __init__(self, logs: dict[int, list[Record]]) -> None:
        self.logs = logs
        self.reading = 0
        self.most_at_once = 0

    async def replay(self, topic: str, partition: int, until: int) -> AsyncIterator[Record]:
        self.reading += 1
        self.most_at_once = max(self.most_at_once, self.reading)
        try:
            await asyncio.sleep(0.01)
            for record in self.logs[partition][:until]:
                yield record
        finally:
            self.reading -= 1


def test_the_stale_partitions_of_a_batch_are_rebuilt_two_at_a_time_to_the_state_one_by_one_gives() -> None:
    logs = {
        partition: [
            Record("inbox", partition, offset, b"bytedance", submission(f"P{partition}-{offset}"))
            for offset in range(3)
        ]
        for partition in range(5)
    }
    # A restarted worker's first batch: the last record of every partition, the first two of each decided before.
    batch = [logs[partition][2] for partition in range(5)]

    together = SlowLog(logs)
    worker = PartitionedCore(PlaceOnce, together.replay, 1_000_000)
    outcomes = asyncio.run(worker.handle_all(batch))

    one_by_one = SlowLog(logs)
    alone = PartitionedCore(PlaceOnce, one_by_one.replay, 1_000_000)
    singly = [asyncio.run(alone.handle(record)) for record in batch]

    assert together.most_at_once == 2 and one_by_one.most_at_once == 1
    assert [o.outputs for o in outcomes] == [o.outputs for o in singly]
    assert all(len(o.outputs) == 1 for o in outcomes)
    for partition in range(5):
        expected = {f"P{partition}-{offset}" for offset in range(3)}
        assert worker.state_of("inbox", partition) == alone.state_of("inbox", partition) == expected
    assert worker.rebuilds == 5


def test_a_rebuild_of_a_batch_that_keeps_failing_ends_every_rebuild_when_the_service_stops() -> None:
    class Stopping:
        should_stop = False

        async def sleep(self, n: float) -> None:
            self.should_stop = True

    async def broken(topic: str, partition: int, until: int) -> AsyncIterator[Record]:
        raise ConnectionError("broker away")
        yield  # pragma: no cover

    batch = [Record("inbox", partition, 4, b"bytedance", submission(f"P{partition}")) for partition in range(3)]
    worker = PartitionedCore(PlaceOnce, broken, 1_000_000, lifecycle=Stopping(), backoff=QUICK)
    with pytest.raises(StopRequestedError):
        asyncio.run(worker.handle_all(batch))
    assert worker.rebuilding == set() and worker.state_of("inbox", 0) is None
