"""The demo's and the e2e tier's audit of the protocol between services (services.ops.protocol), on a log made by
the real cores: a revocation's recall round trip keeps it; a log missing a close, an answer or a release, or with a
step after a cancelled recall, breaks it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from builders_replay import World, at, revoked_story

from schemas.envelope import Envelope
from schemas.fulfilment import FulfilmentStepRecorded
from services.ops.protocol import check_protocol
from services.replay.eventlog import EventLog


def inbox(world: World) -> dict[int, list[Envelope[Any]]]:
    return {p: list(found) for (topic, p), found in world.partitions.items() if topic == "h200.fulfilment.commands"}


def without(log: EventLog, kind: str) -> EventLog:
    kept = [(e, s) for e, s in zip(log.events, log.spots, strict=True) if e.type != kind]
    return EventLog(events=[e for e, _ in kept], spots=[s for _, s in kept], inbox=log.inbox, topics=log.topics)


def test_a_revocation_round_trip_keeps_the_protocol() -> None:
    world = revoked_story()

    assert check_protocol(world.log(), inbox(world)) == []


def test_a_close_an_answer_or_a_release_missing_is_named() -> None:
    world = revoked_story()
    log = world.log()

    assert any("ended but was closed 0 times" in p for p in check_protocol(without(log, "OrderClosed"), inbox(world)))
    assert any("answered 0 times" in p for p in check_protocol(without(log, "RecallAnswered"), inbox(world)))
    released = check_protocol(without(log, "ApprovalReleased"), inbox(world))
    assert any("released [], due 300" in p for p in released)


def test_a_step_recorded_after_a_cancelled_recall_is_named() -> None:
    world = revoked_story()
    log = world.log()
    line = next(e for e in log.events if e.type == "RecallAnswered")
    p: Any = line.payload
    recorded = FulfilmentStepRecorded(
        **{k: getattr(p, k) for k in ("allocation_id", "pool_id", "order_id", "buyer_id", "batch_id", "quantity")},
        step="packed",
        cause_event_id=line.id,
        at=at(300),
    )
    log.events.append(line.model_copy(update={"payload": recorded, "id": uuid4(), "type": recorded.TYPE}))
    log.spots.append(log.spots[-1])

    assert any("recorded after its recall was cancelled" in p for p in check_protocol(log, inbox(world)))
