"""Text and JSON forms of the verify, determinism and what-if reports. Pure: reports in, strings out."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from services.replay.determinism import DeterminismReport, Divergence
from services.replay.verify import VerifyReport
from services.replay.violations import Violation
from services.replay.whatif import WhatIfReport

SHOWN_FAILURES = 20


def _ok(good: bool) -> str:
    return "ok" if good else "FAILED"


def _violations(violations: list[Violation]) -> list[str]:
    shown = [f"    [{v.code}] {v}" for v in violations[:SHOWN_FAILURES]]
    more = len(violations) - SHOWN_FAILURES
    return shown + ([f"    ... {more} more"] if more > 0 else [])


def verify_text(report: VerifyReport, source: str) -> str:
    trail, rows = report.trail, [f"verify {source}: {report.events:,} events, {report.duplicates:,} duplicate records"]
    rows.append(f"  records decode ............ {_ok(not report.undecodable)} ({len(report.undecodable)} undecodable)")
    rows += [f"    {problem}" for problem in report.undecodable[:SHOWN_FAILURES]]
    rows.append(f"  invariants of domain.md ... {_ok(not report.violations)} ({len(report.violations)} violation(s))")
    rows += _violations(report.violations)
    causes = "" if trail.causes_checked else "; causes not looked up: the log lacks topics they live on"
    rows.append(f"  decisions record why ...... {_ok(not trail.violations)} ({trail.decisions:,} decisions{causes})")
    rows += _violations(trail.violations)
    rows.append(f"  replay is stable .......... {_ok(report.stable)} (ledger_hash {report.ledger_hash})")
    rows.append(f"  determinism ............... {_determinism_summary(report.determinism)}")
    if report.determinism and report.determinism.first:
        rows += ["    " + line for line in divergence_lines(report.determinism.first)]
    rows.append(f"  live read model ........... {_parity_summary(report)}")
    if report.parity and not report.parity.same:
        rows += [f"    {difference}" for difference in report.parity.differences]
    rows.append(f"  export's hash chain ....... {_chain_summary(report)}")
    rows += [f"  note: {note}" for note in report.notes]
    rows.append("verdict: " + ("the log keeps every invariant" if report.ok else "VIOLATIONS FOUND"))
    return "\n".join(rows)


def _chain_summary(report: VerifyReport) -> str:
    chain = report.chain
    if chain is None:
        return "skipped (read from the cluster, not an export)"
    if chain.problem is not None:
        return f"FAILED [{chain.code}] {chain.problem}"
    if chain.head is None:
        return "none (a version 1 export: nothing proves it unchanged)"
    return f"ok ({chain.records:,} records chained, head {chain.head})"


def _determinism_summary(report: DeterminismReport | None) -> str:
    if report is None:
        return "skipped (the log does not include h200.allocation.inbox)"
    counts = f"{report.inputs:,} inputs, {report.decided:,} decisions refolded, {report.recorded:,} recorded"
    if not report.divergences:
        return f"ok ({counts})"
    return f"FAILED ({counts}; {len(report.divergences)} pool(s) diverge)"


def _parity_summary(report: VerifyReport) -> str:
    parity = report.parity
    if parity is None:
        return "skipped (no read model to compare: give --redis-url)"
    if parity.same:
        return f"ok (namespace {parity.namespace}: same ledger_hash)"
    behind = f"; the read model has {parity.behind:,} record(s) of the log still to apply" if parity.behind else ""
    return f"FAILED (namespace {parity.namespace}: ledger_hash {parity.live_hash}{behind})"


def divergence_lines(divergence: Divergence) -> list[str]:
    cause = divergence.cause
    rows = [f"first divergence: pool {divergence.pool_id}, decision #{divergence.position + 1}: {divergence.what}"]
    if cause is not None:
        rows.append(f"  input:    {cause.envelope.type} {cause.envelope.id} at {cause.spot}")
    if divergence.expected is not None:
        rows.append(f"  expected: {_describe(divergence.expected.model_dump(mode='json'))}")
    if divergence.actual is not None:
        actual = divergence.actual
        rows.append(f"  recorded: {_describe(actual.envelope.model_dump(mode='json'))} at {actual.spot}")
    return rows


def _describe(envelope: dict[str, Any]) -> str:
    p = envelope["payload"]
    quantity = f" {p['quantity']} chips" if "quantity" in p else ""
    return f"{envelope['type']} {envelope['id']}{quantity} of batch {p.get('batch_id')} to order {p.get('order_id')}"


def divergence_json(divergence: Divergence) -> dict[str, Any]:
    return {
        "pool_id": divergence.pool_id,
        "position": divergence.position,
        "what": divergence.what,
        "input": None
        if divergence.cause is None
        else {
            "id": str(divergence.cause.envelope.id),
            "type": divergence.cause.envelope.type,
            "at": str(divergence.cause.spot),
        },
        "expected": None if divergence.expected is None else divergence.expected.model_dump(mode="json"),
        "recorded": None if divergence.actual is None else divergence.actual.envelope.model_dump(mode="json"),
        "recorded_at": None if divergence.actual is None else str(divergence.actual.spot),
    }


def determinism_json(report: DeterminismReport) -> dict[str, Any]:
    return {
        "inputs": report.inputs,
        "duplicate_inputs": report.duplicates,
        "failed_inputs": report.failed,
        "decided": report.decided,
        "recorded": report.recorded,
        "deterministic": not report.divergences,
        "divergences": [divergence_json(d) for d in report.divergences],
    }


def determinism_text(report: DeterminismReport, source: str) -> str:
    rows = [
        f"determinism of allocation over {source}: {report.inputs:,} recorded inputs "
        f"({report.duplicates:,} repeated), {report.decided:,} decisions refolded, {report.recorded:,} recorded"
    ]
    rows += [f"  input the core fails on (skipped, as live): {failure}" for failure in report.failed]
    if not report.divergences:
        rows.append("the core decides exactly what the log records: same ids, same payloads, same order")
        return "\n".join(rows)
    rows.append(f"DIVERGES in {len(report.divergences)} pool(s)")
    rows += divergence_lines(report.divergences[0])
    return "\n".join(rows)


def verify_json(report: VerifyReport) -> str:
    document = {
        "ok": report.ok,
        "events": report.events,
        "duplicates": report.duplicates,
        "undecodable": report.undecodable,
        "violations": [asdict(v) for v in report.violations],
        "trail": {
            "decisions": report.trail.decisions,
            "causes_checked": report.trail.causes_checked,
            "violations": [asdict(v) for v in report.trail.violations],
        },
        "ledger_hash": report.ledger_hash,
        "stable": report.stable,
        "determinism": None if report.determinism is None else determinism_json(report.determinism),
        "parity": None if report.parity is None else {**asdict(report.parity), "same": report.parity.same},
        "notes": report.notes,
        "chain": None if report.chain is None else {**asdict(report.chain), "ok": report.chain.ok},
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def what_if_text(report: WhatIfReport, source: str) -> str:
    rows = [
        f"what if {report.rule} had been the rule of pool(s) {', '.join(report.pools) or '-'} from the start "
        f"({report.inputs:,} recorded inputs of {source} refolded; nothing written)",
        "",
        f"{'buyer':<14} {'approved':>10} {'recorded':>10} {'what-if':>10} {'difference':>11}",
    ]
    for b in report.buyers:
        rows.append(f"{b.buyer:<14} {b.approved:>10,} {b.recorded:>10,} {b.what_if:>10,} {b.difference:>+11,}")
    totals = [sum(getattr(b, name) for b in report.buyers) for name in ("approved", "recorded", "what_if")]
    rows.append(f"{'all buyers':<14} {totals[0]:>10,} {totals[1]:>10,} {totals[2]:>10,} {totals[2] - totals[1]:>+11,}")
    return "\n".join(rows)


def what_if_json(report: WhatIfReport) -> str:
    document = {
        "rule": report.rule,
        "pools": list(report.pools),
        "inputs": report.inputs,
        "buyers": [{**asdict(b), "difference": b.difference} for b in report.buyers],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
