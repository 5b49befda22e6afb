"""The hash chain of an export: each record line carries `prev` (the hash of the line before it, the header's for
the first) and `hash` = SHA-256(prev + the record's canonical bytes), and a trailer closes the file with the last
hash (the chain head) and the number of records.

Every record of the file is chained, so the decisions (approvals, allocations, releases, shipment steps) and the
inputs they cite are covered alike. The canonical bytes are the record as Kafka held it: topic, partition, offset,
key, value, headers, timestamp and its type (what a refold reads), each byte string in base64, in one compact JSON
array. A record changed, removed, inserted or moved breaks the chain where it happened; `h200 verify --from-file`
names the first break by topic, partition, offset and line of the file. The chain head is printed by `h200
export`: kept apart from the file, it also proves a file whose chain was recomputed from scratch is not the one
exported (`--chain-head`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from services.replay.records import LogRecord

TRAILER = "chain_head"


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def canonical(record: LogRecord) -> bytes:
    fields = [
        record.topic,
        record.partition,
        record.offset,
        _b64(record.key),
        _b64(record.value),
        [[name, _b64(value)] for name, value in record.headers],
        record.timestamp_ms,
        record.timestamp_type,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def link(prev: str, record: LogRecord) -> str:
    return hashlib.sha256(prev.encode("ascii") + canonical(record)).hexdigest()


def genesis(header: dict[str, Any]) -> str:
    """The first `prev`: the header's own hash, so the header (source, time, topics) is covered too."""
    text = json.dumps(header, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Chain:
    """Links the records of an export as they are written."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.head = genesis(header)
        self.records = 0

    def seal(self, record: LogRecord) -> dict[str, str]:
        prev, self.head = self.head, link(self.head, record)
        self.records += 1
        return {"prev": prev, "hash": self.head}

    def trailer(self) -> dict[str, Any]:
        return {TRAILER: self.head, "records": self.records}


@dataclass(frozen=True)
class Line:
    """A record line of an export as read back: its record, its chain fields and where it is."""

    number: int
    """Line of the file (the header is line 1)."""
    record: LogRecord | None
    prev: str | None
    hash: str | None

    @property
    def where(self) -> str:
        if self.record is None:
            return f"line {self.number}"
        return f"{self.record.spot} (line {self.number} of the file)"


@dataclass(frozen=True)
class ChainReport:
    records: int
    head: str | None
    """The last hash of the chain as the file holds it."""
    problem: str | None
    """The first break, named; None when every link holds."""
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _follows(line: Line, expected: str) -> bool:
    return (
        line.record is not None
        and line.hash is not None
        and line.prev == expected
        and link(expected, line.record) == line.hash
    )


def check_chain(
    header: dict[str, Any], lines: Callable[[], Iterator[Line]], trailer: dict[str, Any] | None
) -> ChainReport:
    """Walks the chain once in constant memory; at the first break, a second pass (`diagnose`) names it."""
    expected, count = genesis(header), 0
    for line in lines():
        if not _follows(line, expected):
            found = diagnose(header, lines())
            problem, code = found or (f"{line.where} does not follow the line before it", "broken")
            return ChainReport(count, None, problem, code)
        count += 1
        expected = line.hash or ""
    if trailer is None:
        return ChainReport(
            count, expected, "the file ends without its chain trailer: records may be cut off its end", "truncated"
        )
    if trailer.get(TRAILER) != expected or trailer.get("records") != count:
        problem = (
            f"the trailer closes the chain at {trailer.get(TRAILER)} after {trailer.get('records')} records, the "
            f"file's records end at {expected} after {count}: records were removed from its end or the trailer changed"
        )
        return ChainReport(count, expected, problem, "truncated")
    return ChainReport(count, expected, None)


def diagnose(header: dict[str, Any], lines: Iterator[Line]) -> tuple[str, str] | None:
    """A second pass, for a chain found broken: tells a record changed, removed, inserted or moved, by the links
    the lines carry (each names the hash of the line it followed when exported)."""
    everything = list(lines)
    position = {line.hash: index for index, line in enumerate(everything) if line.hash}
    expected = genesis(header)
    for index, line in enumerate(everything):
        if line.record is None or line.hash is None or line.prev is None:
            return f"{line.where} carries no chain fields: inserted into the export", "inserted"
        content_ok = link(line.prev, line.record) == line.hash
        if line.prev == expected and content_ok:
            expected = line.hash
            continue
        after = everything[index + 1] if index + 1 < len(everything) else None
        if not content_ok:
            if after is not None and after.prev == expected:
                return f"{line.where} was inserted: the next line follows the one before it", "inserted"
            return f"{line.where} was changed: its content no longer gives its hash", "changed"
        found = position.get(line.prev)
        if index == 0 and found is None:
            return f"the header was changed, or the first record removed: {line.where} follows neither", "changed"
        if line.prev == genesis(header) or (found is not None and found > index):
            follows = "the header" if found is None else everything[found].where
            return f"{line.where} was moved: it follows {follows} in the export, which is now after it", "reordered"
        if found is None:
            return f"a record was removed just before {line.where}: the line it followed is not in the file", "removed"
        inserted = ", ".join(other.where for other in everything[found + 1 : index])
        return f"{inserted} inserted into the export: {line.where} follows {everything[found].where}", "inserted"
    return None
