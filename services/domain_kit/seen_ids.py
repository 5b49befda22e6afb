"""A set of UUIDs at 16 bytes an id: the ids a core has folded, or the orders it has forgotten.

A core must remember every input id it folded: a decision's id is derived from its cause's id, so an input seen
again and decided again (say at a later partition time, when something else fell due) would give facts that reuse
ids of facts already published, and readers that skip repeats by id would drop them. No bound on how late an
upstream resend comes makes a window safe, so the ids are kept, but compactly: a Python set of UUIDs costs ~150
bytes an id (6.5 KB per inbox record of approval with its orders, issue #9), this ~16.

Recent ids sit in a set; when it grows past an eighth of the rest, they are merged into one sorted run of 16-byte
big-endian ids, searched by bisection. The run is merged in place (a bytearray this set alone holds) and frozen to
bytes when it is shared (a copy, a snapshot), so a merge grows it by the new ids only. A pickle (the snapshots) holds
a single bytes object, which loads at the speed of a copy. Equality is by the ids held, however they are split.
Pure: no I/O, no clock.

Most ids looked up are new (an event read once, a step reported once), and a bisection of the run in Python costs
~5 us: a filter of FILTER_BITS bits an id of the run (a byte) answers most of them "not there" in a fraction of
that (one hash, one bit; wrong "maybe" answers, an eighth of them, go on to the search). It is the process's own
(Python's randomised hash of the id), so it is never pickled but built again as a pickle is loaded (a snapshot
loads in a thread), and only ever says which lookups can be skipped.
"""

from __future__ import annotations

import pickle
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any, Self, SupportsIndex
from uuid import UUID

WIDTH = 16
BLOCK = 65_536
"""Entries of a run merged at a time (1 MB of ids)."""
MERGE_AT = 4096
"""Recent ids merged into the sorted run once they are this many and an eighth of the run: amortised O(1) bytes
copied per id, and the set stays small."""
FILTER_BITS = 8
"""Bits of the run's filter per id of the run, at least (a power of two in all): about 1 - e^(-1/8), 12%, of the ids
not held get past it to the search."""


class SeenIds:
    __slots__ = ("_filter", "_mask", "_recent", "_run")

    def __init__(self, ids: Iterable[UUID] = ()) -> None:
        self._recent: set[bytes] = {item.bytes for item in ids}
        self._run: bytes | bytearray = b""
        """Sorted, distinct, disjoint from _recent. A bytearray only while no other SeenIds shares it."""
        self._filter: bytearray | None = None
        """A bit per `hash(id) & _mask` for each id of the run (ids discarded since may leave theirs set); None
        until a lookup needs it."""
        self._mask = 0

    @classmethod
    def from_run(cls, run: bytes | bytearray) -> Self:
        if len(run) % WIDTH:
            raise ValueError(f"a run of ids is a multiple of {WIDTH} bytes long, not {len(run)}")
        seen = cls()
        seen._run = run
        return seen

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, UUID):
            return False
        key = item.bytes
        return key in self._recent or self._in_run(key)

    def _in_run(self, key: bytes) -> bool:
        if not self._run:
            return False
        bits = self._filter if self._filter is not None else self._build_filter()
        place = hash(key) & self._mask
        if not bits[place >> 3] & (1 << (place & 7)):
            return False
        return search_run(self._run, WIDTH, key) >= 0

    def _build_filter(self) -> bytearray:
        entries = len(self._run) // WIDTH
        size = 1 << max(6, (entries * FILTER_BITS - 1).bit_length())
        self._filter, self._mask = bytearray(size >> 3), size - 1
        self._mark(_keys(self._run))
        return self._filter

    def _mark(self, keys: Iterable[bytes]) -> None:
        bits, mask = self._filter, self._mask
        assert bits is not None
        for key in keys:
            place = hash(key) & mask
            bits[place >> 3] |= 1 << (place & 7)

    def add(self, item: UUID) -> None:
        self.add_new(item)

    def add_new(self, item: UUID) -> bool:
        """Add the id; True if it was not held (one search where `in` and then `add` take two)."""
        key = item.bytes
        if key in self._recent or self._in_run(key):
            return False
        self._recent.add(key)
        if len(self._recent) >= MERGE_AT and len(self._recent) * 8 >= len(self._run) // WIDTH:
            self._merge()
        return True

    def discard(self, item: UUID) -> None:
        key = item.bytes
        if key in self._recent:
            self._recent.discard(key)
        elif (found := search_run(self._run, WIDTH, key)) >= 0:
            # Rare (a fulfilment report forgotten so that its retry is decided): one copy of the run at most.
            at = found * WIDTH
            if isinstance(self._run, bytearray):
                del self._run[at : at + WIDTH]
            else:
                self._run = self._run[:at] + self._run[at + WIDTH :]

    def __len__(self) -> int:
        return len(self._recent) + len(self._run) // WIDTH

    def __iter__(self) -> Iterator[UUID]:
        # Over the run frozen as it is now: a merge while iterating makes a new run rather than changing this one.
        return (UUID(bytes=key) for key in _keys(self.run()))

    def _merge(self) -> None:
        if self._recent:
            if not isinstance(self._run, bytearray):
                self._run = bytearray(self._run)  # ours alone from here (a copy shares bytes, never this)
            merge_into(self._run, WIDTH, sorted(self._recent))
            if self._filter is not None:
                if len(self._run) // WIDTH * FILTER_BITS > self._mask + 1:
                    self._filter = None  # outgrown: built again, twice as large or more, when next needed
                else:
                    self._mark(self._recent)
            self._recent = set()

    def run(self) -> bytes:
        """Every id, sorted, as one bytes object (what a snapshot stores; shared, so frozen until the next merge)."""
        self._merge()
        if isinstance(self._run, bytearray):
            self._run = bytes(self._run)
        return self._run

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeenIds):
            return NotImplemented
        return self.run() == other.run()

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        self._merge()
        if int(protocol) >= 5 and isinstance(self._run, bytearray):
            # Pickled as a bytearray, straight from ours (no frozen copy): it loads as one, so the first merge after
            # a load grows it in place instead of copying 16 bytes an id beside the run it copies.
            return (_loaded, (pickle.PickleBuffer(self._run),))
        return (_loaded, (self.run(),))

    def copy(self) -> SeenIds:
        if isinstance(self._run, bytearray):
            self._run = bytes(self._run)  # both hold it now: neither may merge into it in place
        copied = SeenIds.from_run(self._run)
        copied._recent = set(self._recent)
        if self._filter is not None:
            copied._filter, copied._mask = bytearray(self._filter), self._mask
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> SeenIds:
        return self.copy()

    def __repr__(self) -> str:
        return f"SeenIds({len(self)} ids)"


def _loaded(run: bytes | bytearray) -> SeenIds:
    """A pickled SeenIds, its filter built as it is loaded: a snapshot or checkpoint loads in a thread, and built at
    the first lookup instead it held the event loop for 0.36 s per million ids."""
    seen = SeenIds.from_run(run)
    if run:
        seen._build_filter()
    return seen


def _keys(run: bytes | bytearray) -> Iterator[bytes]:
    """Each id of a run as bytes, a block at a time: a list of them all held ~57 bytes an id (285 MB at 5M ids, the
    peak of a snapshot's load while its filter was built), and a bytearray's slices are not hashable."""
    for start in range(0, len(run), BLOCK * WIDTH):
        block = bytes(run[start : start + BLOCK * WIDTH])
        yield from (block[n : n + WIDTH] for n in range(0, len(block), WIDTH))


def search_run(run: bytes | bytearray, width: int, key: bytes) -> int:
    """The index of the entry whose first 16 bytes are `key` in a run of sorted `width`-byte entries, or -1."""
    lo, hi = 0, len(run) // width
    while lo < hi:
        mid = (lo + hi) // 2
        at = run[mid * width : mid * width + WIDTH]
        if at == key:
            return mid
        if at < key:
            lo = mid + 1
        else:
            hi = mid
    return -1


def merge_into(run: bytearray, width: int, recent: list[bytes]) -> None:
    """Merge the sorted `width`-byte entries of `recent`, none already in the run, into it in place: the run grows by
    the new entries and is filled from its end a block of the old run at a time (a block no recent entry falls into
    is moved whole; one that some do is sorted with them, which Timsort does in one pass over the two sorted
    stretches). Building a new run held the old one, its pieces and the new one at once: three times the ids, 240 MB
    of a 5M-event replay's peak for 80 MB of ids. Blocks below the first recent entry are not touched."""
    top = len(recent)
    if not top:
        return
    hi = len(run) // width
    run += bytes(top * width)
    while top:
        # Invariant: run[:hi] (old entries) and recent[:top] are still to place, into run[:hi + top].
        lo = max(0, hi - BLOCK)
        block = bytes(run[lo * width : hi * width])
        k = bisect_left(recent, block[:width], 0, top) if lo else 0
        if k == top:
            merged = block
        else:
            entries = [block[n : n + width] for n in range(0, len(block), width)] + recent[k:top]
            entries.sort()
            merged = b"".join(entries)
        run[(lo + k) * width : (hi + top) * width] = merged  # at or above lo: only what `block` copied is written
        hi, top = lo, k
