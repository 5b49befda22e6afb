"""A rolling deploy of a changed core in the middle of a stream (issue #9): the approval worker is killed while it
decides and a changed core takes its place under the same worker id. Every decision the old core had made, even
the ones not committed yet, stays as it was made: no id is published with two contents, no cause gets a second
decision, and only records the old core never decided are decided by the new one.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from checks import same_kind_same_cause
from harness import StartSystem, Stream, System

from schemas import approval
from schemas import builders as s
from schemas.codec import decode
from services.common.worker import DECIDED_BY
from services.ops import audit
from services.ops.supervisor import Process

BUYERS, ORDERS_PER_BUYER, LOT, QUOTA = 12, 10, 100, 600
E2E = Path(__file__).parent


def variant_process(system: System) -> Process:
    """approval-1 again (same worker id, data directory and log), running the changed core."""
    original = system.supervisor.service("approval", 1)
    env = {**original.env, "PYTHONPATH": f"{E2E}:{original.env.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "variant_approval", "worker", "-l", "info", "--without-web"]
    process = Process("approval-1", command, original.log_path, env)
    system.supervisor.processes["approval-1"] = process
    return process


def test_a_core_changed_mid_stream_changes_and_repeats_no_decision_already_made(start_system: StartSystem) -> None:
    system = start_system()
    market = s.Market(
        "deploy", buyers=BUYERS, quota=QUOTA, lot=LOT, pool="pool-deploy", orders_per_buyer=ORDERS_PER_BUYER
    )
    system.publish(market.policies())
    system.settle()

    # Given a stream of orders that approval is working through
    stream = Stream(system.bootstrap, market.orders(), chunk=6, pause_s=0.2)
    start = system.committed("approval")
    stream.start()
    system.wait_until("approval decided part of the stream", lambda: system.committed("approval") > start + 10)
    # When it is killed mid-stream and the changed core is deployed in its place
    system.process("approval-1").kill()
    variant_process(system).start()
    stream.finish()
    assert stream.sent == len(stream.payloads)
    system.settle()

    # Then no decision id was published with two contents, and no cause was decided twice
    by_id: dict[str, set[bytes]] = defaultdict(set)
    version_of: dict[str, set[str]] = defaultdict(set)
    for record in system.records("h200.approvals"):
        envelope = decode(record.value)
        if envelope.type == "ApprovalsPassed":
            continue
        content = envelope.model_dump_json(exclude={"occurred_at"}).encode()
        by_id[str(envelope.id)].add(content)
        version = dict(record.headers or ()).get(DECIDED_BY, b"").decode()
        version_of[str(envelope.id)].add(version)
    assert {i: len(c) for i, c in by_id.items() if len(c) > 1} == {}
    assert {i: v for i, v in version_of.items() if len(v) > 1} == {}
    log = system.log()
    assert same_kind_same_cause(log, (approval.OrderApproved, approval.OrderDenied, approval.OrderHeld)) == []
    assert audit.check_invariants(log) == []
    # and both cores decided part of the stream: the deploy happened mid-stream
    versions = {v for vs in version_of.values() for v in vs}
    assert "approval@variant-adds-a-condition" in versions and len(versions) == 2, versions
