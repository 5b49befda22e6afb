"""The clock against a real broker: `h200 tick` writes one tick as the clock does and refuses one at or before the
last; the clock process starts after the last tick written even when its wall clock is behind, and stops when
asked. Each test uses its own clock id on h200.clock."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka.admin import KafkaAdminClient

from schemas.clock import ClockTicked
from schemas.codec import decode
from schemas.topics import BY_NAME
from services.clock.app import Clock
from services.clock.settings import ClockSettings
from services.clock.topic import TOPIC, read_last_tick
from services.ops.cli import main
from services.ops.kafka_clients import reader
from services.ops.topics import ensure_topics

T = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock_id(kafka_admin: KafkaAdminClient) -> str:
    assert ensure_topics(kafka_admin, (BY_NAME[TOPIC],)).problems == []
    return f"it-{uuid.uuid4().hex[:10]}"


def ticks_of(bootstrap: str, clock_id: str) -> list[tuple[str, datetime]]:
    with reader(bootstrap, consumer_timeout_ms=3000) as consumer:
        consumer.subscribe([TOPIC])
        found = [decode(record.value) for record in consumer]
    return [(e.producer, e.payload.at) for e in found if isinstance(e.payload, ClockTicked) and e.key == clock_id]


def test_h200_tick_writes_a_tick_and_refuses_one_not_after_it(
    kafka_bootstrap: str, clock_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tick = ["tick", "--clock-id", clock_id, "--bootstrap", kafka_bootstrap, "--at"]
    assert main([*tick, T.isoformat()]) == 0
    assert f"published a tick of clock {clock_id} at {T.isoformat()}" in capsys.readouterr().out
    for at in (T, T - timedelta(days=1)):
        assert main([*tick, at.isoformat()]) == 1
        assert "nothing written: refused" in capsys.readouterr().err
    assert main([*tick, (T + timedelta(seconds=1)).isoformat()]) == 0
    assert ticks_of(kafka_bootstrap, clock_id) == [("clock", T), ("clock", T + timedelta(seconds=1))]
    assert read_last_tick(kafka_bootstrap, clock_id) == T + timedelta(seconds=1)


def test_the_clock_process_ticks_after_the_last_tick_when_its_wall_clock_is_behind(
    kafka_bootstrap: str, clock_id: str
) -> None:
    assert main(["tick", "--clock-id", clock_id, "--bootstrap", kafka_bootstrap, "--at", T.isoformat()]) == 0
    clock = Clock(
        kafka_bootstrap, ClockSettings(clock_id=clock_id, interval_s=0.05), wall=lambda: T - timedelta(days=1)
    )
    runner = threading.Thread(target=clock.run)
    runner.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while clock.ticks < 3 and datetime.now(UTC) < deadline:
            clock.stop.wait(0.1)
    finally:
        clock.stop.set()
        runner.join(30)
    assert not runner.is_alive()
    found = ticks_of(kafka_bootstrap, clock_id)
    ms = timedelta(milliseconds=1)
    assert found[:4] == [("clock", T), ("clock", T + ms), ("clock", T + 2 * ms), ("clock", T + 3 * ms)]
    assert [at for _, at in found] == sorted({at for _, at in found})
