"""An order's whole life through the four services as processes: placed, decided by both governments,
allocated from scarce batches, shipped and delivered; a lost shipment's chips go back to the pool."""

from __future__ import annotations

import socket
import urllib.request

from checks import decisions_by_order, grants, read_model_disagreements
from harness import StartSystem

from schemas import allocation, approval, fulfilment
from schemas import builders as s
from services.ops import audit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def page(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return answer.status, answer.read().decode()


def test_the_four_services_place_approve_allocate_and_ship(start_system: StartSystem) -> None:
    allocation_port, projector_port = free_port(), free_port()
    system = start_system(
        env={"H200_ALLOCATION_WEB_PORT": str(allocation_port), "H200_PROJECTOR_METRICS_PORT": str(projector_port)}
    )

    # Given both governments' rules: three buyers cleared (Alibaba's licence covers only 400 chips), Baidu
    # licensed by the US but not authorised by China, SenseTime cleared by China but on the US denied list.
    system.publish(
        [
            s.use_rules(),
            *s.cleared_buyer("bytedance", 1_000),
            *s.cleared_buyer("alibaba", 1_000, licensed=400),
            *s.cleared_buyer("tencent", 300),
            s.licence("baidu", 1_000),
            *s.cleared_buyer("sensetime", 1_000),
            s.denied_party("sensetime", revision=1),
            s.allocation_rule("first_approved_first_served"),
        ]
    )
    system.settle()

    # When each buyer orders, one after the other: "first approved" is the order in which approval decides (when
    # it learns of each order, docs/time.md), never the submitted_at a sender claims
    orders = {
        "bytedance": s.submit("bytedance", "BD-1", 600, minute=1),
        "alibaba": s.submit("alibaba", "AL-1", 500, minute=2),
        "tencent": s.submit("tencent", "TC-1", 300, minute=3),
        "baidu": s.submit("baidu", "BA-1", 200, minute=4),
        "sensetime": s.submit("sensetime", "ST-1", 100, minute=5),
    }
    for placed in orders.values():
        system.publish([placed])
        system.settle()

    # Then each order is decided once, for the reasons the policies give
    log = system.log()
    decided = decisions_by_order(log)
    first = {buyer: decided[str(s.order_id(buyer, o.upstream_ref))] for buyer, o in orders.items()}
    assert {buyer: [e.type for e in events] for buyer, events in first.items()} == {
        "bytedance": ["OrderApproved"],
        "alibaba": ["OrderApproved"],
        "tencent": ["OrderApproved"],
        "baidu": ["OrderHeld"],
        "sensetime": ["OrderDenied"],
    }
    approved = {b: first[b][0].payload.approved_quantity for b in ("bytedance", "alibaba", "tencent")}
    assert approved == {"bytedance": 600, "alibaba": 400, "tencent": 300}
    assert "reduced_to_licence" in {c.code for c in first["alibaba"][0].payload.conditions}
    assert "importer_not_authorised" in {r.code for r in first["baidu"][0].payload.reasons}
    assert "denied_party" in {r.code for r in first["sensetime"][0].payload.reasons}

    # When two batches are ready, an hour apart: first approved, first served
    system.publish([s.batch("TSMC-B1", 500, minute=60), s.batch("TSMC-B2", 400, minute=120)])
    system.settle()
    log = system.log()
    assert grants(log) == {
        ("bytedance", "TSMC-B1"): 500,
        ("bytedance", "TSMC-B2"): 100,
        ("alibaba", "TSMC-B2"): 300,
    }
    line = {(r["buyer_id"], r["batch_id"]): r["allocation_id"] for r in audit.ledger_rows(log)}
    delivered_line, lost_line = line[("bytedance", "TSMC-B1")], line[("alibaba", "TSMC-B2")]

    # When the pool's rule flips to pro rata, ByteDance's shipment arrives and Alibaba's is lost at sea
    system.publish([s.allocation_rule("pro_rata", revision=2)])
    system.settle()
    system.publish(
        [
            *s.steps(delivered_line, "packed", "shipped", "customs_cleared", "delivered", minute=180),
            *s.steps(lost_line, "packed", "shipped", "lost", minute=180),
        ]
    )
    system.settle()

    # Then the lost chips go back to batch B2 and are shared pro rata between the orders still owed chips:
    # Alibaba (owed 400) and Tencent (owed 300): 300 * 4/7 = 171.4 and 300 * 3/7 = 128.6, the odd chip to
    # the larger remainder.
    log = system.log()
    assert grants(log) == {
        ("bytedance", "TSMC-B1"): 500,
        ("bytedance", "TSMC-B2"): 100,
        ("alibaba", "TSMC-B2"): 171,
        ("tencent", "TSMC-B2"): 129,
    }
    failed = log.of(fulfilment.DeliveryFailed)
    assert [str(e.payload.allocation_id) for e in failed] == [lost_line]
    released = log.of(allocation.AllocationReleased)
    assert [(str(e.payload.allocation_id), e.payload.why) for e in released] == [(lost_line, "delivery_failed")]
    # The chips come back at the release and are handed out again once approval's markers pass that moment (at the
    # failure itself when they already have, else at the next marker): the lines of that batch dated from then on.
    back = released[0].payload
    reallocated = [
        e.payload
        for e in log.of(allocation.ChipsAllocated)
        if e.payload.batch_id == back.batch_id and e.payload.allocated_at >= back.released_at
    ]
    assert {(p.buyer_id, p.quantity, p.rule, str(p.policy_ref)) for p in reallocated} == {
        ("alibaba", 171, "pro_rata", "allocation/h200@2"),
        ("tencent", 129, "pro_rata", "allocation/h200@2"),
    }
    recorded = [(str(e.payload.allocation_id), e.payload.step) for e in log.of(fulfilment.FulfilmentStepRecorded)]
    assert [step for a, step in recorded if a == delivered_line] == [
        "packed",
        "shipped",
        "customs_cleared",
        "delivered",
    ]
    assert [step for a, step in recorded if a == lost_line] == ["packed", "shipped", "lost"]
    assert log.of(fulfilment.FulfilmentStepRejected) == []
    assert not log.of(approval.ApprovalRevoked, approval.ApprovalReleased)

    # And the log keeps every invariant, and the read model tells the same story as the log
    assert audit.check_invariants(log) == []
    assert audit.check_settled_protocol(system.bootstrap, log) == []
    assert log.undecodable == 0
    assert read_model_disagreements(system.store, log) == []
    buyers = system.store.buyers()
    assert {b: (t.get("allocated"), t.get("shipped"), t.get("delivered")) for b, t in buyers.items()} == {
        "bytedance": ("600", "500", "500"),
        "alibaba": ("171", "0", None),
        "tencent": ("129", None, None),
        "baidu": (None, None, None),
        "sensetime": (None, None, None),
    }
    status = {b: system.store.order(str(s.order_id(b, o.upstream_ref)))["status"] for b, o in orders.items()}
    assert status == {
        "bytedance": "approved",
        "alibaba": "approved",
        "tencent": "approved",
        "baidu": "held",
        "sensetime": "denied",
    }
    assert system.store.dead_letters() == {}

    # And allocation's worker and the projector say so on /metrics, and are ready
    assert page(allocation_port, "/ready")[0] == 200
    status, metrics = page(allocation_port, "/metrics")
    decided = [line for line in metrics.splitlines() if line.startswith("h200_records_decided_total")]
    assert status == 200 and len(decided) == 1 and float(decided[0].split()[-1]) > 0, metrics
    status, metrics = page(projector_port, "/metrics")
    applied = [line for line in metrics.splitlines() if line.startswith("h200_events_applied_total")]
    assert status == 200 and float(applied[0].split()[-1]) > 0, metrics
    assert page(projector_port, "/ready")[0] == 200
