"""Settling while the clock ticks: the log never stops growing, so "no reader lags" is no longer enough. The
system is settled once every reader passed the previous round's ends and for QUIET_S only the passage of time was
written; a system without a ticking clock settles as before, on no lag twice. Times are given: no sleeping."""

from __future__ import annotations

from services.ops.settle import Settling

TIME = ["ClockTicked", "ClockTicked", "ApprovalsPassed", "ApprovalsPassed"]


def test_without_a_clock_no_lag_twice_is_settled_at_once() -> None:
    state = Settling(started=0.0, quiet_s=3.0)
    state.lag(0.1, 0, clock_end=0)
    assert not state.settled(0.1)
    state.lag(0.6, 0, clock_end=0)
    assert state.settled(0.6)


def test_a_clock_that_ticks_makes_no_lag_twice_not_enough() -> None:
    state = Settling(started=0.0, quiet_s=3.0)
    for n, now in enumerate((0.1, 0.6, 1.1, 1.6)):
        state.lag(now, 0, clock_end=10 + n)
        assert not state.settled(now)


def test_rounds_of_time_only_for_the_quiet_period_are_settled() -> None:
    state = Settling(started=0.0, quiet_s=3.0)
    state.lag(0.5, 4, clock_end=10)
    state.round(1.0, TIME)
    state.round(2.0, TIME)
    assert not state.settled(2.0)  # two rounds, but not yet quiet for 3 s
    state.round(3.1, TIME)
    assert state.settled(3.1)


def test_work_written_in_a_round_starts_the_quiet_period_again() -> None:
    # An approval decided at 2.0 waits for the markers of a later tick; its allocation is written at 3.5.
    state = Settling(started=0.0, quiet_s=3.0)
    state.round(1.0, TIME)
    state.round(2.0, [*TIME, "OrderApproved"])
    state.round(3.0, TIME)
    state.round(3.5, ["ApprovalsPassed", "ChipsAllocated"])
    state.round(5.0, TIME)
    state.round(6.0, TIME)
    assert not state.settled(6.0)
    state.round(6.6, TIME)
    assert state.settled(6.6)


def test_a_dead_letter_or_an_unreadable_record_is_work() -> None:
    state = Settling(started=0.0, quiet_s=1.0)
    state.round(1.0, TIME)
    state.round(2.0, [None])
    state.round(2.5, TIME)
    assert not state.settled(2.5)


def test_a_clock_that_stopped_ticking_settles_on_no_lag_once_still_for_the_quiet_period() -> None:
    state = Settling(started=0.0, quiet_s=3.0)
    state.lag(0.5, 0, clock_end=10)
    state.lag(1.0, 0, clock_end=11)
    state.lag(3.5, 0, clock_end=11)
    assert not state.settled(3.5)
    state.lag(4.1, 0, clock_end=11)
    assert state.settled(4.1)
