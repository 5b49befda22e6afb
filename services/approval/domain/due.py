"""The partition clock and what falls due as it passes a time (docs/time.md, "Approval").

`now` is the latest tick or arrival the partition has seen and never goes back. A step that moves it first brings
into force every policy effective by `now` (the pending ones that fell due, then the input if it is one), and only
then decides, all against those policies: what the revisions in force cause, the expiry of approvals on a licence
whose valid_until it passed, one new look at held orders (a licence's valid_from or a tranche's opens_at among
the times it passed has the buyer's held orders examined again); then the input, if an order. Pure helpers
shared by decide (on a copy of the state) and evolve.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.clock import ClockTicked
from schemas.envelope import Envelope, learned_at
from schemas.policy import PolicyEvent
from services.approval.domain.policies import bring_into_force, supersedes
from services.approval.domain.state import ApprovalState, PendingPolicy

BoundaryKind = Literal["expiry", "opening"]


@dataclass(frozen=True, order=True)
class Boundary:
    """A time in a licence or a tranche that the clock passed: decided after the policies in force by then."""

    at: datetime
    kind: BoundaryKind
    """"expiry" sorts before "opening": an approval ends before held orders look for what it gave back."""
    buyer_id: str
    source_id: str


def time_of(state: ApprovalState, message: Envelope[Any]) -> datetime:
    """The partition clock once `message` is seen: the time of every decision it causes."""
    times = [learned_at(message)]
    if state.now is not None:
        times.append(state.now)
    if isinstance(message.payload, ClockTicked):
        times.append(message.payload.at)
    return max(times)


def falls_due(state: ApprovalState, now: datetime) -> bool:
    """Something is due at or before `now` that the state has not yet taken into account (rare: a copy is made)."""
    return state.next_due is not None and state.next_due <= now


def record_pending(state: ApprovalState, event: PolicyEvent) -> None:
    insort(state.pending, PendingPolicy(event.effective_at, state.pending_seen, event), key=pending_order)
    state.pending_seen += 1


def pending_order(pending: PendingPolicy) -> tuple[datetime, int]:
    return (pending.effective_at, pending.seq)


def due_policy(state: ApprovalState, now: datetime) -> PendingPolicy | None:
    first = state.pending[0] if state.pending else None
    return first if first is not None and first.effective_at <= now else None


def bring_due_into_force(state: ApprovalState, now: datetime) -> list[PolicyEvent]:
    """The pending policies `now` reaches, each in force in (effective_at, arrival) order (the same in decide and
    evolve); those it brought into force, a revision overtaken before its time excepted."""
    came: list[PolicyEvent] = []
    while (pending := due_policy(state, now)) is not None:
        state.pending.pop(0)
        if supersedes(state, pending.event):
            bring_into_force(state, pending.event)
            came.append(pending.event)
    return came


def boundaries(state: ApprovalState, after: datetime | None, until: datetime) -> list[Boundary]:
    """Licence and tranche times in (after, until], in time order."""
    if after is None:
        return []
    found: list[Boundary] = []
    for buyer_id, book in state.buyers.items():
        for licence in book.policy.licences.values():
            if after < licence.valid_until <= until:
                found.append(Boundary(licence.valid_until, "expiry", buyer_id, licence.licence_id))
            if after < licence.valid_from <= until:
                found.append(Boundary(licence.valid_from, "opening", buyer_id, licence.licence_id))
        for tranche in book.policy.tranches.values():
            if after < tranche.opens_at <= until:
                found.append(Boundary(tranche.opens_at, "opening", buyer_id, tranche.tranche_id))
    return sorted(found)


def next_due(state: ApprovalState) -> datetime | None:
    """The earliest time after `now` at which a pending policy or a licence or tranche boundary falls due."""
    now = state.now
    times: list[datetime] = []
    for book in state.buyers.values():
        for licence in book.policy.licences.values():
            times += [licence.valid_from, licence.valid_until]
        times += [tranche.opens_at for tranche in book.policy.tranches.values()]
    ahead = [time for time in times if now is None or time > now]
    if state.pending:
        # A pending policy is always ahead of the clock (one that is not is brought into force on arrival).
        ahead.append(state.pending[0].effective_at)
    return min(ahead, default=None)
