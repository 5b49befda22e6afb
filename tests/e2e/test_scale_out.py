"""Two workers of intake and two of approval split their inbox partitions; each order is still decided once."""

from __future__ import annotations

from collections import Counter

from checks import decisions_by_order, grants, outcome, placed_ids_by_order, read_model_disagreements
from harness import StartSystem

from schemas import approval, intake
from schemas import builders as s
from services.ops import audit

CLEARED, UNAUTHORISED, DENIED = range(15), range(15, 18), range(18, 20)
QUOTA, LOT = 350, 100


def test_two_workers_share_the_partitions(start_system: StartSystem) -> None:
    system = start_system(instances={"intake": 2, "approval": 2})
    market = s.Market("m", buyers=20, quota=QUOTA, lot=LOT, orders_per_buyer=5)
    buyer = market.buyer_ids
    for service in ("intake", "approval"):
        owners = system.assignments(service)
        assert len(owners) == 2 and all(owners.values()), owners

    # Given 15 buyers cleared for 350 chips each, 3 licensed but not authorised importers, 2 denied parties
    system.publish(
        [
            s.use_rules(),
            *(m for n in CLEARED for m in s.cleared_buyer(buyer[n], QUOTA)),
            *(s.licence(buyer[n], QUOTA) for n in UNAUTHORISED),
            *(m for n in DENIED for m in s.cleared_buyer(buyer[n], QUOTA)),
            *(s.denied_party(buyer[n], revision=r) for r, n in enumerate(DENIED, start=1)),
            s.allocation_rule(),
        ]
    )
    system.settle()

    # When each buyer sends five orders of 100 chips, and two batches arrive meanwhile
    orders = market.orders()
    system.publish([*orders, s.batch("TSMC-M1", 3_000, minute=30), s.batch("TSMC-M2", 1_000, minute=60)])
    system.settle()

    # Then every order is placed once and decided exactly once
    log = system.log()
    placed = placed_ids_by_order(log)
    assert len(orders) == 100
    assert {str(s.order_id(o.buyer_id, o.upstream_ref)) for o in orders} == set(placed)
    assert [o for o, found in placed.items() if len(found) != 1] == []
    assert log.of(intake.OrderSubmissionRejected) == []
    decided = decisions_by_order(log)
    assert {o: outcome(decided[o]) for o in placed if len(decided[o]) != 1} == {}
    approvals = Counter(str(e.payload.order_id) for e in log.of(approval.OrderApproved))
    assert [o for o, n in approvals.items() if n > 1] == []

    # each buyer's orders were decided in the order it sent them, whichever worker held its partition
    by_buyer: dict[str, list[tuple[str, int]]] = {b: [] for b in buyer}
    for order in orders:
        (event,) = decided[str(s.order_id(order.buyer_id, order.upstream_ref))]
        by_buyer[order.buyer_id].append((event.type, getattr(event.payload, "approved_quantity", 0)))
    cleared = [("OrderApproved", 100)] * 3 + [("OrderApproved", 50), ("OrderDenied", 0)]
    assert {b: by_buyer[buyer[b]] for b in CLEARED} == {b: cleared for b in CLEARED}
    assert {b: by_buyer[buyer[b]] for b in UNAUTHORISED} == {b: [("OrderHeld", 0)] * 5 for b in UNAUTHORISED}
    assert {b: by_buyer[buyer[b]] for b in DENIED} == {b: [("OrderDenied", 0)] * 5 for b in DENIED}

    # and the book hands out all 4,000 chips of supply (5,250 approved), the log is sound, the read model agrees
    assert sum(grants(log).values()) == 4_000
    assert audit.check_invariants(log) == []
    assert read_model_disagreements(system.store, log) == []
    for service in ("intake", "approval"):
        assert len(system.assignments(service)) == 2, f"a {service} worker left the group"
