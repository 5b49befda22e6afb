"""Ids of decisions caused by a copy that every partition receives (a tick, a rule for every buyer) differ per
partition; ids of every other decision are what they always were."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.base import Message
from schemas.clock import ClockTicked
from schemas.envelope import Arrival, Envelope, derive_id, make_envelope
from services.common.decider import wrap

AT = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def _tick(topic: str | None, partition: int = 0) -> Envelope[Any]:
    tick = make_envelope(ClockTicked(at=AT), key="h200", producer="clock", occurred_at=AT, message_id=derive_id("t"))
    return tick if topic is None else tick.arrived(Arrival(topic, partition, 7, AT))


def _decided(cause: Envelope[Any]) -> list[str]:
    payloads: list[Message] = [ClockTicked(at=AT), ClockTicked(at=AT)]
    return [str(envelope.id) for envelope in wrap("approval", cause, payloads)]


def test_two_partitions_deciding_on_the_same_broadcast_tick_give_different_ids() -> None:
    first = _decided(_tick("h200.approval.inbox", 0))
    second = _decided(_tick("h200.approval.inbox", 1))

    assert len(set(first + second)) == 4
    assert first == _decided(_tick("h200.approval.inbox", 0)), "the same partition derives the same ids again"


def test_a_cause_that_is_not_a_broadcast_copy_keeps_the_ids_derived_from_it_alone() -> None:
    without_arrival = _decided(_tick(None))

    assert without_arrival == [str(derive_id(derive_id("t"), "ClockTicked", index)) for index in (0, 1)]
    # h200.clock does not broadcast: a record read there is the one original, whatever its partition
    assert _decided(_tick("h200.clock", 0)) == without_arrival
