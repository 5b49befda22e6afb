"""SeenIds (services.domain_kit.seen_ids): a set of UUIDs at 16 bytes an id, checked against Python's own set."""

from __future__ import annotations

import copy
import pickle
import tracemalloc
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain_kit import seen_ids
from services.domain_kit.seen_ids import SeenIds

ids = st.integers(0, 2**128 - 1).map(lambda n: UUID(int=n))
small_ids = st.integers(0, 300).map(lambda n: UUID(int=n * 0x9E3779B97F4A7C15 % 2**128))
operations = st.lists(st.tuples(st.sampled_from(("add", "add", "add", "discard")), small_ids), max_size=400)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_it_holds_what_a_set_holds_through_merges_and_discards(ops: list[tuple[str, UUID]]) -> None:
    original = seen_ids.MERGE_AT, seen_ids.BLOCK
    seen_ids.MERGE_AT = 8  # merge often, so ids live in both the recent set and the sorted run
    seen_ids.BLOCK = 3  # and merge a run of many blocks, some that recent ids fall into and some they do not
    try:
        seen, oracle = SeenIds(), set()
        for operation, item in ops:
            if operation == "add":
                assert seen.add_new(item) == (item not in oracle)
            else:
                seen.discard(item)
            getattr(oracle, operation)(item)
            assert (item in seen) == (item in oracle)
            assert len(seen) == len(oracle)
        assert set(seen) == oracle
        assert all(item in seen for item in oracle)
        assert seen.run() == b"".join(sorted(item.bytes for item in oracle))
    finally:
        seen_ids.MERGE_AT, seen_ids.BLOCK = original


@given(st.lists(ids, max_size=50), st.lists(ids, max_size=50))
def test_equality_is_by_the_ids_held_however_they_are_split(first: list[UUID], second: list[UUID]) -> None:
    merged = SeenIds(first + second)
    split = SeenIds.from_run(SeenIds(first).run())
    for item in second:
        split.add(item)
    assert merged == split
    assert (SeenIds(first) == SeenIds(second)) == (set(first) == set(second))


def test_a_pickle_is_one_sorted_run_and_loads_to_the_same_ids() -> None:
    seen = SeenIds(UUID(int=n * 7919) for n in range(10_000))
    data = pickle.dumps(seen, protocol=5)
    assert len(data) < 10_000 * 16 + 200  # 16 bytes an id, not a pickled UUID (~60) each
    loaded = pickle.loads(data)
    assert loaded == seen and len(loaded) == 10_000
    assert UUID(int=7919 * 9_999) in loaded and UUID(int=1) not in loaded


def test_a_deep_copy_is_independent() -> None:
    seen = SeenIds([UUID(int=1)])
    copied = copy.deepcopy(seen)
    copied.add(UUID(int=2))
    assert UUID(int=2) not in seen and UUID(int=2) in copied


@settings(max_examples=100, deadline=None)
@given(st.lists(small_ids, max_size=120), st.lists(small_ids, max_size=120), st.lists(small_ids, max_size=120))
def test_copies_share_no_run_that_a_merge_writes_into(first: list[UUID], later: list[UUID], other: list[UUID]) -> None:
    """The run is merged in place: a copy taken between merges must not see (or take) the other's later ids."""
    original = seen_ids.MERGE_AT, seen_ids.BLOCK
    seen_ids.MERGE_AT, seen_ids.BLOCK = 4, 2
    try:
        seen = SeenIds()
        for item in first:
            seen.add(item)
        copied = seen.copy()
        deep = copy.deepcopy(seen)
        for item in later:
            seen.add(item)
        for item in other:
            copied.add(item)
        assert set(seen) == set(first) | set(later)
        assert set(copied) == set(first) | set(other)
        assert set(deep) == set(first)
        snapshot = pickle.loads(pickle.dumps(seen, protocol=5))
        for item in other:
            seen.add(item)
        assert set(snapshot) == set(first) | set(later)
    finally:
        seen_ids.MERGE_AT, seen_ids.BLOCK = original


@settings(max_examples=200, deadline=None)
@given(
    st.sets(st.binary(min_size=3, max_size=3), max_size=60),
    st.sets(st.binary(min_size=3, max_size=3), max_size=60),
    st.integers(1, 5),
)
def test_merge_into_gives_the_sorted_union(old: set[bytes], new: set[bytes], block: int) -> None:
    """In place, from the end, a block at a time: the same bytes as sorting both together (the oracle)."""
    new -= old
    original = seen_ids.BLOCK
    seen_ids.BLOCK = block
    try:
        run = bytearray(b"".join(sorted(old)))
        seen_ids.merge_into(run, 3, sorted(new))
    finally:
        seen_ids.BLOCK = original
    assert bytes(run) == b"".join(sorted(old | new))


def test_a_run_of_a_wrong_length_is_refused_by_name() -> None:
    try:
        SeenIds.from_run(b"x" * 17)
    except ValueError as error:
        assert "multiple of 16 bytes" in str(error)
    else:
        raise AssertionError("a 17-byte run was accepted")


def test_ids_merged_into_a_run_whose_filter_has_room_are_found() -> None:
    """The filter is built at the first lookup and kept through merges it has room for: the merged ids must be
    marked in it, or they would be reported unseen (and decided again)."""
    original = seen_ids.MERGE_AT
    seen_ids.MERGE_AT = 8
    try:
        seen = SeenIds.from_run(SeenIds(UUID(int=n * 0x9E3779B97F4A7C15 % 2**128) for n in range(600)).run())
        assert UUID(int=1) not in seen  # builds the filter: 8,192 bits for 600 ids, room for 1,024
        later = [UUID(int=(n + 600) * 0x9E3779B97F4A7C15 % 2**128) for n in range(100)]
        for item in later:
            assert seen.add_new(item)
        assert seen._filter is not None and len(seen._recent) < 100  # merged, into the same filter
        assert all(item in seen for item in later) and not any(seen.add_new(item) for item in later)
    finally:
        seen_ids.MERGE_AT = original


def test_a_loaded_set_has_its_filter_already_and_finds_what_it_held() -> None:
    """Built while unpickling (a snapshot loads in a thread), not at the first lookup on the event loop."""
    held = [UUID(int=n * 0x9E3779B97F4A7C15 % 2**128) for n in range(5_000)]
    loaded = pickle.loads(pickle.dumps(SeenIds(held), protocol=5))
    assert loaded._filter is not None
    assert all(item in loaded for item in held) and UUID(int=3) not in loaded
    assert pickle.loads(pickle.dumps(SeenIds(), protocol=5))._filter is None  # nothing to filter


def test_a_run_merged_in_place_is_pickled_as_one_a_load_can_merge_into_without_a_copy() -> None:
    """At protocol 5 a live run (a bytearray) is written as a bytearray: it loads as one, so the first merge after a
    load grows it in place rather than copying every id beside it. Older protocols give the frozen bytes."""
    original = seen_ids.MERGE_AT
    seen_ids.MERGE_AT = 4
    try:
        seen = SeenIds()
        for n in range(64):
            seen.add(UUID(int=n * 0x9E3779B97F4A7C15 % 2**128))
        assert isinstance(seen._run, bytearray)
        loaded = pickle.loads(pickle.dumps(seen, protocol=5))
        assert isinstance(seen._run, bytearray)  # pickling froze nothing: ours still merges in place
        assert isinstance(loaded._run, bytearray) and loaded._run is not seen._run
        for n in range(64, 80):
            loaded.add(UUID(int=n))
        assert len(seen) == 64 and len(loaded) == 80 and UUID(int=70) not in seen
        older = pickle.loads(pickle.dumps(seen, protocol=4))
        assert isinstance(older._run, bytes) and older == seen
    finally:
        seen_ids.MERGE_AT = original


def test_a_loaded_set_builds_its_filter_without_holding_its_ids_as_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The filter is built over the run a block at a time: a list of every id as bytes held ~57 bytes an id, the
    peak of a snapshot's load (611 MB for 5.7M ids, 80 MB of them). Blocks of 1,024 ids here, so that a block is
    small beside the run as it is at a million ids."""
    monkeypatch.setattr(seen_ids, "BLOCK", 1024)
    held = SeenIds.from_run(b"".join(sorted(UUID(int=n * 0x9E3779B97F4A7C15 % 2**128).bytes for n in range(100_000))))
    data = pickle.dumps(held, protocol=5)
    tracemalloc.start()
    try:
        loaded = pickle.loads(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded == held
    assert peak < 1.3 * 100_000 * seen_ids.WIDTH, f"loading 1.6 MB of ids peaked at {peak / 1e6:.1f} MB"
