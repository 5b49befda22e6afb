"""The pure part of the clock: the time of the next tick, and the tick as an envelope. No I/O, no wall clock:
the process (services.clock.app) reads the wall clock and the last tick and passes both in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from schemas.base import Message
from schemas.clock import ClockTicked
from schemas.envelope import Envelope, derive_id, make_envelope

STEP = timedelta(milliseconds=1)
"""The least a tick moves business time on: the broker's and Kafka's timestamps are in milliseconds."""
PRODUCER = "clock"


def to_millisecond(moment: datetime) -> datetime:
    """`moment` cut to the millisecond, so a tick's `at` is exactly what a Kafka timestamp can carry."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def next_tick(last: datetime | None, wall: datetime) -> datetime:
    """The wall time (to the millisecond), unless that is not after the last tick: then the last tick plus 1 ms.
    Ticks strictly increase whatever the wall clock does (a restart on a machine whose clock is behind, a step
    back by NTP)."""
    now = to_millisecond(wall)
    if last is None or now > last:
        return now
    return last + STEP


def is_behind(last: datetime | None, wall: datetime) -> bool:
    """True when the wall clock is at or before the last tick: the next tick is not the wall time."""
    return last is not None and to_millisecond(wall) <= last


def tick_envelope(clock_id: str, at: datetime) -> Envelope[ClockTicked]:
    """The tick at `at`: its id follows from the clock and the time, so writing it twice is one fact."""
    return make_envelope(
        ClockTicked(clock_id=clock_id, at=at),
        key=clock_id,
        producer=PRODUCER,
        occurred_at=at,
        message_id=derive_id("tick", clock_id, at.isoformat()),
    )


def last_tick(envelopes: Iterable[Envelope[Message]], clock_id: str) -> datetime | None:
    """The latest tick of `clock_id` among `envelopes` (other messages and other clocks are ignored)."""
    times = [e.payload.at for e in envelopes if isinstance(e.payload, ClockTicked) and e.payload.clock_id == clock_id]
    return max(times, default=None)


def refusal(last: datetime | None, at: datetime) -> str | None:
    """Why a tick at `at` (given by an operator or a test) may not be written after `last`; None if it may."""
    if last is not None and to_millisecond(at) <= last:
        return (
            f"refused: a tick at {to_millisecond(at).isoformat()} is not after the last tick ({last.isoformat()}); "
            "ticks strictly increase, give a later --at"
        )
    return None
