"""Decisions in business time, through the processes with the clock ticking (docs/time.md): a policy published
ahead of its effective_at changes nothing until the clock reaches it, and a licence ends on the tick that passes
its valid_until. Everything is published at once, nothing settled in between; the topics are polled.

Times are relative to the wall clock: the clock ticks wall time and the broker stamps the inboxes with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import StartSystem, System

from schemas import allocation, approval
from schemas import builders as s
from schemas.base import Message
from schemas.policy import ExportLicenceIssued, ImporterAuthorised
from services.ops import audit

POOL = "bt"
FIRST, SECOND = "bt-first", "bt-second"
AUTHORISED_AFTER = timedelta(seconds=20)
"""The second buyer's import authorisation takes effect this long after it is published."""
EXPIRES_AFTER = timedelta(seconds=40)
"""The first buyer's US licence ends this long after it is published."""
WAIT_S = 180.0
DECISIONS = (approval.OrderHeld, approval.OrderApproved, approval.OrderDenied)


def first_licence(now: datetime) -> ExportLicenceIssued:
    return ExportLicenceIssued(
        policy_id=f"us-licence/{s.licence_id(FIRST)}",
        revision=1,
        effective_at=now - timedelta(hours=1),
        issued_by=s.BIS,
        licence_id=s.licence_id(FIRST),
        buyer_id=FIRST,
        quantity=1_000,
        valid_from=now - timedelta(hours=1),
        valid_until=now + EXPIRES_AFTER,
    )


def second_importer(now: datetime) -> ImporterAuthorised:
    return ImporterAuthorised(
        policy_id=f"cn-importer/{SECOND}",
        revision=1,
        effective_at=now + AUTHORISED_AFTER,
        issued_by=s.MOFCOM,
        buyer_id=SECOND,
        buyer_name="Second",
    )


def publish_at_once(system: System, groups: Sequence[Sequence[Message]]) -> None:
    errors: list[BaseException] = []

    def send(messages: Sequence[Message]) -> None:
        try:
            system.publish(messages)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def eventually(system: System, what: str, found: Callable[[audit.Log], Any], timeout_s: float = WAIT_S) -> Any:
    """Read the log every second until `found(log)` is truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        system.supervisor.check_alive()
        value = found(system.log())
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout_s:.0f} s: {what}\n{system.tails(40)}")
        time.sleep(1.0)


def of_order(log: audit.Log, order: str, *types: type[Message]) -> list[Any]:
    return [e.payload for e in log.of(*types) if str(e.payload.order_id) == order]


def test_a_later_policy_waits_for_its_time_and_an_ended_licence_expires_the_approval(
    start_system: StartSystem,
) -> None:
    system = start_system()
    # The ground rules are known first (a hold cites the revisions it applied, and before them there are none)
    system.publish([s.use_rules(), s.allocation_rule(pool=POOL)])
    system.settle()
    now = datetime.now(UTC)
    first_order = s.submit(FIRST, "BT-1", 1_000, pool=POOL).model_copy(update={"submitted_at": now})
    second_order = s.submit(SECOND, "BT-2", 300, pool=POOL).model_copy(update={"submitted_at": now})
    first_id, second_id = str(s.order_id(FIRST, "BT-1")), str(s.order_id(SECOND, "BT-2"))
    valid_until, effective_at = now + EXPIRES_AFTER, now + AUTHORISED_AFTER

    # Given the first buyer cleared on a licence that ends in 40 s, the second licensed and given a quota but
    # authorised by China only from 20 s on; when both order and a batch of 600 arrives, all at once
    publish_at_once(
        system,
        [
            [
                first_licence(now),
                s.importer(FIRST),
                s.quota(FIRST, 1_000),
                s.licence(SECOND, 1_000),
                s.quota(SECOND, 1_000),
                second_importer(now),
            ],
            [first_order, second_order],
            [s.batch("BT-B1", 600, pool=POOL).model_copy(update={"ready_at": now})],
        ],
    )

    # Then the second buyer's order is held until the authorisation takes effect, and approved only then
    second = eventually(
        system,
        "the second buyer's order approved",
        lambda log: of_order(log, second_id, *DECISIONS) if of_order(log, second_id, approval.OrderApproved) else None,
    )
    assert [type(d).__name__ for d in second][:1] == ["OrderHeld"], second
    held = second[0]
    assert held.decided_at < effective_at, (held.decided_at, effective_at)
    assert "importer_not_authorised" in {r.code for r in held.reasons}
    approved = [d for d in second if isinstance(d, approval.OrderApproved)]
    assert len(approved) == 1 and approved[0].decided_at >= effective_at, (approved, effective_at)

    # And the first buyer, approved at once and given the whole batch, has what it was not given expired when
    # its licence ends: its unshipped lines recalled and the order closed as expired
    log = eventually(
        system,
        "the first buyer's order closed",
        lambda log: log if of_order(log, first_id, allocation.OrderClosed) else None,
    )
    first_approved = of_order(log, first_id, approval.OrderApproved)
    assert len(first_approved) == 1 and first_approved[0].decided_at < valid_until
    lines = of_order(log, first_id, allocation.ChipsAllocated)
    assert sum(line.quantity for line in lines) == 600, lines
    assert all(line.allocated_at < valid_until for line in lines), lines
    expired = of_order(log, first_id, approval.ApprovalExpired)
    assert len(expired) == 1, expired
    assert expired[0].decided_at >= valid_until and expired[0].licence_id == s.licence_id(FIRST)
    recalled = of_order(log, first_id, allocation.AllocationRecallRequested)
    assert sorted(str(r.allocation_id) for r in recalled) == sorted(str(line.allocation_id) for line in lines)
    closed = of_order(log, first_id, allocation.OrderClosed)
    assert [(c.why, c.kept_quantity) for c in closed] == [("expired", 0)], closed
    assert closed[0].closed_at >= valid_until

    # And the chips that came back went to the second buyer, who is still owed them
    log = eventually(
        system,
        "the second buyer given the first buyer's chips",
        lambda log: log if sum(p.quantity for p in of_order(log, second_id, allocation.ChipsAllocated)) else None,
    )
    given = of_order(log, second_id, allocation.ChipsAllocated)
    assert sum(p.quantity for p in given) == 300 and {p.batch_id for p in given} == {"BT-B1"}, given
    assert all(p.allocated_at >= valid_until for p in given), given
    assert audit.check_invariants(log) == []
