"""What if another allocation rule had been in force from the start: the recorded inputs, refolded, never written.

Every pool concerned gets the rule from its first input on (a policy revision injected before it, with the
deadline for unfilled orders of the pool's first recorded policy: only the rule changes), and every recorded
AllocationPolicySet of that pool is rewritten to the same rule. Shipment reports still apply where
the what-if allocation they name also exists (an allocation id is derived from pool, batch, order and cause).

It streams: a first read of the inbox finds each pool's first recorded policy (`FirstPolicies`); then the inbox
is refolded record by record under the rule while the recorded decisions are summed by buyer (`WhatIf`). What
is held is each partition's state and a few sums, not the log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved
from schemas.base import Message
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.policy import AllocationPolicySet
from services.replay.decisions import DECIDED, DECISIONS
from services.replay.determinism import InboxFold, Transform
from services.replay.eventlog import EventLog, Located
from services.replay.reading import Read

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


class FirstPolicies:
    """The first AllocationPolicySet recorded for each pool, per inbox partition: the first read of the inbox."""

    def __init__(self) -> None:
        self.found: dict[int, dict[str, AllocationPolicySet]] = {}

    def see(self, read: Read) -> None:
        payload = read.envelope.payload
        if read.inbox and isinstance(payload, AllocationPolicySet):
            self.found.setdefault(read.spot.partition, {}).setdefault(payload.pool_id, payload)


class RuleFromStart:
    """Rewrites the inbox record by record: the rule injected before each chosen pool's first input, and every
    recorded AllocationPolicySet of the pool set to the rule."""

    def __init__(self, rule: Rule, pools: set[str] | None, first: FirstPolicies) -> None:
        self.rule, self.pools, self.first = rule, pools, first
        self.started: set[tuple[int, str]] = set()

    def rewrite(self, item: Located) -> list[Located]:
        pool = getattr(item.envelope.payload, "pool_id", None)
        if not isinstance(pool, str) or (self.pools is not None and pool not in self.pools):
            return [item]
        rewritten = []
        if (item.spot.partition, pool) not in self.started:
            self.started.add((item.spot.partition, pool))
            recorded = self.first.found.get(item.spot.partition, {}).get(pool)
            rewritten.append(Located(_rule_at_start(pool, self.rule, item.envelope, recorded), item.spot))
        return [*rewritten, _with_rule(item, self.rule)]


def rule_from_start(rule: Rule, pools: set[str] | None = None) -> Transform:
    """RuleFromStart over one partition's records held whole."""

    def transform(partition: int, records: list[Located]) -> list[Located]:
        first = FirstPolicies()
        for item in records:
            first.see(Read(item.envelope, item.spot, True))
        rewriting = RuleFromStart(rule, pools, first)
        return [rewritten for item in records for rewritten in rewriting.rewrite(item)]

    return transform


class WhatIf:
    """Fed the recorded decisions and the inbox (after FirstPolicies has read it): the chips each buyer holds as
    recorded and under the rule, and what each was approved, per pool."""

    def __init__(self, rule: Rule, pools: set[str] | None, first: FirstPolicies) -> None:
        self.rule, self.pools = rule, pools
        self.rewriting = RuleFromStart(rule, pools, first)
        self.fold = InboxFold()
        self.inputs = 0
        self.decided = 0
        self.recorded: dict[str, Counter[str]] = {}
        self.imagined: dict[str, Counter[str]] = {}
        self.seen_pools: set[str] = set()
        """Pools with a decision recorded or refolded (an allocation, a close, a recall)."""
        self.approved: dict[Any, tuple[str, str, int]] = {}
        """Order id -> (pool, buyer, chips approved), as the allocation core first received its approval."""

    def see(self, read: Read) -> None:
        p = read.envelope.payload
        if not read.inbox:
            if read.spot.topic == DECIDED and isinstance(p, DECISIONS):
                self.seen_pools.add(p.pool_id)  # type: ignore[attr-defined]
                _hold(self.recorded, p)
            return
        self.inputs += 1
        if isinstance(p, OrderApproved):
            self.approved.setdefault(p.order_id, (p.pool_id, p.buyer_id, p.approved_quantity))
        for item in self.rewriting.rewrite(Located(read.envelope, read.spot)):
            for output in self.fold.take(item):
                self.decided += 1
                self.seen_pools.add(output.payload.pool_id)  # type: ignore[attr-defined]
                _hold(self.imagined, output.payload)

    def report(self) -> WhatIfReport:
        chosen = sorted(pool for pool in self.seen_pools if self.pools is None or pool in self.pools)
        recorded, imagined = _summed(self.recorded, chosen), _summed(self.imagined, chosen)
        approved: Counter[str] = Counter()
        for pool, buyer, quantity in self.approved.values():
            if pool in chosen:
                approved[buyer] += quantity
        buyers = sorted(set(recorded) | set(imagined) | set(approved))
        outcomes = tuple(BuyerOutcome(b, approved.get(b, 0), recorded.get(b, 0), imagined.get(b, 0)) for b in buyers)
        return WhatIfReport(self.rule, tuple(chosen), outcomes, self.inputs, self.decided)


def _summed(held: dict[str, Counter[str]], pools: list[str]) -> Counter[str]:
    """Per buyer over these pools, negative sums kept (a release whose line is not in the log): Counter's `+`
    would drop them."""
    total: Counter[str] = Counter()
    for pool in pools:
        total.update(held.get(pool, Counter()))
    return total


def _hold(held: dict[str, Counter[str]], p: Message) -> None:
    """Chips each buyer holds after this allocation or release, per pool."""
    if isinstance(p, ChipsAllocated):
        held.setdefault(p.pool_id, Counter())[p.buyer_id] += p.quantity
    elif isinstance(p, AllocationReleased):
        held.setdefault(p.pool_id, Counter())[p.buyer_id] -= p.quantity


def what_if(log: EventLog, rule: Rule, pools: set[str] | None = None) -> WhatIfReport:
    """WhatIf over a log held whole (tests)."""
    reads = [Read(item.envelope, item.spot, True) for partition in sorted(log.inbox) for item in log.inbox[partition]]
    first = FirstPolicies()
    for read in reads:
        first.see(read)
    imagining = WhatIf(rule, pools, first)
    for item in log.located(*DECISIONS):
        imagining.see(Read(item.envelope, item.spot, False))
    for read in reads:
        imagining.see(read)
    return imagining.report()


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
