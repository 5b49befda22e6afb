"""Parity of two read-model snapshots: every differing field is named, trails compare as sets of entries."""

from __future__ import annotations

import json

from services.projector.parity import Snapshot, compare


def entry(type_: str, what: str) -> str:
    return json.dumps({"at": "2026-03-01T08:00:00+00:00", "id": type_, "type": type_, "what": what}, sort_keys=True)


def model(namespace: str, status: str, trail: list[str]) -> Snapshot:
    return Snapshot(
        namespace,
        positions={"h200.orders:0": 3},
        orders={"o-1": {"status": status, "buyer_id": "bytedance"}},
        trails={"o-1": trail},
        buyers={"bytedance": {"requested": "100"}},
    )


def test_the_same_read_models_are_at_parity_whatever_the_order_of_trail_entries() -> None:
    placed, approved = entry("OrderPlaced", "placed"), entry("OrderApproved", "approved")
    parity = compare(model("h200", "approved", [placed, approved]), model("h200@1", "approved", [approved, placed]))
    assert parity.ok and parity.differences == []


def test_a_changed_status_and_a_missing_trail_entry_are_named() -> None:
    placed, approved = entry("OrderPlaced", "placed"), entry("OrderApproved", "approved")
    parity = compare(model("h200", "approved", [placed, approved]), model("h200@1", "placed", [placed]))
    assert not parity.ok
    assert [str(d) for d in parity.differences] == [
        "order o-1 status: live 'approved', rebuilt 'placed'",
        "order o-1 trail: live ['OrderApproved approved'], rebuilt []",
    ]


def test_read_models_at_different_positions_are_not_at_parity() -> None:
    behind = model("h200@1", "approved", [])
    behind.positions = {"h200.orders:0": 2}
    assert not compare(model("h200", "approved", []), behind).ok
