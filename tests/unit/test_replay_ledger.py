"""The ledger folded from the log: its lines, its totals, the moment it shows and the hash that proves it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import chain

import pytest
from builders_replay import ORDER_BD, World, at, batch, cleared, order, rules, story
from fake_read_model import FakeReadModel

from schemas.allocation import ChipsAllocated
from schemas.approval import OrderApproved
from services.replay.eventlog import EventLog, build_log
from services.replay.ledger import Ledger, fold_ledger, make_ledger
from services.replay.live import live_ledger


@pytest.fixture(scope="module")
def world() -> World:
    return story()


@pytest.fixture(scope="module")
def log(world: World) -> EventLog:
    return world.log()


def test_the_ledger_says_who_got_which_batch_how_many_and_when(log: EventLog) -> None:
    ledger = fold_ledger(log.events)

    assert [(line.buyer, line.batch_id, line.quantity, line.allocated_at, line.status) for line in ledger.lines] == [
        ("bytedance", "B1", 500, at(60).isoformat(), "delivered"),
        ("bytedance", "B2", 100, at(120).isoformat(), "allocated"),
        ("alibaba", "B2", 300, at(120).isoformat(), "released"),
        ("tencent", "B2", 129, at(300).isoformat(), "allocated"),
        ("alibaba", "B2", 171, at(300).isoformat(), "allocated"),
    ]


def test_each_line_names_the_policy_revision_and_the_event_behind_it(log: EventLog) -> None:
    ledger = fold_ledger(log.events)
    batch_b1 = next(
        e for e in log.events if getattr(e.payload, "batch_id", None) == "B1" and e.type == "BatchManufactured"
    )

    first, *_, last = ledger.lines
    assert (first.policy_version, first.rule, first.cause_event_id) == (
        "allocation/h200@1",
        "first_approved_first_served",
        str(batch_b1.id),
    )
    failed = next(e for e in log.events if e.type == "DeliveryFailed")
    assert (last.policy_version, last.rule, last.cause_event_id) == ("allocation/h200@2", "pro_rata", str(failed.id))


def test_a_delivered_line_carries_its_shipping_and_delivery_times(log: EventLog) -> None:
    delivered = fold_ledger(log.events).lines[0]

    assert (delivered.shipped_at, delivered.delivered_at) == (at(240).isoformat(), at(360).isoformat())


def test_totals_per_buyer_per_batch_and_unallocated_stock_per_pool(log: EventLog) -> None:
    totals = fold_ledger(log.events).totals()

    assert totals["buyers"]["bytedance"] == {
        "requested": 600,
        "approved": 600,
        "allocated": 600,
        "shipped": 500,
        "delivered": 500,
        "released": 0,
    }
    assert totals["buyers"]["alibaba"] == {
        "requested": 500,
        "approved": 400,
        "allocated": 171,
        "shipped": 0,
        "delivered": 0,
        "released": 300,
    }
    assert totals["buyers"]["baidu"]["allocated"] == 0
    assert totals["batches"]["B2"] == {
        "pool_id": "h200",
        "quantity": 400,
        "allocated": 400,
        "shipped": 0,
        "delivered": 0,
        "released": 300,
        "unallocated": 0,
    }
    assert totals["pools"] == {"h200": {"quantity": 900, "allocated": 900, "unallocated": 0}}


def test_unallocated_stock_is_what_a_batch_holds_beyond_every_order_still_owed_chips() -> None:
    # Alibaba is still owed 400 - 171 chips, Tencent 300 - 129: a batch of 1,000 keeps 600.
    world = story().publish(batch("B3", 1_000, minute=600))

    totals = fold_ledger(world.log().events).totals()

    assert (totals["batches"]["B3"]["allocated"], totals["batches"]["B3"]["unallocated"]) == (400, 600)
    assert totals["pools"]["h200"] == {"quantity": 1_900, "allocated": 1_300, "unallocated": 600}


# --- as of a moment ----------------------------------------------------------------------------------------


def test_an_event_exactly_at_the_cut_is_included(log: EventLog) -> None:
    ledger = fold_ledger(log.events, as_of=at(120))

    assert ledger.as_of == at(120).isoformat()
    assert [(line.buyer, line.batch_id, line.quantity) for line in ledger.lines] == [
        ("bytedance", "B1", 500),
        ("bytedance", "B2", 100),
        ("alibaba", "B2", 300),
    ]


def test_an_event_a_microsecond_after_the_cut_is_left_out(log: EventLog) -> None:
    ledger = fold_ledger(log.events, as_of=at(120) - timedelta(microseconds=1))

    assert [(line.buyer, line.batch_id) for line in ledger.lines] == [("bytedance", "B1")]
    assert "B2" not in ledger.totals()["batches"]


def test_as_of_shows_each_line_as_it_stood_then(log: EventLog) -> None:
    ledger = fold_ledger(log.events, as_of=at(250))

    assert [(line.batch_id, line.status, line.shipped_at, line.delivered_at) for line in ledger.lines] == [
        ("B1", "shipped", at(240).isoformat(), None),
        ("B2", "allocated", None, None),
        ("B2", "shipped", at(240).isoformat(), None),
    ]


def _lines(world: World, as_of: datetime) -> list[tuple[str, str, int, str]]:
    ledger = fold_ledger(world.log().events, as_of=as_of)
    return [(line.buyer, line.batch_id, line.quantity, line.allocated_at) for line in ledger.lines]


def _batch_ready_after_the_approval(batch_first: bool) -> World:
    """ByteDance approved at minute 1, its batch ready at minute 60; `batch_first`: the batch reaches allocation
    before the approval, so the line is caused by the approval (its envelope dated minute 1) yet allocated at 60."""
    world = World().publish(*rules(), *cleared("bytedance", 1_000))
    if batch_first:
        return world.publish(batch("B1", 500, minute=60)).publish(order("bytedance", "BD-1", 600, minute=1))
    return world.publish(order("bytedance", "BD-1", 600, minute=1)).publish(batch("B1", 500, minute=60))


@pytest.mark.parametrize("batch_first", [False, True], ids=["batch_after_approval", "batch_arrives_first"])
def test_a_line_is_cut_on_its_allocation_time_whatever_order_its_inputs_arrived_in(batch_first: bool) -> None:
    world = _batch_ready_after_the_approval(batch_first)
    [allocated] = world.events("h200.allocations")
    assert isinstance(allocated.payload, ChipsAllocated) and allocated.payload.allocated_at == at(60)

    before = fold_ledger(world.log().events, as_of=at(59))

    assert before.lines == ()
    assert "B1" not in before.totals()["batches"]
    assert before.totals()["buyers"]["bytedance"]["approved"] == 600  # the approval was decided at minute 1
    assert _lines(world, at(60)) == [("bytedance", "B1", 500, at(60).isoformat())]  # exactly at the cut: in


def test_a_decision_caused_by_a_late_policy_is_cut_on_its_own_time_not_its_causes() -> None:
    # The order (minute 5) is held until its licence and authorisation, effective at minute 0, arrive after it:
    # the approval and the line they cause are dated minute 5. Their cause is dated minute 0 (and so were their
    # envelopes under cores that dated a decision by its cause): the cut reads the decision's own time.
    world = World().publish(*rules(), batch("B1", 500, minute=0)).publish(order("bytedance", "BD-1", 300, minute=5))
    world.publish(*cleared("bytedance", 1_000))
    approved = next(e for e in world.log().events if isinstance(e.payload, OrderApproved))
    cause = world.log().event(approved.causation_id)  # type: ignore[arg-type]
    assert cause is not None and (cause.occurred_at, approved.payload.decided_at) == (at(0), at(5))

    before = fold_ledger(world.log().events, as_of=at(5) - timedelta(microseconds=1))

    assert before.lines == ()
    assert "bytedance" not in before.totals()["buyers"]  # neither placed nor approved yet
    assert before.totals()["batches"]["B1"]["unallocated"] == 500
    at_the_cut = fold_ledger(world.log().events, as_of=at(5))
    assert _lines(world, at(5)) == [("bytedance", "B1", 300, at(5).isoformat())]
    assert at_the_cut.totals()["buyers"]["bytedance"]["approved"] == 300


def test_a_line_released_after_the_cut_is_still_live_as_of_it(log: EventLog) -> None:
    # Alibaba's B2 line is lost at sea and released at minute 300; as of a moment before, it is on its way.
    def alibaba_b2(as_of: datetime) -> tuple[str, str | None, bool]:
        line = next(
            line
            for line in fold_ledger(log.events, as_of=as_of).lines
            if (line.buyer, line.batch_id, line.allocated_at) == ("alibaba", "B2", at(120).isoformat())
        )
        return line.status, line.shipped_at, line.live

    assert alibaba_b2(at(300) - timedelta(microseconds=1)) == ("shipped", at(240).isoformat(), True)
    assert alibaba_b2(at(300)) == ("released", at(240).isoformat(), False)
    assert fold_ledger(log.events, as_of=at(299)).totals()["buyers"]["alibaba"]["released"] == 0


def test_a_full_replay_is_the_ledger_as_of_the_last_fact(log: EventLog) -> None:
    whole, late = fold_ledger(log.events), fold_ledger(log.events, as_of=at(100_000))

    assert whole.as_of is None and late.lines == whole.lines and late.totals() == whole.totals()


def test_the_moment_may_be_given_in_any_time_zone(log: EventLog) -> None:
    beijing = at(120).astimezone(timezone(timedelta(hours=8)))

    assert fold_ledger(log.events, as_of=beijing) == fold_ledger(log.events, as_of=at(120))


# --- the hash ----------------------------------------------------------------------------------------------


def test_the_ledger_hash_is_the_same_on_every_replay(log: EventLog) -> None:
    assert fold_ledger(log.events).ledger_hash == fold_ledger(log.events).ledger_hash


def test_the_ledger_hash_does_not_depend_on_how_partitions_interleave(log: EventLog) -> None:
    reversed_partitions = chain.from_iterable(reversed(log.by_partition()))

    assert fold_ledger(reversed_partitions).ledger_hash == fold_ledger(log.events).ledger_hash


def test_a_record_written_twice_counts_once(world: World, log: EventLog) -> None:
    records = world.records(log.topics)
    repeated = [*records, *(r for r in records if r.topic == "h200.allocations")]

    again = build_log(repeated, log.topics)

    assert again.duplicates == len(world.events("h200.allocations"))
    assert fold_ledger(again.events).ledger_hash == fold_ledger(log.events).ledger_hash


def test_the_ledger_hash_changes_with_any_line_total_or_moment(log: EventLog) -> None:
    ledger = fold_ledger(log.events)
    first = ledger.lines[0]

    changed = [
        make_ledger(None, [replace(first, quantity=499), *ledger.lines[1:]], ledger.stock, ledger.demand),
        make_ledger(None, [replace(first, status="shipped"), *ledger.lines[1:]], ledger.stock, ledger.demand),
        make_ledger(
            None, [replace(first, cause_event_id=str(ORDER_BD)), *ledger.lines[1:]], ledger.stock, ledger.demand
        ),
        make_ledger(None, ledger.lines[1:], ledger.stock, ledger.demand),
        make_ledger(None, ledger.lines, [replace(ledger.stock[0], quantity=501)], ledger.demand),
        Ledger(at(10_000).isoformat(), ledger.lines, ledger.stock, ledger.demand),
    ]

    assert len({ledger.ledger_hash, *(other.ledger_hash for other in changed)}) == 1 + len(changed)


def test_the_hash_covers_the_lines_not_the_order_they_were_found_in(log: EventLog) -> None:
    ledger = fold_ledger(log.events)

    assert make_ledger(None, reversed(ledger.lines), ledger.stock, ledger.demand).ledger_hash == ledger.ledger_hash


# --- the live read model -----------------------------------------------------------------------------------


def test_a_read_model_built_by_the_projector_from_the_log_has_the_replayed_hash(log: EventLog) -> None:
    read_model = FakeReadModel().apply(log.events)

    assert live_ledger(read_model).ledger_hash == fold_ledger(log.events).ledger_hash  # type: ignore[arg-type]


def test_a_read_model_that_missed_an_event_has_another_hash(log: EventLog) -> None:
    delivered = next(e for e in log.events if getattr(e.payload, "step", None) == "delivered")
    read_model = FakeReadModel().apply(e for e in log.events if e.id != delivered.id)

    assert live_ledger(read_model).ledger_hash != fold_ledger(log.events).ledger_hash  # type: ignore[arg-type]
