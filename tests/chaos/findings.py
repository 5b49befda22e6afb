"""What a drill asserts once the faults are over and lag is 0, read from the log as the auditor reads it:

- nothing lost: every order sent was placed once and decided once; every shipment report was answered;
- nothing done twice: no fact decided twice under two ids, no event id carrying two contents, no step recorded twice;
- every invariant of domain.md and the protocol between the services (services.replay.verify, services.ops.audit:
  `h200 verify`'s checks, determinism included), with the read model in Redis equal to the log replayed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from schemas import allocation, approval, fulfilment
from schemas.envelope import order_id_for
from schemas.fulfilment import RecordFulfilmentStep
from schemas.topics import EVENT_TOPICS
from services.ops import audit
from services.ops.publish import envelope_for
from services.replay.kafka_io import read_topics
from services.replay.live import live_ledger, projector_behind
from services.replay.records import CLOCK, INBOX
from services.replay.reports import verify_text
from services.replay.verify import verify
from tests.e2e.checks import (
    decisions_by_order,
    outcome,
    placed_ids_by_order,
    read_model_disagreements,
    same_kind_same_cause,
)

from .market import Market
from .stage import Stage

ONCE_PER_CAUSE = (
    approval.OrderApproved,
    approval.OrderDenied,
    approval.OrderHeld,
    allocation.ChipsAllocated,
    allocation.AllocationReleased,
    fulfilment.FulfilmentStepRecorded,
    fulfilment.DeliveryFailed,
)
SHOWN = 8


@dataclass(frozen=True)
class Findings:
    records: int
    """Records read from the event topics, the clock and the allocation inbox (repeats included)."""
    events: int
    repeats: int
    """Records written twice under one id (a send retried across a crash or an election): applied once."""
    orders: int
    decisions: int
    lines: int
    shipment_reports: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def examine(stage: Stage, market: Market) -> Findings:
    bootstrap = stage.brokers.bootstrap
    log = audit.read_log(bootstrap, (*EVENT_TOPICS, CLOCK, INBOX))
    store = stage.store()
    problems: list[str] = []
    problems += _lost_orders(log, market)
    reports = market.reports
    problems += _unanswered_reports(log, reports)
    problems += same_kind_same_cause(log, ONCE_PER_CAUSE)
    problems += _steps_twice(log)
    problems += _ids_with_two_contents(bootstrap)
    problems += audit.check_invariants(log)
    problems += audit.check_settled_protocol(bootstrap, log)
    report = verify(log, live_ledger(store), store.ns, projector_behind(store, log.ends))
    if not report.ok:
        problems.append("h200 verify failed:\n" + verify_text(report, log.source))
    problems += [f"read model: {p}" for p in read_model_disagreements(store, log)]
    inbox = sum(len(records) for records in log.inbox.values())
    return Findings(
        records=len(log.events) + log.duplicates + inbox,
        events=len(log.events),
        repeats=log.duplicates,
        orders=len(market.submitted),
        decisions=sum(len(d) for d in decisions_by_order(log).values()),
        lines=len(audit.ledger_rows(log)),
        shipment_reports=len(reports),
        problems=problems,
    )


def _lost_orders(log: audit.Log, market: Market) -> list[str]:
    placed, decided = placed_ids_by_order(log), decisions_by_order(log)
    problems = []
    for order in market.submitted:
        order_id = str(order_id_for(order.buyer_id, order.upstream_ref))
        if len(placed.get(order_id, ())) != 1:
            problems.append(f"order {order.upstream_ref} placed {len(placed.get(order_id, ()))} times")
            continue
        # A hold may be followed by an approval or a denial (documents filed, the importer revoked): one each at most
        decisions = decided.get(order_id, [])
        final = [d for d in decisions if d.type != "OrderHeld"]
        if not decisions or len(final) > 1 or len(decisions) - len(final) > 1:
            problems.append(f"order {order.upstream_ref}: {outcome(decisions)}")
    return _first(problems, "orders lost or decided other than once")


def read_model_now(stage: Stage) -> list[str]:
    """Where the read model differs from the log as it stands (called once the system has settled)."""
    return read_model_disagreements(stage.store(), audit.read_log(stage.brokers.bootstrap))


def _unanswered_reports(log: audit.Log, reports: list[RecordFulfilmentStep]) -> list[str]:
    """Each shipment report is recorded or refused by fulfilment, with the report as the cause."""
    answered = {
        str(e.payload.cause_event_id)  # type: ignore[attr-defined]
        for e in log.of(fulfilment.FulfilmentStepRecorded, fulfilment.FulfilmentStepRejected)
    }
    missing = [f"{r.allocation_id} {r.step}" for r in reports if str(envelope_for(r, "ops").id) not in answered]
    return _first(missing, "shipment reports with no answer")


def _steps_twice(log: audit.Log) -> list[str]:
    counts = Counter(
        (str(e.payload.allocation_id), e.payload.step)  # type: ignore[attr-defined]
        for e in log.of(fulfilment.FulfilmentStepRecorded)
    )
    return _first([f"{a} {step}: recorded {n} times" for (a, step), n in counts.items() if n > 1], "steps twice")


def _ids_with_two_contents(bootstrap: str) -> list[str]:
    """A record written twice under one id must carry the same fact: readers keep the first and drop the rest."""
    contents: dict[str, set[str]] = defaultdict(set)
    for record in read_topics(bootstrap, EVENT_TOPICS):
        try:
            envelope = json.loads(record.value or b"")
        except ValueError:
            continue  # undecodable records are verify's to report
        fact = json.dumps([envelope.get("type"), envelope.get("payload")], sort_keys=True)
        contents[str(envelope.get("id"))].add(fact)
    return _first([f"event {i}: {len(c)} contents" for i, c in contents.items() if len(c) > 1], "ids, two contents")


def _first(problems: list[str], what: str) -> list[str]:
    if len(problems) <= SHOWN:
        return problems
    return [*problems[:SHOWN], f"... {len(problems) - SHOWN} more {what}"]
