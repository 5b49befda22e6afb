"""Snapshots in a real worker process (faust's threads, the broker's logins): approval writes them from forked
children while it decides a stream, is killed with SIGKILL mid-stream, and its successor under the same worker id
starts from one of them: nothing is decided twice, nothing is lost, and the metrics say a snapshot was used and
none failed."""

from __future__ import annotations

import urllib.request

from checks import decisions_by_order, same_kind_same_cause
from harness import StartSystem, Stream, System

from schemas import approval
from schemas import builders as s
from services.ops import audit
from tests.conftest import free_port

BUYERS, ORDERS_PER_BUYER, LOT, QUOTA = 12, 8, 100, 400
INBOX = "h200.approval.inbox"


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    lines = [line for line in text.splitlines() if line.startswith(f"{name}{{")]
    assert len(lines) == 1, f"{name} not on approval's /metrics:\n{text}"
    return float(lines[0].split()[-1])


def usable_snapshot(system: System) -> bool:
    """Whether some inbox partition has a snapshot at or before the offset approval's group committed there: what a
    successor starting from the committed offsets can use."""
    found = system.admin.list_group_offsets("h200-approval").get("h200-approval", {})
    committed = {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == INBOX}
    folders = (system.log_dir / "workers" / "approval" / "snapshots").glob(f"{INBOX}-*")
    for folder in folders:
        offsets = [int(path.stem) for path in folder.glob("*.snapshot")]
        if any(0 < offset <= committed.get(int(folder.name.rpartition("-")[2]), -1) for offset in offsets):
            return True
    return False


def test_a_worker_killed_after_forked_snapshots_starts_again_from_one(start_system: StartSystem) -> None:
    port = free_port()
    system = start_system(
        env={
            "H200_APPROVAL_SNAPSHOT_EVERY": "3",
            "H200_APPROVAL_SNAPSHOT_SHARE": "0",
            "H200_APPROVAL_WEB_PORT": str(port),
        }
    )
    market = s.Market(
        "snapshots", buyers=BUYERS, quota=QUOTA, lot=LOT, pool="pool-snapshots", orders_per_buyer=ORDERS_PER_BUYER
    )
    system.publish(market.policies())

    # Given a stream of orders approval decides while its children write snapshots of its partitions
    stream = Stream(system.bootstrap, market.orders(), chunk=4, pause_s=0.2)
    stream.start()
    system.wait_until("approval committed past a snapshot it wrote", lambda: usable_snapshot(system))
    # When it is killed mid-stream and started again under its worker id
    system.process("approval-1").kill()
    assert stream.sent < len(stream.payloads), "the stream had ended: approval was not killed mid-stream"
    system.restart("approval-1")
    stream.finish()
    system.settle()

    # Then the successor started from a snapshot, none failed, and no order was decided twice or left undecided
    assert metric(port, "h200_snapshots_used_total") >= 1
    assert metric(port, "h200_snapshots_unusable_total") == 0
    assert metric(port, "h200_snapshots_failed_total") == 0
    log = system.log()
    assert same_kind_same_cause(log, (approval.OrderApproved, approval.OrderDenied, approval.OrderHeld)) == []
    decided = decisions_by_order(log)
    placed = [str(s.order_id(order.buyer_id, order.upstream_ref)) for order in market.orders()]
    assert [order for order in placed if not decided.get(order)] == []
    assert audit.check_invariants(log) == []
