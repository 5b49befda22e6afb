"""The orders a log names and the buyers' own references of them, at ~16 and ~30 bytes an order.

A replay that prints the table, filters, or writes a ledger checkpoint keeps both for every order of the log: as
a set of texts and a dict of texts they cost ~300 bytes an order (some 215 MB at 5M events, most of what a
checkpoint run held beside the fold). Here the order ids are a `SeenIds`, and the references sit in a dict of
recent ones, merged now and then into one sorted run of 16-byte order ids, each followed by where its reference's
UTF-8 text sits in one shared buffer (offset and length), searched and merged by SeenIds' own run functions.
Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any, Self
from uuid import UUID

from services.domain_kit.seen_ids import WIDTH, SeenIds, merge_into, search_run

PLACE = struct.Struct(">IH")
"""Where a reference's text starts in the buffer and how many bytes it takes (a Reference is at most 128)."""
ENTRY = WIDTH + PLACE.size
MERGE_AT = 4096


def _order_key(order_id: object) -> bytes | None:
    """The 16 bytes of an order id given as text (as the ledger's lines give it), None if it is no UUID."""
    if isinstance(order_id, UUID):
        return order_id.bytes
    if not isinstance(order_id, str):
        return None
    try:
        return UUID(order_id).bytes
    except ValueError:
        return None


class OrderIds:
    """Every order id the log names, asked about by its text (`Selection.resolve`)."""

    __slots__ = ("ids",)

    def __init__(self, ids: SeenIds | None = None) -> None:
        self.ids = SeenIds() if ids is None else ids

    def add(self, order_id: UUID) -> None:
        self.ids.add(order_id)

    def __contains__(self, order_id: object) -> bool:
        key = _order_key(order_id)
        return key is not None and UUID(bytes=key) in self.ids

    def __len__(self) -> int:
        return len(self.ids)


class OrderRefs(Mapping[str, str]):
    """Order id (as text) -> the buyer's own reference; a later OrderPlaced of the same order replaces it."""

    __slots__ = ("_recent", "_run", "_texts")

    def __init__(self) -> None:
        self._recent: dict[bytes, str] = {}
        self._run = bytearray()
        """Sorted by order id: each entry the id's 16 bytes and PLACE of its reference in `_texts`."""
        self._texts = bytearray()

    @classmethod
    def from_state(cls, run: bytearray, texts: bytearray) -> Self:
        if len(run) % ENTRY:
            raise ValueError(f"an order-reference run is a multiple of {ENTRY} bytes, not {len(run)}")
        found = cls()
        found._run, found._texts = bytearray(run), bytearray(texts)
        return found

    def add(self, order_id: UUID, reference: str) -> None:
        key = order_id.bytes
        at = -1 if key in self._recent else search_run(self._run, ENTRY, key)
        if at >= 0:  # placed again (a damaged log, or a resend under a new event id): the later reference holds
            self._run[at * ENTRY + WIDTH : (at + 1) * ENTRY] = self._place(reference)
            return
        self._recent[key] = reference
        if len(self._recent) >= MERGE_AT and len(self._recent) * 8 >= len(self._run) // ENTRY:
            self._merge()

    def _place(self, reference: str) -> bytes:
        text = reference.encode()
        if len(text) > 0xFFFF:
            raise ValueError(f"a reference of {len(text)} bytes is longer than an order reference can be")
        place = PLACE.pack(len(self._texts), len(text))
        self._texts += text
        return place

    def _merge(self) -> None:
        if self._recent:
            entries = sorted(key + self._place(reference) for key, reference in self._recent.items())
            merge_into(self._run, ENTRY, entries)
            self._recent = {}

    def _text_at(self, index: int) -> str:
        start, length = PLACE.unpack_from(self._run, index * ENTRY + WIDTH)
        return self._texts[start : start + length].decode()

    def __getitem__(self, order_id: str) -> str:
        key = _order_key(order_id)
        if key is None:
            raise KeyError(order_id)
        found = self._recent.get(key)
        if found is not None:
            return found
        at = search_run(self._run, ENTRY, key)
        if at < 0:
            raise KeyError(order_id)
        return self._text_at(at)

    def __iter__(self) -> Iterator[str]:
        self._merge()
        run = bytes(self._run)
        return (str(UUID(bytes=run[n : n + WIDTH])) for n in range(0, len(run), ENTRY))

    def __len__(self) -> int:
        return len(self._recent) + len(self._run) // ENTRY

    def __reduce__(self) -> tuple[Any, ...]:
        self._merge()
        return (OrderRefs.from_state, (self._run, self._texts))

    def __repr__(self) -> str:
        return f"OrderRefs({len(self)} orders)"
