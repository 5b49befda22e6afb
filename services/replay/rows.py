"""Rows of a few fixed-width fields packed in one buffer: what verify's checks keep per order or per line of a log.

A NamedTuple of three 128-bit ids and a datetime costs ~300 bytes as Python objects (the tuple, each int, the
datetime, a list or dict slot); packed with `struct`, ~70. A check keeps one or two such rows per order, and a log
of 5M events names 714,000 orders, so kept as objects they held about a gigabyte of verify's 2.5 GB. Rows are
turned back into the check's NamedTuples as they are read, so the checks' logic does not change.

`Rows` keeps rows in the order written. `SortedRows` keeps them sorted by their bytes (ids first, big-endian), in a
run merged in place as `SeenIds` merges its own, and finds every row whose first 16 bytes are a given id.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from services.domain_kit.seen_ids import MERGE_AT, merge_into

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
ID = 16


def micros(moment: datetime) -> int:
    """The instant as microseconds since the Unix epoch (the ledger's packed lines keep times so, in UTC)."""
    return (moment - EPOCH) // MICROSECOND


def time_fields(moment: datetime) -> tuple[int, int]:
    """A time as (microseconds since the epoch, its UTC offset in seconds): what `time_of` needs to give it back."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"a time kept in a row must carry its offset, not {moment.isoformat()}")
    return micros(moment), int(offset.total_seconds())


def time_of(us: int, offset: int) -> datetime:
    """The time `time_fields` packed, in its own offset (so isoformat and every comparison give what the event said)."""
    zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
    return (EPOCH + timedelta(microseconds=us)).astimezone(zone)


class Names:
    """Each name once, by index (4 bytes in a row: a long history may name more than 65,536 batches and buyers)."""

    __slots__ = ("_index", "names")

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, name: str) -> int:
        found = self._index.get(name)
        if found is None:
            found = self._index[name] = len(self.names)
            self.names.append(name)
        return found


def id_int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


class Rows(Generic[T]):
    """Fixed-width rows in the order written, read back through `make` (struct's fields -> the check's row)."""

    __slots__ = ("_data", "_layout", "_make")

    def __init__(self, layout: str, make: Callable[[tuple[Any, ...]], T]) -> None:
        self._layout = struct.Struct(">" + layout)
        self._data = bytearray()
        self._make = make

    def append(self, *fields: Any) -> None:
        self._data += self._layout.pack(*fields)

    def __len__(self) -> int:
        return len(self._data) // self._layout.size

    def __getitem__(self, index: int) -> T:
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        return self._make(self._layout.unpack_from(self._data, index * self._layout.size))

    def __iter__(self) -> Iterator[T]:
        # Through a view of the buffer: appending while reading raises BufferError rather than moving it.
        make = self._make
        for fields in self._layout.iter_unpack(memoryview(self._data)):
            yield make(fields)


class SortedRows:
    """Rows of `width` bytes under 16-byte keys (their first bytes), several under one key, found by key in the
    order written (a row is stored after its key with the count of rows before it: ~width + 4 bytes a row). Recent
    rows sit in a dict by key; when they are an eighth of the rest they are merged into one sorted run in place, as
    SeenIds merges its own."""

    __slots__ = ("_count", "_recent", "_recent_rows", "_run", "_width")

    def __init__(self, width: int) -> None:
        if width < ID:
            raise ValueError(f"a sorted row starts with a {ID}-byte key, so it is at least {ID} bytes, not {width}")
        self._width = width + 4
        self._count = 0
        self._recent: dict[bytes, list[bytes]] = {}
        self._recent_rows = 0
        self._run = bytearray()

    def add(self, row: bytes) -> None:
        if len(row) != self._width - 4:
            raise ValueError(f"a row here is {self._width - 4} bytes, not {len(row)}")
        if self._count >= 1 << 32:
            raise OverflowError("SortedRows holds at most 2**32 rows")
        key = row[:ID]
        self._recent.setdefault(key, []).append(key + self._count.to_bytes(4, "big") + row[ID:])
        self._count += 1
        self._recent_rows += 1
        if self._recent_rows >= MERGE_AT and self._recent_rows * 8 >= len(self._run) // self._width:
            merge_into(self._run, self._width, sorted(row for rows in self._recent.values() for row in rows))
            self._recent, self._recent_rows = {}, 0

    def __len__(self) -> int:
        return self._count

    def under(self, key: bytes) -> list[bytes]:
        """Every row whose first 16 bytes are `key`, in the order they were added."""
        width, run = self._width, self._run
        lo, hi = 0, len(run) // width
        while lo < hi:  # the first entry whose key is not below `key`
            mid = (lo + hi) // 2
            if run[mid * width : mid * width + ID] < key:
                lo = mid + 1
            else:
                hi = mid
        found: list[bytes] = []
        while lo < len(run) // width and run[lo * width : lo * width + ID] == key:
            found.append(bytes(run[lo * width : (lo + 1) * width]))
            lo += 1
        found += self._recent.get(key, ())  # added after every row of the run
        return [row[:ID] + row[ID + 4 :] for row in found]
