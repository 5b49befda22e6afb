"""Lane-only markers (ApprovalsPassed version 2): lane L of h200.approvals feeds allocation partition L alone (the
same partitions under the same key, pool_id), so that partition is bound by lane L's sources only, and a router
copies the marker there alone. Version 1 markers still bound a partition by every lane: an old log refolds as it
was decided."""

from __future__ import annotations

from datetime import datetime, timedelta

from builders_allocation import AT, Book, approved, batch, grants, order_ids, passed

from schemas.clock import ApprovalsPassed, ApprovalsPassedV1
from schemas.codec import decode, encode
from schemas.envelope import make_envelope
from schemas.routing import copy_partitions
from schemas.topics import BY_NAME
from services.approval.domain.decide import LANE_ONLY, LANES

A, B = order_ids(2, seed="lanes")
INBOX = BY_NAME["h200.allocation.inbox"]


def minutes(n: float) -> datetime:
    return AT + timedelta(minutes=n)


def own_lane(at: datetime, *, source: int, lane: int = 1, sources: int = 2, partition: int = 1) -> object:
    return passed(at, source=source, sources=sources, lane=lane, lanes=3, lane_only=True, partition=partition)


def test_partition_l_admits_once_every_source_passed_its_own_lane_without_hearing_the_others() -> None:
    book = Book().given(own_lane(minutes(0), source=0), own_lane(minutes(0), source=1))
    book.given(batch("B1", 10), approved(A, 10, decided_at=minutes(1)))

    assert grants(book.when(own_lane(minutes(2), source=0))) == []  # source 1 of lane 1 is still behind A
    assert grants(book.when(own_lane(minutes(2), source=1))) == [(A, "B1", 10)]
    assert book.state.lane == 1


def test_version_1_markers_of_the_same_lane_alone_do_not_admit() -> None:
    # The same marks, not lane-only: the partition waits for lanes 0 and 2 too, as before version 2.
    book = Book()
    for source in (0, 1):
        book.given(passed(minutes(0), source=source, sources=2, lane=1, lanes=3, partition=1))
    book.given(batch("B1", 10), approved(A, 10, decided_at=minutes(1)))
    assert grants(book.when(passed(minutes(2), source=0, sources=2, lane=1, lanes=3, partition=1))) == []
    assert grants(book.when(passed(minutes(2), source=1, sources=2, lane=1, lanes=3, partition=1))) == []
    assert book.state.lane is None


def test_a_lane_only_marker_copied_to_another_partition_changes_nothing() -> None:
    book = Book().given(own_lane(minutes(0), source=0), own_lane(minutes(0), source=1))
    book.given(batch("B1", 10), approved(A, 10, decided_at=minutes(1)))
    state_before = (dict(book.state.passed), book.state.lane)

    assert book.when(own_lane(minutes(5), source=0, lane=2, partition=1)) == []
    assert book.when(own_lane(minutes(5), source=1, lane=2, partition=1)) == []
    assert (book.state.passed, book.state.lane) == state_before


def test_a_deploy_from_version_1_markers_moves_the_frontier_forward_never_back() -> None:
    # Before the deploy: every lane's marks; lane 0 is far behind. After it: only lane 1 bounds partition 1.
    book = Book().given(batch("B1", 10))
    for lane, at in ((0, minutes(0)), (1, minutes(3)), (2, minutes(3))):
        book.given(passed(at, source=0, sources=1, lane=lane, lanes=3, partition=1))
    book.given(approved(A, 10, decided_at=minutes(2)))
    assert book.allocated_to(A) == 0  # lane 0's mark (10:00) is before A's decision

    events = book.when(own_lane(minutes(4), source=0, sources=1))

    assert grants(events) == [(A, "B1", 10)]
    # A version 1 marker of a lane that no longer bounds the partition changes nothing more.
    assert book.when(passed(minutes(1), source=0, sources=1, lane=0, lanes=3, partition=1)) == []


def test_approval_writes_lane_only_markers_because_the_catalogue_pairs_its_lanes_with_allocation_partitions() -> None:
    approvals = BY_NAME["h200.approvals"]
    assert (approvals.partitions, approvals.key) == (INBOX.partitions, INBOX.key) == (LANES, "pool_id")
    assert LANE_ONLY is True


def test_a_router_copies_a_lane_only_marker_to_its_lane_and_a_version_1_marker_everywhere() -> None:
    lane_only = ApprovalsPassed(source_partition=4, sources=6, lane=2, lanes=3, at=AT, lane_only=True)
    every = ApprovalsPassed(source_partition=4, sources=6, lane=2, lanes=3, at=AT)
    keyed = approved(B, 1, decided_at=AT).payload

    assert copy_partitions(lane_only, INBOX) == (2,)
    assert list(copy_partitions(every, INBOX) or ()) == [0, 1, 2]
    assert copy_partitions(keyed, INBOX) is None


def test_a_version_1_marker_decodes_as_counted_by_every_partition() -> None:
    old = ApprovalsPassedV1(source_partition=1, sources=6, lane=0, lanes=3, at=AT)
    record = encode(make_envelope(old, key="ApprovalsPassed/1", producer="approval", occurred_at=AT, message_id=A))

    decoded = decode(record)

    assert decoded.version == 2 and isinstance(decoded.payload, ApprovalsPassed)
    assert decoded.payload.lane_only is False and decoded.payload.lane == 0


def test_a_version_1_marker_of_another_lane_never_becomes_the_partitions_bound() -> None:
    # Partition 0 hears lane 1 first and far ahead; lane 0, which feeds it, is behind the approval.
    book = Book()
    for lane, at in ((1, minutes(10)), (0, minutes(0)), (2, minutes(10))):
        book.given(passed(at, source=0, sources=1, lane=lane, lanes=3, partition=0))
    book.given(batch("B1", 10))

    assert book.when(approved(A, 10, decided_at=minutes(5))) == []
    assert book.state.lane is None
