"""Inputs of the allocation core (copies on h200.allocation.inbox) and a given/when harness around it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from schemas.allocation import AllocationRecallRequested, AllocationReleased, ChipsAllocated, OrderClosed
from schemas.approval import (
    ApprovalCancelled,
    ApprovalExpired,
    ApprovalReinstated,
    ApprovalReleased,
    ApprovalRevoked,
    ApprovalSuspended,
    OrderApproved,
    OrderDenied,
    OrderHeld,
)
from schemas.base import Message, PolicyRef, Reason
from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Arrival, Envelope, derive_id, make_envelope
from schemas.fulfilment import DeliveryFailed, FulfilmentStepRecorded, RecallAnswered, Step
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from services.allocation import domain
from services.allocation.domain import AllocationState, BookSummary, book_summary
from services.common.decider import fold, step

AT = datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
POOL = "h200"
BUYER = "bytedance"
REASON = Reason(code="policy_change", message="test reason", gate="cn_import")
Rule = Literal["first_approved_first_served", "pro_rata"]


def minutes(n: int) -> datetime:
    return AT + timedelta(minutes=n)


def order_ids(count: int, *, seed: object = "order") -> list[UUID]:
    """Distinct order ids, smallest first as the rules compare them (as strings)."""
    return sorted((derive_id("test", seed, n) for n in range(count)), key=str)


def envelope(payload: Message, *, message_id: UUID | None = None, at: datetime = AT) -> Envelope[Any]:
    return make_envelope(
        payload,
        key=str(getattr(payload, "pool_id", POOL)),
        producer="allocation",
        occurred_at=at,
        message_id=message_id or uuid4(),
    )


def _decision(order_id: UUID, pool: str, buyer: str, decided_at: datetime) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "buyer_id": buyer,
        "pool_id": pool,
        "policy_refs": (PolicyRef(policy_id="cn-use-rules", revision=1),),
        "cause_event_id": derive_id("test-cause", order_id),
        "decided_at": decided_at,
    }


def approved(
    order_id: UUID,
    quantity: int,
    *,
    decided_at: datetime = AT,
    pool: str = POOL,
    buyer: str = BUYER,
    message_id: UUID | None = None,
) -> Envelope[OrderApproved]:
    payload = OrderApproved(
        **_decision(order_id, pool, buyer, decided_at),
        requested_quantity=quantity,
        approved_quantity=quantity,
        licence_id="BIS-H200-0001",
        tranche_id="T1",
    )
    return envelope(payload, message_id=message_id, at=decided_at)


def denied(order_id: UUID, *, pool: str = POOL) -> Envelope[OrderDenied]:
    return envelope(OrderDenied(**_decision(order_id, pool, BUYER, AT), reasons=(REASON,)))


def held(order_id: UUID, *, pool: str = POOL) -> Envelope[OrderHeld]:
    return envelope(OrderHeld(**_decision(order_id, pool, BUYER, AT), reasons=(REASON,)))


def batch(
    batch_id: str,
    quantity: int,
    *,
    ready_at: datetime = AT,
    pool: str = POOL,
    at: datetime = AT,
    message_id: UUID | None = None,
) -> Envelope[BatchManufactured]:
    payload = BatchManufactured(
        batch_id=batch_id, pool_id=pool, quantity=quantity, site="TSMC Fab 18, Tainan", ready_at=ready_at
    )
    return envelope(payload, message_id=message_id, at=at)


def policy(
    rule: Rule,
    revision: int = 2,
    *,
    pool: str = POOL,
    at: datetime = AT,
    close_unfilled_after: timedelta | None = None,
    message_id: UUID | None = None,
    effective_at: datetime | None = None,
) -> Envelope[AllocationPolicySet]:
    """A pool's rule; revision 2 by default, so that it replaces the rule a Book publishes at the start (1)."""
    payload = AllocationPolicySet(
        policy_id=f"allocation/{pool}",
        revision=revision,
        effective_at=at if effective_at is None else effective_at,
        issued_by="ops",
        pool_id=pool,
        rule=rule,
        close_unfilled_after_s=None if close_unfilled_after is None else int(close_unfilled_after.total_seconds()),
    )
    return envelope(payload, message_id=message_id, at=at)


def tick(at: datetime, *, message_id: UUID | None = None) -> Envelope[ClockTicked]:
    """A clock tick as copied into the partition; sent (and learned) at the time it names."""
    return make_envelope(
        ClockTicked(at=at), key="h200", producer="clock", occurred_at=at, message_id=message_id or uuid4()
    )


def passed(
    at: datetime,
    *,
    source: int = 0,
    lane: int = 0,
    sources: int = 1,
    lanes: int = 1,
    learned: datetime | None = None,
    lane_only: bool = False,
    partition: int | None = None,
) -> Envelope[ApprovalsPassed]:
    """Approval's partition `source` has written to lane `lane` everything it decided before `at` (a copy read
    from allocation inbox partition `partition` when one is given)."""
    payload = ApprovalsPassed(
        source_partition=source, sources=sources, lane=lane, lanes=lanes, at=at, lane_only=lane_only
    )
    marker = make_envelope(
        payload, key=f"ApprovalsPassed/{source}", producer="approval", occurred_at=learned or at, message_id=uuid4()
    )
    if partition is None:
        return marker
    return marker.arrived(Arrival("h200.allocation.inbox", partition, 0, learned or at))


def all_passed(at: datetime, *, sources: int = 1, lanes: int = 1) -> list[Envelope[ApprovalsPassed]]:
    """A marker from every source on every lane."""
    return [
        passed(at, source=source, lane=lane, sources=sources, lanes=lanes)
        for lane in range(lanes)
        for source in range(sources)
    ]


def expired(
    order_id: UUID, *, pool: str = POOL, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[ApprovalExpired]:
    payload = ApprovalExpired(**_decision(order_id, pool, BUYER, at), licence_id="BIS-H200-0001", reason=REASON)
    return envelope(payload, message_id=message_id, at=at)


def suspended(order_id: UUID, *, pool: str = POOL, message_id: UUID | None = None) -> Envelope[ApprovalSuspended]:
    return envelope(ApprovalSuspended(**_decision(order_id, pool, BUYER, AT), reason=REASON), message_id=message_id)


def reinstated(
    order_id: UUID, *, pool: str = POOL, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[ApprovalReinstated]:
    payload = ApprovalReinstated(**_decision(order_id, pool, BUYER, at), reason=REASON)
    return envelope(payload, message_id=message_id, at=at)


def revoked(
    order_id: UUID, *, pool: str = POOL, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[ApprovalRevoked]:
    payload = ApprovalRevoked(**_decision(order_id, pool, BUYER, at), reason=REASON)
    return envelope(payload, message_id=message_id, at=at)


def cancelled(
    order_id: UUID, *, pool: str = POOL, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[ApprovalCancelled]:
    payload = ApprovalCancelled(**_decision(order_id, pool, BUYER, at), reason=REASON)
    return envelope(payload, message_id=message_id, at=at)


def answer(
    recall: AllocationRecallRequested,
    outcome: Literal["cancelled", "already_shipped"] = "cancelled",
    *,
    at: datetime = AT,
) -> Envelope[RecallAnswered]:
    """Fulfilment's answer to a recall, as it reaches the allocation inbox."""
    line = {name: getattr(recall, name) for name in ("allocation_id", "pool_id", "order_id", "buyer_id", "batch_id")}
    stage = "allocated" if outcome == "cancelled" else "shipped"
    payload = RecallAnswered(
        **line,
        quantity=recall.quantity,
        outcome=outcome,
        stage=stage,
        cause_event_id=derive_id("test-recall", recall.allocation_id),
        at=at,
    )
    return envelope(payload, at=at)


def recalls(events: Sequence[Message]) -> list[AllocationRecallRequested]:
    return [e for e in events if isinstance(e, AllocationRecallRequested)]


def closings(events: Sequence[Message]) -> list[tuple[UUID, str, int]]:
    """(order, why, kept) of each OrderClosed."""
    return [(e.order_id, e.why, e.kept_quantity) for e in events if isinstance(e, OrderClosed)]


def released(
    order_id: UUID,
    why: Literal["cancelled", "revoked", "closed"] = "cancelled",
    *,
    pool: str = POOL,
    at: datetime = AT,
    message_id: UUID | None = None,
) -> Envelope[ApprovalReleased]:
    payload = ApprovalReleased(
        **_decision(order_id, pool, BUYER, at), licence_id="BIS-H200-0001", tranche_id="T1", quantity=0, why=why
    )
    return envelope(payload, message_id=message_id, at=at)


def _line(allocation: ChipsAllocated) -> dict[str, Any]:
    return {
        "allocation_id": allocation.allocation_id,
        "pool_id": allocation.pool_id,
        "order_id": allocation.order_id,
        "buyer_id": allocation.buyer_id,
        "batch_id": allocation.batch_id,
        "quantity": allocation.quantity,
        "cause_event_id": derive_id("test-fulfilment", allocation.allocation_id),
    }


def step_recorded(
    allocation: ChipsAllocated, step_name: Step = "shipped", *, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[FulfilmentStepRecorded]:
    payload = FulfilmentStepRecorded(**_line(allocation), step=step_name, at=at)
    return envelope(payload, message_id=message_id, at=at)


def delivery_failed(
    allocation: ChipsAllocated, *, at: datetime = AT, message_id: UUID | None = None
) -> Envelope[DeliveryFailed]:
    return envelope(DeliveryFailed(**_line(allocation), outcome="lost", at=at), message_id=message_id, at=at)


def grants(events: Sequence[Message]) -> list[tuple[UUID, str, int]]:
    """(order, batch, quantity) of each ChipsAllocated, in the order decided."""
    return [(e.order_id, e.batch_id, e.quantity) for e in events if isinstance(e, ChipsAllocated)]


def releases(events: Sequence[Message]) -> list[tuple[UUID, str, int, str]]:
    """(order, batch, quantity, why) of each AllocationReleased, in the order decided."""
    return [(e.order_id, e.batch_id, e.quantity, e.why) for e in events if isinstance(e, AllocationReleased)]


def allocations(events: Sequence[Message]) -> list[ChipsAllocated]:
    return [e for e in events if isinstance(e, ChipsAllocated)]


class Book:
    """Given some inputs, when one more arrives, then these events: the core run by the shared runner.

    A pool's rule is always a published policy: the book starts with revision 1 of `rule` for each of `pools`
    (none with rule=None)."""

    def __init__(self, *pools: str, rule: Rule | None = "first_approved_first_served") -> None:
        self.state: AllocationState = domain.initial_state()
        self.ledger: list[Message] = []
        if rule is not None:
            self.given(*(policy(rule, 1, pool=pool) for pool in pools or (POOL,)))

    def given(self, *inputs: Envelope[Any]) -> Book:
        self.state, outputs = fold(domain, inputs, self.state)
        self.ledger.extend(output.payload for output in outputs)
        return self

    def when(self, message: Envelope[Any]) -> list[Message]:
        self.state, outputs = step(domain, self.state, message)
        payloads = [output.payload for output in outputs]
        self.ledger.extend(payloads)
        return payloads

    def answer_recalls(
        self, events: Sequence[Message], outcome: Literal["cancelled", "already_shipped"] = "cancelled"
    ) -> list[Message]:
        """Fulfilment answers every recall among `events`; the events those answers cause, in order."""
        caused: list[Message] = []
        for recall in recalls(events):
            caused.extend(self.when(answer(recall, outcome)))
        return caused

    def summary(self, pool: str = POOL) -> BookSummary:
        return book_summary(self.state, pool)

    def allocated_to(self, order_id: UUID, pool: str = POOL) -> int:
        """What the book holds for the order; for one it is done with and has dropped, what its ledger kept."""
        shown = [order.allocated for order in self.summary(pool).orders if order.order_id == order_id]
        if shown:
            return shown[0]
        assert self.state.pools[pool].known(order_id), f"order {order_id} never reached pool {pool}"
        granted = sum(e.quantity for e in self.ledger if isinstance(e, ChipsAllocated) and e.order_id == order_id)
        freed = sum(e.quantity for e in self.ledger if isinstance(e, AllocationReleased) and e.order_id == order_id)
        return granted - freed

    def remaining_in(self, batch_id: str, pool: str = POOL) -> int:
        return next(line.remaining for line in self.summary(pool).batches if line.batch_id == batch_id)
