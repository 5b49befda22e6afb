"""Event id -> type name at 17 bytes an id, for the ledger table, which names the kind of each line's cause.

A dict of every event id of a long log costs ~140 bytes an entry (700 MB at 5M events, the most of what a replay
writing ledger checkpoints held): here recent ids sit in a dict, merged now and then into one sorted run of
16-byte ids each followed by a byte naming its type, searched and merged by SeenIds' own run functions.
"""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from services.domain_kit.seen_ids import merge_into, search_run

ENTRY = 17
MERGE_AT = 4096


class IdTypes:
    __slots__ = ("_index", "_names", "_recent", "_run")

    def __init__(self) -> None:
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._recent: dict[bytes, int] = {}
        self._run = bytearray()
        """Sorted by id: each entry the id's 16 bytes and its type's index in `_names`."""

    @classmethod
    def from_state(cls, names: list[str], run: bytes | bytearray) -> Self:
        if len(run) % ENTRY or len(names) > 256:
            raise ValueError(f"an id-type run is a multiple of {ENTRY} bytes naming at most 256 types")
        found = cls()
        found._names, found._index = list(names), {name: n for n, name in enumerate(names)}
        found._run = run if isinstance(run, bytearray) else bytearray(run)  # merged into in place: its own
        return found

    def add(self, event_id: UUID, type_name: str) -> None:
        index = self._index.get(type_name)
        if index is None:
            if len(self._names) == 256:
                raise ValueError(f"more than 256 event types named: {type_name!r} is one too many")
            index = self._index[type_name] = len(self._names)
            self._names.append(type_name)
        self._recent[event_id.bytes] = index
        if len(self._recent) >= MERGE_AT and len(self._recent) * 8 >= len(self._run) // ENTRY:
            self._merge()

    def get(self, event_id: UUID) -> str | None:
        key = event_id.bytes
        found = self._recent.get(key)
        if found is not None:
            return self._names[found]
        at = search_run(self._run, ENTRY, key)
        return None if at < 0 else self._names[self._run[at * ENTRY + 16]]

    def __len__(self) -> int:
        return len(self._recent) + len(self._run) // ENTRY

    def _merge(self) -> None:
        if self._recent:
            # sorted by id: an id is added once (the reader passes each event on once)
            entries = sorted(key + bytes((index,)) for key, index in self._recent.items())
            merge_into(self._run, ENTRY, entries)
            self._recent = {}

    def __reduce__(self) -> tuple[Any, ...]:
        self._merge()
        return (IdTypes.from_state, (self._names, self._run))  # unpickled as a bytearray of its own

    def __repr__(self) -> str:
        return f"IdTypes({len(self)} ids, {len(self._names)} types)"
