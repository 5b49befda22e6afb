"""Time in the order book (docs/time.md): the partition's clock, which approvals are admitted into the queue, and
which orders have waited too long to be filled.

The clock `now` is the latest of the ticks and arrivals the partition has seen, and never goes back; every
decision is made at it, except chips, which are handed out as of min(now, approval's frontier) (see
hand_out_as_of). Copies of approvals travel to allocation at different speeds, so an approval is admitted into
first-approved-first-served only when approval has promised, on its lane and from every source partition (its
ApprovalsPassed markers), that nothing decided before it is still on its way: then no approval decided earlier
can arrive later and lose its place. Lane L feeds partition L alone, so lane-only markers (version 2, copied
only there) bound partition L by lane L's sources; version 1 markers bound it by every lane's. Until the first
marker the partition admits every approval on arrival (a log written before markers existed). An admitted
approval not filled `close_unfilled_after_s` after its decided_at leaves the book on the first tick at or after
that time (ticks are the book's way of noticing that time has passed; a tick is recognised as a repeat by its own
time). These functions read the state, never change it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.clock import ApprovalsPassed, ClockTicked
from schemas.envelope import Envelope, learned_at
from services.allocation.domain.state import AllocationState, Order, Pool


def time_of(state: AllocationState, message: Envelope[Any]) -> datetime:
    """The partition's clock once `message` is seen: the time of every decision it causes."""
    at = learned_at(message)
    if isinstance(message.payload, ClockTicked):
        at = max(at, message.payload.at)
    return at if state.now is None else max(state.now, at)


def hand_out_as_of(state: AllocationState, message: Envelope[Any], now: datetime) -> tuple[bool, datetime | None]:
    """Whether approval's markers bound hand-outs, and the time T chips are handed out as of once `message` is seen.

    T = min(now, F), F the frontier: the earliest `at` of the (lane, source) markers, before which approval has
    written everything, every end of an approval (revocation, expiry, suspension, cancellation) included. So when
    chips are handed out as of T, every end decided before T is already in the book: no chips go to an approval
    ended by then. Not waiting for F >= now: markers always lag the clock. None while a (lane, source) is unheard;
    before the first marker ever, hand-outs are not bounded (a log written before markers existed)."""
    marks = (
        after_marker(state, message.payload, message)
        if isinstance(message.payload, ApprovalsPassed)
        else marks_of(state)
    )
    if not marks[0]:
        return False, None
    frontier = passed_before(*marks)
    return True, None if frontier is None else min(now, frontier)


def is_new_tick(state: AllocationState, tick: ClockTicked) -> bool:
    """Only a tick later than every earlier one decides anything: a copy of an old tick is a repeat, and deciding
    on it again (under the same cause id) could decide something that is due now and not then."""
    return state.ticked is None or tick.at > state.ticked


Marks = tuple[dict[tuple[int, int], datetime], int, int, int | None]
"""What a partition knows of approval's progress: (lane, source) -> at, the counts of lanes and sources, and the
one lane that bounds it (or None: every lane)."""


def marks_of(state: AllocationState) -> Marks:
    return state.passed, state.lanes, state.sources, state.lane


def passed_before(
    passed: dict[tuple[int, int], datetime], lanes: int, sources: int, lane: int | None = None
) -> datetime | None:
    """The time before which every source has passed on every lane that bounds the partition (`lane` alone, or
    every lane when it is None), or None while one of them is still unheard."""
    if lane is not None:
        own = [passed[(lane, source)] for source in range(sources) if (lane, source) in passed]
        return min(own) if own and len(own) == sources else None
    # Every key is a (lane, source) in range (the contract refuses a marker outside its own counts, and counts only
    # grow), so all are heard when all are there.
    return min(passed.values()) if passed and len(passed) == lanes * sources else None


def admits(state: AllocationState, decided_at: datetime) -> bool:
    """Whether an approval decided at `decided_at` arriving now joins the queue at once."""
    if not state.passed:
        return True
    mark = passed_before(*marks_of(state))
    return mark is not None and decided_at < mark


def after_marker(state: AllocationState, marker: ApprovalsPassed, message: Envelope[Any]) -> Marks:
    """What the partition knows of approval's progress once it has seen `marker` (carried by `message`).

    A lane-only marker copied to a partition other than its lane's says nothing there (a router that copied it
    wrongly): it changes nothing, which can only hold admissions back, never let one in early. The first one of the
    partition's own lane makes that lane the partition's bound for good; its frontier can only move forward then
    (a minimum over fewer marks), and version 1 markers of that lane still count."""
    arrival = message.arrival
    if marker.lane_only and arrival is not None and arrival.partition != marker.lane:
        return marks_of(state)
    key = (marker.lane, marker.source_partition)
    passed = dict(state.passed)
    passed[key] = max(passed.get(key, marker.at), marker.at)
    lane = marker.lane if marker.lane_only and state.lane is None else state.lane
    return passed, max(state.lanes, marker.lanes), max(state.sources, marker.sources), lane


def admitted_by(pool: Pool, mark: datetime | None) -> list[Order]:
    """The orders waiting for admission that every source has passed (strictly: a later decision may share the
    time), first approved first."""
    if mark is None:
        return []
    found: list[Order] = []
    for approved_at, _, order_id in pool.waiting:
        if approved_at >= mark:
            break
        found.append(pool.orders[order_id])
    return found


def due_unfilled(pool: Pool, now: datetime) -> list[Order]:
    """Admitted orders in the book still not filled `close_unfilled_after` after their approval, at `now`."""
    after = pool.close_unfilled_after
    if after is None:
        return []
    found: list[Order] = []
    for approved_at, _, order_id in pool.owed:
        if approved_at + after > now:
            break
        found.append(pool.orders[order_id])
    return found
