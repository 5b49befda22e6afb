"""The read side understands time passing: a licence that expires on a tick ends its approval (ApprovalExpired), the
order book recalls the unshipped line, closes the order as expired and approval gives back the rest, while
approval's ApprovalsPassed markers go by on every lane. The projector and replay/verify show it, quietly.

The log is the story's (real cores) with the expiry written as approval, allocation and fulfilment write it
(`World.record`): the read side is checked against the contract, whichever core version wrote the facts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders_replay import ORDER_BD, POOL, T0, World, story
from fake_read_model import FakeReadModel

from schemas.allocation import AllocationRecallRequested, AllocationReleased, ChipsAllocated, OrderClosed
from schemas.approval import ApprovalExpired, ApprovalReleased, OrderApproved
from schemas.base import PolicyRef, Reason
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import order_id_for
from schemas.fulfilment import RecallAnswered
from schemas.policy import ExportLicenceIssued, TrancheQuotaSet
from schemas.topics import BY_NAME, EVENT_TOPICS
from services.common.records import Record
from services.ops.cli import main
from services.projector.app import to_pending
from services.replay import commands
from services.replay.eventlog import EventLog
from services.replay.ledger import fold_ledger
from services.replay.live import live_ledger
from services.replay.records import CLOCK
from services.replay.verify import verify

EXPIRY = T0 + timedelta(days=365)
"""The valid_until of ByteDance's licence in the story."""
LICENCE = PolicyRef(policy_id="us-licence/bytedance", revision=1)
QUOTA = PolicyRef(policy_id="cn-quota/T1/bytedance", revision=1)
TOPICS = (*EVENT_TOPICS, CLOCK)
"""Verify's topics but the allocation inbox: the expiry's allocation facts were not decided by the core run here."""


def _line(world: World, buyer: str, batch: str) -> ChipsAllocated:
    return next(a for a in world.allocations() if a.buyer_id == buyer and a.batch_id == batch)


def _fields(line: ChipsAllocated) -> dict[str, Any]:
    names = ("allocation_id", "pool_id", "order_id", "buyer_id", "batch_id", "quantity")
    return {name: getattr(line, name) for name in names}


def expired_story() -> World:
    """ByteDance's licence ends at EXPIRY: of its 600 chips, the 500 of B1 were delivered, the 100 of B2 had not
    left; those are recalled and go back to the pool, the order closes keeping 500 and 100 are given back."""
    world = story()
    unshipped = _line(world, "bytedance", "B2")
    tick = world.record(ClockTicked(at=EXPIRY), "clock", EXPIRY)
    reason = Reason(code="licence_expired", message="BIS-BYTEDANCE ended at its valid_until", gate="us_export")
    decision = {"order_id": ORDER_BD, "buyer_id": "bytedance", "pool_id": POOL, "decided_at": EXPIRY}
    expired = world.record(
        ApprovalExpired(
            **decision, policy_refs=(LICENCE,), cause_event_id=tick.id, licence_id="BIS-BYTEDANCE", reason=reason
        ),
        "approval",
        EXPIRY,
        tick,
    )
    for lane in range(BY_NAME["h200.approvals"].partitions):
        for source in range(BY_NAME["h200.approval.inbox"].partitions):
            marker = ApprovalsPassed(source_partition=source, sources=6, lane=lane, lanes=3, at=EXPIRY)
            world.record(marker, "approval", EXPIRY, tick)
    line = _fields(unshipped)
    recall = world.record(
        AllocationRecallRequested(**line, why="approval_revoked", cause_event_id=expired.id, requested_at=EXPIRY),
        "allocation",
        EXPIRY,
        expired,
    )
    answer = world.record(
        RecallAnswered(**line, outcome="cancelled", stage="allocated", cause_event_id=recall.id, at=EXPIRY),
        "fulfilment",
        EXPIRY,
        recall,
    )
    world.record(
        AllocationReleased(**line, why="approval_revoked", cause_event_id=answer.id, released_at=EXPIRY),
        "allocation",
        EXPIRY,
        answer,
    )
    closed = world.record(
        OrderClosed(
            order_id=ORDER_BD,
            pool_id=POOL,
            buyer_id="bytedance",
            approved_quantity=600,
            kept_quantity=500,
            why="expired",
            cause_event_id=answer.id,
            closed_at=EXPIRY,
        ),
        "allocation",
        EXPIRY,
        answer,
    )
    released = ApprovalReleased(
        **decision,
        policy_refs=(LICENCE, QUOTA),
        cause_event_id=closed.id,
        licence_id="BIS-BYTEDANCE",
        tranche_id="T1",
        quantity=100,
        why="expired",
    )
    world.record(released, "approval", EXPIRY, closed)
    return world


@pytest.fixture(scope="module")
def world() -> World:
    return expired_story()


@pytest.fixture(scope="module")
def log(world: World) -> EventLog:
    return world.log(TOPICS)


def test_verify_finds_no_violation_in_a_log_with_an_expiry_and_approval_markers(log: EventLog) -> None:
    report = verify(log)

    assert report.undecodable == []
    assert report.violations == []
    assert report.trail.violations == [], [str(v) for v in report.trail.violations]
    assert report.trail.causes_checked  # the tick behind the expiry is found on the clock
    assert report.stable and report.ok


def test_the_projector_shows_the_order_expired_and_closed_with_what_it_kept(log: EventLog) -> None:
    read_model = FakeReadModel().apply(log.events)

    order = read_model.data[f"h200:order:{ORDER_BD}"]
    assert (order["status"], order["closed"], order["kept_quantity"]) == ("expired", "expired", "500")
    assert read_model.data["h200:buyer:bytedance"]["released"] == "100"
    assert any("licence_expired" in entry for entry in read_model.data[f"h200:order:{ORDER_BD}:trail"])
    line = read_model.data[f"h200:line:{_line_id(log)}"]
    assert (line["status"], line["recall"]) == ("released", "cancelled")
    assert live_ledger(read_model).ledger_hash == fold_ledger(log.events).ledger_hash  # type: ignore[arg-type]


def test_the_projector_takes_every_record_of_the_log_markers_included_and_dead_letters_none(world: World) -> None:
    records = world.records(EVENT_TOPICS)
    assert any(b'"ApprovalsPassed"' in (r.value or b"") for r in records)

    for record in records:
        as_read = Record(*record.spot, record.key, record.value, record.headers, record.timestamp_ms)
        pending, error = to_pending(as_read, "h200", 1_000_000)
        assert error is None, (record.spot, error)
        assert not any(op[1] == "h200:dead_letters" for op in pending.ops)


def test_approval_markers_write_nothing_to_the_read_models(world: World) -> None:
    markers = [e for e in world.events("h200.approvals") if isinstance(e.payload, ApprovalsPassed)]
    assert len(markers) == 18
    assert all(FakeReadModel().apply([marker]).data == {} for marker in markers)


def test_as_of_shows_the_recalled_line_live_before_the_expiry_and_released_at_it(log: EventLog) -> None:
    line = _line_id(log)
    before = {found.allocation_id: found for found in fold_ledger(log.events, EXPIRY - timedelta(microseconds=1)).lines}
    at_expiry = {found.allocation_id: found for found in fold_ledger(log.events, EXPIRY).lines}

    assert before[line].status == "allocated"
    assert at_expiry[line].status == "released"
    assert fold_ledger(log.events, EXPIRY).canonical()["lines"] == fold_ledger(log.events).canonical()["lines"]
    buyer = fold_ledger(log.events).totals()["buyers"]["bytedance"]
    assert (buyer["allocated"], buyer["delivered"], buyer["released"]) == (500, 500, 100)


@pytest.mark.parametrize(("approved", "exceeded"), [(500, False), (501, True)])
def test_chips_delivered_under_an_expired_approval_stay_counted_against_licence_and_quota(
    approved: int, exceeded: bool
) -> None:
    # The licence and the tranche are renewed after the expiry, for 1,000 chips each: ByteDance keeps the 500 it
    # was delivered, so a new order may take 500 more, not 501.
    world = expired_story()
    later = EXPIRY + timedelta(days=1)
    renewed = [
        ExportLicenceIssued(
            policy_id="us-licence/bytedance",
            revision=2,
            effective_at=later,
            issued_by="BIS",
            licence_id="BIS-BYTEDANCE",
            buyer_id="bytedance",
            quantity=1_000,
            valid_from=later,
            valid_until=later + timedelta(days=365),
        ),
        TrancheQuotaSet(
            policy_id="cn-quota/T1/bytedance",
            revision=2,
            effective_at=later,
            issued_by="MOFCOM",
            tranche_id="T1",
            buyer_id="bytedance",
            quantity=1_000,
            opens_at=T0,
            closes_at=later + timedelta(days=365),
        ),
    ]
    cause, _ = (world.record(policy, "ops", later) for policy in renewed)
    second = OrderApproved(
        order_id=order_id_for("bytedance", "BD-2"),
        buyer_id="bytedance",
        pool_id=POOL,
        policy_refs=(
            PolicyRef(policy_id="us-licence/bytedance", revision=2),
            PolicyRef(policy_id="cn-quota/T1/bytedance", revision=2),
        ),
        cause_event_id=cause.id,
        decided_at=later + timedelta(hours=1),
        requested_quantity=approved,
        approved_quantity=approved,
        licence_id="BIS-BYTEDANCE",
        tranche_id="T1",
    )
    world.record(second, "approval", later + timedelta(hours=1), cause)

    codes = sorted(v.code for v in verify(world.log(TOPICS)).violations)

    assert codes == (["licence_exceeded", "quota_exceeded"] if exceeded else [])


def _line_id(log: EventLog) -> str:
    """The line recalled at the expiry: ByteDance's 100 chips of B2."""
    released = next(
        e.payload for e in log.events if isinstance(e.payload, AllocationReleased) and e.occurred_at == EXPIRY
    )
    return str(released.allocation_id)


def test_h200_verify_reads_the_clock_so_a_decision_caused_by_a_tick_has_a_known_cause(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def read_topics(bootstrap: str, topics: Any, stream: object = None, starts: object = None) -> Any:
        asked.extend(topics)
        return iter(world.records(topics))

    def read_at(bootstrap: str, spots: Any) -> Any:  # the few records a divergence shows are read again
        wanted = set(spots)
        return {record.spot: record for record in world.records() if record.spot in wanted}

    monkeypatch.setattr(commands, "read_topics", read_topics)
    monkeypatch.setattr(commands, "read_at", read_at)

    main(["verify", "--no-live", "--bootstrap", "kafka:9092"])

    out = capsys.readouterr().out
    assert CLOCK in asked
    assert "decisions record why ...... ok" in out, out
    assert "unknown_cause" not in out
