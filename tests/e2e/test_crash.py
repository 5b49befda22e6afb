"""A process killed with SIGKILL in the middle of a stream, then restarted: nothing is lost, nothing is decided
twice, and the read model still tells the log's story. Duplicate records (a fact sent again after a crash,
under the same derived id) are tolerated by design: every consumer applies an id once.

One system serves every case of the module; each case trades in its own pool with its own buyers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from checks import (
    decisions_by_order,
    grants,
    outcome,
    placed_ids_by_order,
    read_model_disagreements,
    same_kind_same_cause,
)
from harness import Stream, System

from schemas import allocation, approval, fulfilment
from schemas import builders as s
from schemas.fulfilment import RecordFulfilmentStep
from services.ops import audit

BUYERS, ORDERS_PER_BUYER, LOT, QUOTA = 20, 10, 100, 800
BATCHES, BATCH = 10, 1_200
ONCE_PER_CAUSE = (
    approval.OrderApproved,
    approval.OrderDenied,
    approval.OrderHeld,
    allocation.ChipsAllocated,
    allocation.AllocationReleased,
    fulfilment.FulfilmentStepRecorded,
    fulfilment.DeliveryFailed,
)


def progress_of(system: System, victim: str) -> Callable[[], bool]:
    """True once the victim has recorded progress beyond its position now (a committed offset, for the
    projector its position in Redis)."""
    if victim == "projector":
        start = sum(system.store.positions().values())
        return lambda: sum(system.store.positions().values()) > start
    start = system.committed(victim)
    return lambda: system.committed(victim) > start


def kill_and_restart(system: System, victim: str, stream: Stream, progressed: Callable[[], bool]) -> str:
    """SIGKILL the victim once it has made progress on the stream, then start it again; what was pending then."""
    name, reader = ("projector", "projector") if victim == "projector" else (f"{victim}-1", f"h200-{victim}")
    system.wait_until(f"{name} made progress on the stream", progressed)
    backlog, unsent = system.lag().by_reader[reader], len(stream.payloads) - stream.sent
    system.process(name).kill()
    system.restart(name)
    assert unsent > 0, f"the stream had ended when {name} was killed: it was not killed mid-stream"
    return f"{backlog} record(s) unread, {unsent} message(s) not yet sent"


def shipment_reports(log: audit.Log, pool: str) -> list[RecordFulfilmentStep]:
    """Every live line of the pool packed and shipped; most delivered, every tenth lost at sea."""
    pools = pools_of_lines(log)
    reports: list[RecordFulfilmentStep] = []
    for n, line in enumerate(r for r in audit.ledger_rows(log) if pools[r["allocation_id"]] == pool):
        path = ("packed", "shipped", "lost") if n % 10 == 0 else ("packed", "shipped", "customs_cleared", "delivered")
        reports += s.steps(line["allocation_id"], *path, minute=600 + n)
    return reports


def pools_of_lines(log: audit.Log) -> dict[str, str]:
    return {str(e.payload.allocation_id): e.payload.pool_id for e in log.of(allocation.ChipsAllocated)}


@pytest.mark.parametrize("victim", ["intake", "approval", "allocation", "fulfilment", "projector"])
def test_a_service_killed_mid_stream_loses_nothing_and_repeats_nothing(module_system: System, victim: str) -> None:
    system = module_system
    pool = f"pool-{victim}"
    market = s.Market(victim, buyers=BUYERS, quota=QUOTA, lot=LOT, pool=pool, orders_per_buyer=ORDERS_PER_BUYER)
    system.publish(market.policies())
    system.settle()
    duplicates_before = system.log().duplicates

    # Given a stream of 200 orders and 10 batches arriving over a few seconds
    batches = [s.batch(f"{pool}-B{n}", BATCH, minute=5 + 20 * n, pool=pool) for n in range(BATCHES)]
    stream = Stream(system.bootstrap, s.interleave(market.orders(), batches, every=20), chunk=10, pause_s=0.25)
    if victim != "fulfilment":
        # When the victim is killed while it works through the stream, and started again
        progressed = progress_of(system, victim)
        stream.start()
        pending = kill_and_restart(system, victim, stream, progressed)
        stream.finish()
        system.settle()
    else:
        # fulfilment's own work is the shipments: it is killed while logistics reports them
        stream.start()
        stream.finish()
        system.settle()
        reports = Stream(system.bootstrap, shipment_reports(system.log(), pool), chunk=25, pause_s=0.25)
        progressed = progress_of(system, victim)
        reports.start()
        pending = kill_and_restart(system, victim, reports, progressed)
        reports.finish()
        system.settle()

    # Then every order was placed once and decided once, as the buyer's quota says
    log = system.log()
    placed, decided = placed_ids_by_order(log), decisions_by_order(log)
    ours = [str(s.order_id(o.buyer_id, o.upstream_ref)) for o in market.submitted]
    assert {o: len(placed.get(o, ())) for o in ours} == dict.fromkeys(ours, 1)
    assert {o: outcome(decided[o]) for o in ours if len(decided[o]) != 1} == {}
    approved = [o for o in ours if decided[o][0].type == "OrderApproved"]
    assert len(approved) == BUYERS * QUOTA // LOT
    assert audit.check_invariants(log) == []
    assert audit.check_settled_protocol(system.bootstrap, log) == []
    # no fact was decided twice under two ids (a duplicate record carries the same id)
    assert same_kind_same_cause(log, ONCE_PER_CAUSE) == []
    # the book handed out the whole supply (demand exceeds it), also after lost shipments came back
    held = sum(q for (buyer, _), q in grants(log).items() if buyer in market.buyer_ids)
    assert held == min(BATCHES * BATCH, BUYERS * QUOTA)
    if victim == "fulfilment":
        # every report was recorded once, none refused; every lost shipment's chips came back to the pool
        sent = {(str(r.allocation_id), r.step) for r in reports.payloads}
        recorded = Counter(
            (str(e.payload.allocation_id), e.payload.step) for e in log.of(fulfilment.FulfilmentStepRecorded)
        )
        assert {k: recorded[k] for k in sent if recorded[k] != 1} == {}
        pools = pools_of_lines(log)
        rejected = [e.payload for e in log.of(fulfilment.FulfilmentStepRejected)]
        assert [r for r in rejected if pools.get(str(r.allocation_id)) == pool] == []
        lost = {a for a, step in sent if step == "lost"}
        failed = Counter(str(e.payload.allocation_id) for e in log.of(fulfilment.DeliveryFailed))
        returned = Counter(
            str(e.payload.allocation_id)
            for e in log.of(allocation.AllocationReleased)
            if e.payload.why == "delivery_failed"
        )
        assert lost and {a: (failed[a], returned[a]) for a in lost} == dict.fromkeys(lost, (1, 1))
    assert read_model_disagreements(system.store, log) == []
    print(
        f"\n{victim}: killed with {pending}; the log now holds "
        f"{log.duplicates - duplicates_before} duplicate record(s) of this case (same id, applied once)"
    )
