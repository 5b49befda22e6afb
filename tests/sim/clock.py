"""The clock process as the simulator plays it: ClockTicked(at) on h200.clock, strictly increasing, at the world's
time. Approval and allocation copy every tick into every partition of their inboxes (the routes of the apps)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.clock import ClockTicked
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.routing import record_key


def tick(at: datetime) -> Envelope[Any]:
    """One tick: a tick of one clock at one time is one fact (its id), whoever replays it."""
    payload = ClockTicked(at=at)
    return make_envelope(
        payload, key=record_key(payload), producer="clock", occurred_at=at, message_id=derive_id("sim-clock", at)
    )
