"""The clock: ticks strictly increase whatever the wall clock does, a tick's id follows from the clock and its
time, a tick at or before the last one is refused, and the process writes the wall time, says once that the wall
clock is behind, and never writes a tick at or before one it tried to write. No broker, no sleeping."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from schemas.clock import ClockTicked
from schemas.codec import decode
from schemas.envelope import make_envelope
from schemas.policy import ImporterAuthorised
from services.clock import app
from services.clock.app import Clock
from services.clock.settings import ClockSettings
from services.clock.ticks import STEP, last_tick, next_tick, refusal, tick_envelope

T = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def test_the_first_tick_is_the_wall_time_cut_to_the_millisecond() -> None:
    assert next_tick(None, T + timedelta(microseconds=999)) == T


def test_a_tick_is_the_wall_time_when_the_wall_clock_is_past_the_last_tick() -> None:
    assert next_tick(T, T + timedelta(seconds=1)) == T + timedelta(seconds=1)


@pytest.mark.parametrize("wall", [T, T + timedelta(microseconds=500), T - timedelta(hours=1)])
def test_a_wall_clock_at_or_behind_the_last_tick_gives_the_last_tick_plus_one_millisecond(wall: datetime) -> None:
    assert next_tick(T, wall) == T + STEP == T + MS


def test_ticks_strictly_increase_over_a_wall_clock_that_steps_back() -> None:
    walls = [T, T + 5 * MS, T + 2 * MS, T + 2 * MS, T - timedelta(seconds=3), T + 10 * MS]
    ticks: list[datetime] = []
    for wall in walls:
        ticks.append(next_tick(ticks[-1] if ticks else None, wall))
    assert ticks == [T, T + 5 * MS, T + 6 * MS, T + 7 * MS, T + 8 * MS, T + 10 * MS]


def test_a_tick_envelope_is_the_clocks_with_an_id_from_the_clock_and_the_time() -> None:
    tick = tick_envelope("h200", T)
    again = decode(tick.model_dump_json().encode())
    assert (tick.producer, tick.key, tick.occurred_at, tick.payload) == ("clock", "h200", T, ClockTicked(at=T))
    assert again.id == tick.id == tick_envelope("h200", T).id
    assert tick.id != tick_envelope("h200", T + MS).id != tick_envelope("other", T).id


def test_the_last_tick_is_the_latest_of_its_own_clock() -> None:
    policy = ImporterAuthorised(
        policy_id="cn-importer/x",
        revision=1,
        effective_at=T + timedelta(days=9),
        issued_by="MOFCOM",
        buyer_id="x",
        buyer_name="X",
    )
    other = make_envelope(policy, key="x", producer="ops", occurred_at=T, message_id=tick_envelope("z", T).id)
    found = [tick_envelope("h200", T + MS), tick_envelope("h200", T), tick_envelope("other", T + 9 * MS), other]
    assert last_tick(found, "h200") == T + MS
    assert last_tick(found[2:], "h200") is None


def test_a_tick_at_or_before_the_last_one_is_refused_and_a_later_one_is_not() -> None:
    assert refusal(None, T) is None
    assert refusal(T, T + MS) is None
    text = refusal(T, T + timedelta(microseconds=400))
    assert text is not None and "is not after the last tick" in text and T.isoformat() in text
    assert refusal(T, T - timedelta(days=1)) is not None


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[ClockTicked] = []
        self.fail = False

    def send(self, topic: str, key: bytes, value: bytes) -> FakeProducer:
        if self.fail:
            raise TimeoutError("no acknowledgement")
        envelope = decode(value)
        assert (topic, key, envelope.producer) == ("h200.clock", b"h200", "clock")
        assert isinstance(envelope.payload, ClockTicked)
        self.sent.append(envelope.payload)
        return self

    def get(self, timeout: float) -> None:
        return None


def test_the_process_ticks_with_the_wall_clock_and_says_once_that_it_is_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    walls = iter([T + 5 * MS, T, T + MS, T + 9 * MS])
    clock = Clock("unused:9092", ClockSettings(), wall=lambda: next(walls))
    clock.last = T + 2 * MS
    producer = FakeProducer()
    with caplog.at_level(logging.INFO, logger="h200.clock"):
        for _ in range(4):
            clock.tick_once(producer)  # type: ignore[arg-type]
    assert [t.at for t in producer.sent] == [T + 5 * MS, T + 6 * MS, T + 7 * MS, T + 9 * MS]
    said = [r.getMessage() for r in caplog.records]
    assert sum("is not after the last tick" in line for line in said) == 1
    assert sum("past the last tick again" in line for line in said) == 1


def test_a_tick_that_may_have_been_written_is_never_written_over_by_an_earlier_one() -> None:
    walls = iter([T, T - timedelta(seconds=1)])
    clock = Clock("unused:9092", ClockSettings(), wall=lambda: next(walls))
    producer = FakeProducer()
    producer.fail = True
    with pytest.raises(TimeoutError):
        clock.tick_once(producer)  # type: ignore[arg-type]
    producer.fail = False
    clock.tick_once(producer)  # type: ignore[arg-type]
    assert [t.at for t in producer.sent] == [T + MS]


def test_the_process_reads_the_last_tick_before_it_writes_and_stops_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = FakeProducer()
    clock = Clock("unused:9092", ClockSettings(interval_s=0.01), wall=lambda: T - timedelta(days=1))
    monkeypatch.setattr(app, "read_last_tick", lambda bootstrap, clock_id, timeout_s: T)
    monkeypatch.setattr(app, "new_producer", lambda bootstrap, timeout_s: producer)

    def send(topic: str, key: bytes, value: bytes) -> FakeProducer:
        result = FakeProducer.send(producer, topic, key, value)
        if len(producer.sent) == 3:
            clock.stop.set()
        return result

    monkeypatch.setattr(producer, "send", send)
    monkeypatch.setattr(producer, "close", lambda timeout: None, raising=False)
    assert clock.run() == 0
    assert [t.at for t in producer.sent] == [T + MS, T + 2 * MS, T + 3 * MS]
