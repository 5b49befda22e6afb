"""What if another allocation rule had been in force from the start: the recorded inputs, refolded, never written.

Every pool concerned gets the rule from its first input on (a policy revision injected before it, with the
deadline for unfilled orders of the pool's first recorded policy: only the rule changes), and every recorded
AllocationPolicySet of that pool is rewritten to the same rule. Shipment reports still apply where
the what-if allocation they name also exists (an allocation id is derived from pool, batch, order and cause).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved
from schemas.base import Message
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.policy import AllocationPolicySet
from services.replay.determinism import Transform, recorded_decisions, refold
from services.replay.eventlog import EventLog, Located

Rule = Literal["first_approved_first_served", "pro_rata"]
RULES: tuple[Rule, ...] = ("first_approved_first_served", "pro_rata")


@dataclass(frozen=True)
class BuyerOutcome:
    buyer: str
    approved: int
    recorded: int
    what_if: int

    @property
    def difference(self) -> int:
        return self.what_if - self.recorded


@dataclass(frozen=True)
class WhatIfReport:
    rule: Rule
    pools: tuple[str, ...]
    buyers: tuple[BuyerOutcome, ...]
    inputs: int
    decided: int


def rule_from_start(rule: Rule, pools: set[str] | None = None) -> Transform:
    def transform(partition: int, records: list[Located]) -> list[Located]:
        rewritten: list[Located] = []
        started: set[str] = set()
        recorded = _first_policies(records)
        for item in records:
            pool = getattr(item.envelope.payload, "pool_id", None)
            if isinstance(pool, str) and (pools is None or pool in pools):
                if pool not in started:
                    started.add(pool)
                    injected = _rule_at_start(pool, rule, item.envelope, recorded.get(pool))
                    rewritten.append(Located(injected, item.spot))
                item = _with_rule(item, rule)
            rewritten.append(item)
        return rewritten

    return transform


def _first_policies(records: list[Located]) -> dict[str, AllocationPolicySet]:
    """The first AllocationPolicySet recorded for each pool of the partition."""
    found: dict[str, AllocationPolicySet] = {}
    for item in records:
        payload = item.envelope.payload
        if isinstance(payload, AllocationPolicySet):
            found.setdefault(payload.pool_id, payload)
    return found


def _rule_at_start(
    pool: str, rule: Rule, first: Envelope[Any], recorded: AllocationPolicySet | None
) -> Envelope[Message]:
    policy = AllocationPolicySet(
        policy_id=f"what-if/{pool}",
        revision=1,
        effective_at=first.occurred_at,
        issued_by="h200 replay what-if",
        pool_id=pool,
        rule=rule,
        close_unfilled_after_s=recorded.close_unfilled_after_s if recorded else None,
    )
    return make_envelope(
        policy,
        key=pool,
        producer="what-if",
        occurred_at=first.occurred_at,
        message_id=derive_id("what-if", pool, rule),
    )


def _with_rule(item: Located, rule: Rule) -> Located:
    payload = item.envelope.payload
    if not isinstance(payload, AllocationPolicySet) or payload.rule == rule:
        return item
    envelope = item.envelope.model_copy(update={"payload": payload.model_copy(update={"rule": rule})})
    return Located(envelope, item.spot)


def net_by_buyer(decisions: Iterable[Message]) -> Counter[str]:
    """Chips each buyer holds after these allocations and releases."""
    held: Counter[str] = Counter()
    for p in decisions:
        if isinstance(p, ChipsAllocated):
            held[p.buyer_id] += p.quantity
        elif isinstance(p, AllocationReleased):
            held[p.buyer_id] -= p.quantity
    return held


def what_if(log: EventLog, rule: Rule, pools: set[str] | None = None) -> WhatIfReport:
    folded = refold(log.inbox, rule_from_start(rule, pools))
    history = recorded_decisions(log)
    chosen = sorted(pool for pool in set(folded.by_pool) | set(history) if pools is None or pool in pools)
    recorded = net_by_buyer(item.envelope.payload for pool in chosen for item in history.get(pool, []))
    imagined = net_by_buyer(decided.envelope.payload for pool in chosen for decided in folded.by_pool.get(pool, []))
    approved = _approved(log, set(chosen))
    buyers = sorted(set(recorded) | set(imagined) | set(approved))
    outcomes = tuple(BuyerOutcome(b, approved.get(b, 0), recorded.get(b, 0), imagined.get(b, 0)) for b in buyers)
    inputs = sum(len(records) for records in log.inbox.values())
    return WhatIfReport(rule, tuple(chosen), outcomes, inputs, folded.decided)


def _approved(log: EventLog, pools: set[str]) -> Counter[str]:
    """Chips approved per buyer in these pools, as the allocation core received the approvals."""
    approvals: dict[Any, OrderApproved] = {}
    for records in log.inbox.values():
        for item in records:
            p = item.envelope.payload
            if isinstance(p, OrderApproved) and p.pool_id in pools:
                approvals.setdefault(p.order_id, p)
    totals: Counter[str] = Counter()
    for p in approvals.values():
        totals[p.buyer_id] += p.approved_quantity
    return totals
