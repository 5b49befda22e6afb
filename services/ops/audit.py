"""Reads the event log and checks the invariants of domain.md over it: the auditor's view, no service state.

Used by the end-to-end and crash tests, and by the demo to prove what it printed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition

from schemas import allocation, approval, fulfilment, policy, supply
from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
from schemas.topics import BY_NAME
from services.ops.kafka_clients import reader

AUDITED_TOPICS = ("h200.orders", "h200.policy", "h200.supply", "h200.approvals", "h200.allocations", "h200.fulfilment")


@dataclass
class Log:
    """Every event of the audited topics, in partition order, each id once; duplicates and bad records counted."""

    events: list[Envelope[Message]] = field(default_factory=list)
    duplicates: int = 0
    undecodable: int = 0

    def of(self, *types: type[Message]) -> list[Envelope[Message]]:
        return [e for e in self.events if isinstance(e.payload, types)]


def read_log(bootstrap: str, topics: Iterable[str] = AUDITED_TOPICS) -> Log:
    log = Log()
    seen: set[str] = set()
    with reader(bootstrap, consumer_timeout_ms=2000) as consumer:
        partitions = [TopicPartition(t, p) for t in topics for p in range(BY_NAME[t].partitions)]
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            while consumer.position(tp) < ends[tp]:
                for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
                    for record in records:
                        try:
                            envelope = decode(record.value)
                        except ContractError:
                            log.undecodable += 1
                            continue
                        if str(envelope.id) in seen:
                            log.duplicates += 1
                            continue
                        seen.add(str(envelope.id))
                        log.events.append(envelope)
    return log


@dataclass
class Totals:
    allocated: int = 0
    shipped: int = 0
    delivered: int = 0


def _net_lines(log: Log) -> dict[str, dict[str, Any]]:
    lines: dict[str, dict[str, Any]] = {}
    for e in log.of(allocation.ChipsAllocated, allocation.AllocationReleased, fulfilment.FulfilmentStepRecorded):
        p: Any = e.payload
        key = str(p.allocation_id)
        if isinstance(p, allocation.ChipsAllocated):
            lines[key] = {"line": p, "released": False, "shipped": False, "delivered": False}
        elif key in lines and isinstance(p, allocation.AllocationReleased):
            lines[key]["released"] = True
        elif key in lines and isinstance(p, fulfilment.FulfilmentStepRecorded) and p.step in ("shipped", "delivered"):
            lines[key][p.step] = True
    return lines


def check_invariants(log: Log) -> list[str]:
    """Every violation found, each naming the events or things involved; empty when the log is sound."""
    problems: list[str] = []
    batches = {e.payload.batch_id: e.payload.quantity for e in log.of(supply.BatchManufactured)}  # type: ignore[attr-defined]
    approved: dict[str, int] = {}
    ended: set[str] = set()
    for e in log.of(*(m for m in (approval.OrderApproved, approval.ApprovalRevoked, approval.ApprovalReleased))):
        p: Any = e.payload
        if isinstance(p, approval.OrderApproved):
            approved[str(p.order_id)] = p.approved_quantity
        else:
            ended.add(str(p.order_id))
    for e in log.of(approval.OrderApproved, approval.OrderDenied, approval.OrderHeld):
        p = e.payload
        if not p.policy_refs:
            problems.append(f"decision {e.id} ({e.type}) records no policy revision")

    lines = _net_lines(log)
    allocation_ids = [str(e.payload.allocation_id) for e in log.of(allocation.ChipsAllocated)]  # type: ignore[attr-defined]
    if len(allocation_ids) != len(set(allocation_ids)):
        problems.append("an allocation id appears in two ChipsAllocated events: chips allocated twice")
    by_batch: dict[str, Totals] = defaultdict(Totals)
    by_order: dict[str, Totals] = defaultdict(Totals)
    for entry in lines.values():
        line = entry["line"]
        if str(line.order_id) not in approved:
            problems.append(f"allocation {line.allocation_id} went to order {line.order_id}, which was never approved")
        if line.batch_id not in batches:
            problems.append(f"allocation {line.allocation_id} draws on unknown batch {line.batch_id}")
        live = not entry["released"]
        for totals in (by_batch[line.batch_id], by_order[str(line.order_id)]):
            totals.allocated += line.quantity if live else 0
            totals.shipped += line.quantity if live and (entry["shipped"] or entry["delivered"]) else 0
            totals.delivered += line.quantity if live and entry["delivered"] else 0
    for batch_id, totals in by_batch.items():
        if totals.allocated > batches.get(batch_id, 0):
            problems.append(f"batch {batch_id} gave out {totals.allocated} chips but holds {batches.get(batch_id, 0)}")
    for order_id, totals in by_order.items():
        if totals.allocated > approved.get(order_id, 0):
            problems.append(
                f"order {order_id} holds {totals.allocated} chips, approved for {approved.get(order_id, 0)}"
            )
    for name, table in (("batch", by_batch), ("order", by_order)):
        for key, totals in table.items():
            if not totals.delivered <= totals.shipped <= totals.allocated:
                problems.append(
                    f"{name} {key}: delivered {totals.delivered} <= shipped {totals.shipped} <= allocated "
                    f"{totals.allocated} does not hold"
                )
    problems += _licence_and_quota(log)
    return problems


def _licence_and_quota(log: Log) -> list[str]:
    """Open approvals of a buyer never exceed its licence or its tranche quota (latest revisions)."""
    licences = {p.licence_id: p.quantity for p in (e.payload for e in log.of(policy.ExportLicenceIssued))}  # type: ignore[attr-defined]
    quotas = {(p.buyer_id, p.tranche_id): p.quantity for p in (e.payload for e in log.of(policy.TrancheQuotaSet))}  # type: ignore[attr-defined]
    open_by_licence: dict[str, int] = defaultdict(int)
    open_by_tranche: dict[tuple[str, str], int] = defaultdict(int)
    for e in log.of(approval.OrderApproved, approval.ApprovalReleased):
        p: Any = e.payload
        sign = 1 if isinstance(p, approval.OrderApproved) else -1
        quantity = p.approved_quantity if sign > 0 else p.quantity
        open_by_licence[p.licence_id] += sign * quantity
        open_by_tranche[(p.buyer_id, p.tranche_id)] += sign * quantity
    problems = [
        f"licence {k}: {v} chips under open approvals, licence allows {licences.get(k, 0)}"
        for k, v in open_by_licence.items()
        if v > licences.get(k, 0)
    ]
    problems += [
        f"buyer {k[0]} tranche {k[1]}: {v} chips approved, quota {quotas.get(k, 0)}"
        for k, v in open_by_tranche.items()
        if v > quotas.get(k, 0)
    ]
    return problems


def ledger_rows(log: Log) -> list[dict[str, Any]]:
    """Live ledger lines (not released), oldest first: who got which batch, how many, when."""
    rows = []
    for entry in _net_lines(log).values():
        line = entry["line"]
        if entry["released"]:
            continue
        rows.append(
            {
                "allocated_at": line.allocated_at.isoformat(),
                "buyer_id": line.buyer_id,
                "order_id": str(line.order_id),
                "batch_id": line.batch_id,
                "quantity": line.quantity,
                "allocation_id": str(line.allocation_id),
            }
        )
    return sorted(rows, key=lambda r: (r["allocated_at"], r["buyer_id"], r["batch_id"], r["allocation_id"]))
