"""Everything at once, settled only at the end: policies, orders of six buyers, batches, shipment reports,
a suspension, revocations and cancellations are published concurrently by four threads, with no wait between
them, and three races are staged on purpose (tests/e2e/logistics.py): a revocation against a shipment report of
the revoked order's line, a cancellation against the delivery of the cancelled order's line, a suspension against
the packing of the suspended order's line.

What each race decides depends on timing; what the log must show does not, and only that is asserted: the
invariants of domain.md (services.replay) and the protocol between services (services.ops.protocol) hold, every
order is placed once, and each chip counted once, by an oracle of our own below.
"""

from __future__ import annotations

import os
from collections import Counter
from random import Random
from typing import Any

from checks import placed_ids_by_order
from harness import StartSystem, Stream, System
from kafka import TopicPartition
from logistics import WATCHED, Reactor, Roles

from schemas import allocation, approval, fulfilment
from schemas import builders as s
from schemas.base import Message
from schemas.codec import decode
from schemas.intake import SubmitOrder
from schemas.supply import BatchManufactured
from schemas.topics import BY_NAME, EVENT_TOPICS
from services.ops import audit
from services.replay.records import INBOX

SEED = int(os.environ.get("H200_E2E_SEED", "20261201"))
"""The seed of the publishing order and of the shipment plans (timing still varies from run to run)."""
POOL = "cf"
QUOTA, ORDER = 600, 200
BATCHES, BATCH = 6, 300
REVOKED, SUSPENDED, CANCELLING = "cf-r", "cf-s", "cf-c"
BASE_REVOKED, BASE_CANCELLING, SHORT_LICENCE = "cf-x2", "cf-x1", "cf-x0"
BUYERS = (REVOKED, SUSPENDED, CANCELLING, SHORT_LICENCE, BASE_CANCELLING, BASE_REVOKED)
MAX_ROUNDS = 8


def policies() -> list[Message]:
    cleared = [
        m for buyer in BUYERS for m in s.cleared_buyer(buyer, QUOTA, licensed=400 if buyer == SHORT_LICENCE else None)
    ]
    return [
        s.allocation_rule("first_approved_first_served", pool=POOL),
        s.allocation_rule("pro_rata", pool=POOL, revision=2),
        *cleared,
        s.importer_revoked(BASE_REVOKED, revision=2, minute=90),
    ]


def orders() -> list[Message]:
    """Three orders of 200 per buyer; the three staged buyers order first (first approved, first served), and the
    cancelling buyer asks for more than its quota (a fourth order that a pending release may yet let through)."""
    made: list[Message] = [
        s.submit(buyer, f"{buyer}-{n}", ORDER, minute=1 + n * 10 + b, pool=POOL)
        for n in range(3)
        for b, buyer in enumerate(BUYERS)
        if (buyer, n) != (CANCELLING, 0)
    ]
    made.append(s.submit(CANCELLING, f"{CANCELLING}-0", 100, minute=0.5, pool=POOL))
    made.append(s.submit(CANCELLING, f"{CANCELLING}-3", 150, minute=40, pool=POOL))
    made.append(s.cancel(BASE_CANCELLING, f"{BASE_CANCELLING}-1", minute=45))
    return made


def batches() -> list[Message]:
    return [s.batch(f"CF-B{n}", BATCH, minute=30 + 20 * n, pool=POOL) for n in range(BATCHES)]


def shuffled(messages: list[Message], rng: Random) -> list[Message]:
    rng.shuffle(messages)
    return messages


def settle_with(system: System, reactor: Reactor) -> int:
    """Settle, let the reactor answer what it read meanwhile, again until it has nothing more to say."""
    for round_ in range(1, MAX_ROUNDS + 1):
        system.settle(timeout_s=120)
        ends = system.consumer.end_offsets(
            [TopicPartition(t, p) for t in WATCHED for p in range(BY_NAME[t].partitions)]
        )
        system.wait_until(
            "the reactor read the log to its end", lambda ends=ends: _caught_up(reactor, ends), timeout_s=30
        )
        before = reactor.sent
        reactor.settled()
        if reactor.sent == before:
            return round_
    raise AssertionError(f"the reactor still sends after {MAX_ROUNDS} settles")


def _caught_up(reactor: Reactor, ends: dict[Any, int]) -> bool:
    return all(reactor.positions.get(tp, 0) >= end for tp, end in ends.items())


def chips_counted_once(log: audit.Log) -> list[str]:
    """Our own oracle: a batch never gives out more than it holds, counting lines still allocated and lines that
    shipped and were given back otherwise than by a failed delivery; no order holds more than approved."""
    holds = {e.payload.batch_id: e.payload.quantity for e in log.of(BatchManufactured)}  # type: ignore[attr-defined]
    approved = {e.payload.order_id: e.payload.approved_quantity for e in log.of(approval.OrderApproved)}  # type: ignore[attr-defined]
    shipped = {
        e.payload.allocation_id  # type: ignore[attr-defined]
        for e in log.of(fulfilment.FulfilmentStepRecorded)
        if e.payload.step != "packed"  # type: ignore[attr-defined]
    }
    released = {e.payload.allocation_id: e.payload.why for e in log.of(allocation.AllocationReleased)}  # type: ignore[attr-defined]
    batch_out: Counter[str] = Counter()
    order_live: Counter[Any] = Counter()
    for e in log.of(allocation.ChipsAllocated):
        p: Any = e.payload
        why = released.get(p.allocation_id)
        if why is None or (p.allocation_id in shipped and why != "delivery_failed"):
            batch_out[p.batch_id] += p.quantity
        if why is None:
            order_live[p.order_id] += p.quantity
    problems = [f"batch {b}: {n} chips out, holds {holds.get(b)}" for b, n in batch_out.items() if n > holds.get(b, 0)]
    problems += [
        f"order {o}: {n} chips, approved {approved.get(o)}" for o, n in order_live.items() if n > approved.get(o, 0)
    ]
    return problems


def test_everything_at_once_keeps_every_invariant(start_system: StartSystem) -> None:
    system = start_system()
    rng = Random(SEED)
    roles = Roles(
        pool=POOL,
        revoked=REVOKED,
        cancelled=(CANCELLING, f"{CANCELLING}-0"),
        suspended=SUSPENDED,
        late_batch=s.batch("CF-LATE", BATCH, minute=200, pool=POOL),
    )
    reactor = Reactor(system.bootstrap, roles, SEED)
    submitted = [m for m in orders() if isinstance(m, SubmitOrder)]
    streams = [
        Stream(system.bootstrap, shuffled(messages, rng), chunk=3, pause_s=0)
        for messages in (policies(), orders(), batches())
    ]

    # Given China's use rules, the one policy published beforehand: a hold decided before any rule exists cites no
    # policy revision, which verify counts as a decision without its why
    system.publish([s.use_rules()])
    system.settle()

    # When policies, orders and batches are published at once while logistics and the governments react to the
    # log as it is written, and the system is left to settle only at the end
    reactor.start()
    for stream in streams:
        stream.start()
    for stream in streams:
        stream.finish()
    rounds = settle_with(system, reactor)
    reactor.stop()

    # Then every race was staged
    assert {"revocation", "cancel", "suspension", "reinstatement", "late_batch"} <= reactor.fired, reactor.fired
    assert {"packing_raced", "packing_raced (late)"} & reactor.fired

    # and the log keeps every invariant of domain.md, the allocation inbox included ("approved at that moment")
    log = audit.read_log(system.bootstrap, (*EVENT_TOPICS, INBOX))
    assert log.undecodable == 0
    assert audit.check_invariants(log) == []
    assert chips_counted_once(log) == []
    # and the protocol: every recall answered, no step after a cancelled recall or while suspended, every ended
    # order closed keeping what shipped and released for the rest, shipped within licence and quota
    assert audit.check_settled_protocol(system.bootstrap, log) == []
    # and every (buyer, upstream ref) placed exactly once
    placed = placed_ids_by_order(log)
    ours = {str(s.order_id(o.buyer_id, o.upstream_ref)) for o in submitted}
    assert {o: len(placed.get(o, ())) for o in ours} == dict.fromkeys(ours, 1)
    # and approval's markers reached allocation's inbox lane-only: each in the partition of its own lane, each
    # partition hearing every approval partition
    markers = [
        (record.partition, envelope.payload)
        for record in system.records(INBOX)
        if (envelope := decode(record.value)).type == "ApprovalsPassed"
    ]
    assert markers and all(marker.lane_only and marker.lane == partition for partition, marker in markers)
    heard = {(partition, marker.source_partition) for partition, marker in markers}
    sources = BY_NAME["h200.approval.inbox"].partitions
    assert heard == {(p, source) for p in range(BY_NAME[INBOX].partitions) for source in range(sources)}

    revoked = {e.payload.buyer_id for e in log.of(approval.ApprovalRevoked)}  # type: ignore[attr-defined]
    assert REVOKED in revoked
    kinds = Counter(e.type for e in log.events)
    print(
        f"\nsettled in {rounds} round(s); reactor sent {reactor.sent} message(s), refusals {reactor.refusals}; "
        f"fired {sorted(reactor.fired)}; "
        + ", ".join(
            f"{kind} {kinds[kind]}"
            for kind in (
                "ChipsAllocated",
                "AllocationReleased",
                "AllocationRecallRequested",
                "RecallAnswered",
                "AllocationSuspended",
                "AllocationReinstated",
                "OrderClosed",
                "ApprovalReleased",
                "FulfilmentStepRejected",
                "DeliveryFailed",
            )
        )
    )
