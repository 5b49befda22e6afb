"""The check that each allocation went to an order approved at that moment, when the allocation was decided on a
tick or one of approval's markers: every allocation partition holds a copy of it under one id, and only the
partition that holds the pool decided anything on it (the e2e concurrent flow's "unknown to the book")."""

from __future__ import annotations

from builders_replay import World, at, batch, cleared, order, rules

from schemas.clock import ClockTicked
from services.replay.invariants import check


def test_an_allocation_decided_on_a_marker_is_checked_only_where_its_pool_is() -> None:
    world = World().publish(*rules(), *cleared("bytedance", 1_000))
    world.publish(ClockTicked(at=at(0)), producer="clock")
    world.publish(order("bytedance", "BD-1", 100, minute=1), batch("B1", 100, minute=2))
    assert world.allocations() == []  # approved after the markers: it waits for the next ones
    world.publish(ClockTicked(at=at(5)), producer="clock")

    [line] = world.allocations()
    assert (line.buyer_id, line.quantity) == ("bytedance", 100)
    assert [v.message for v in check(world.log()) if v.code == "not_approved_then"] == []
