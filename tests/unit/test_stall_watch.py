"""The stall watch's judgement: only a committed offset that stays put, with records past it, through
stall_after_s of unbroken observations, is a stall (services.common.stall_watch)."""

from __future__ import annotations

from services.common.stall_watch import StallWatch

TP = ("h200.allocations", 1)


def test_a_partition_stuck_with_records_waiting_is_reported_once_the_time_has_passed() -> None:
    watch = StallWatch(stall_after_s=45)
    assert watch.observe(0, {TP: 10}, {TP: 13}) == []
    assert watch.observe(44, {TP: 10}, {TP: 13}) == []
    [stall] = watch.observe(45, {TP: 10}, {TP: 14})
    assert (stall.topic, stall.partition, stall.committed, stall.end, stall.for_s) == (*TP, 10, 14, 45)
    assert "4 offsets waiting past the committed 10" in str(stall)


def test_progress_starts_the_clock_again() -> None:
    watch = StallWatch(stall_after_s=45)
    watch.observe(0, {TP: 10}, {TP: 13})
    watch.observe(30, {TP: 11}, {TP: 13})  # one record committed: reading goes on
    assert watch.observe(60, {TP: 11}, {TP: 13}) == []
    assert len(watch.observe(75, {TP: 11}, {TP: 13})) == 1


def test_a_partition_read_to_its_end_is_never_stalled_however_long_it_is_quiet() -> None:
    watch = StallWatch(stall_after_s=45)
    for now in range(0, 600, 5):
        assert watch.observe(now, {TP: 13}, {TP: 13}) == []


def test_a_gap_in_the_observations_gives_no_verdict() -> None:
    watch = StallWatch(stall_after_s=45)
    watch.observe(0, {TP: 10}, {TP: 13})
    watch.reset()  # the cluster did not answer, or the worker was rebuilding or retrying a send
    assert watch.observe(50, {TP: 10}, {TP: 13}) == []
    assert len(watch.observe(95, {TP: 10}, {TP: 13})) == 1


def test_a_partition_no_longer_observed_is_forgotten() -> None:
    watch = StallWatch(stall_after_s=45)
    watch.observe(0, {TP: 10}, {TP: 13})
    watch.observe(20, {}, {})  # revoked
    assert watch.observe(50, {TP: 10}, {TP: 13}) == []


def test_each_partition_is_judged_on_its_own() -> None:
    other = ("h200.fulfilment.commands", 0)
    watch = StallWatch(stall_after_s=45)
    watch.observe(0, {TP: 10, other: 5}, {TP: 13, other: 9})
    stalls = watch.observe(45, {TP: 10, other: 6}, {TP: 13, other: 9})
    assert [(s.topic, s.partition) for s in stalls] == [TP]
