"""The export format: JSON lines, a header first, then one record per line in partition order.

    {"format": "h200-log-export", "version": 1, "source": "kafka://...", "exported_at": "...", "topics": {...}}
    {"topic": "h200.orders", "partition": 0, "offset": 0, "timestamp": 1769590800000, "key": "bytedance",
     "value": {"id": "...", "type": "OrderPlaced", ...}}

`timestamp_type` is Kafka's (1: the broker's LogAppendTime, the time an inbox record arrived; 0: the producer's
CreateTime), given when the reader knew it: a replay of the file refolds an inbox with the times its core read.

Since version 2 each record line also carries `prev` and `hash`, and a trailer `{"chain_head": ..., "records": N}`
ends the file: the hash chain of services.replay.chain, which `h200 verify --from-file` checks. Version 1 files
(no chain) are still read.

`value` is the envelope as a JSON object (`value_b64` holds a value that is not a JSON object or would not
read back byte for byte, `null` a tombstone); `key_b64` a key that is not UTF-8; `headers`, when present, is a
list of [name, text] (or [name, {"b64": ...}]). The order of the lines per partition is the order of the log.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from schemas.codec import MAX_DEPTH
from schemas.topics import BY_NAME
from services.replay.chain import TRAILER, Chain, ChainReport, check_chain
from services.replay.chain import Line as ChainLine
from services.replay.progress import Progress
from services.replay.records import LogRecord, ReplayError

FORMAT = "h200-log-export"
VERSION = 2
READABLE = (1, 2)


def make_header(source: str, topics: Iterable[str], exported_at: datetime | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "exported_at": (exported_at or datetime.now(UTC)).isoformat(),
        "topics": {name: BY_NAME[name].partitions for name in topics if name in BY_NAME},
        "chain": "sha256(prev + canonical record), every record (services.replay.chain)",
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text_or_b64(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": _b64(data)}


def encode_record(record: LogRecord, seal: dict[str, str] | None = None) -> str:
    """The record's line; `seal` its chain fields (`prev`, `hash`)."""
    line: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
    }
    if record.timestamp_type is not None:
        line["timestamp_type"] = record.timestamp_type
    key = None if record.key is None else _text_or_b64(record.key)
    line["key_b64" if isinstance(key, dict) else "key"] = key["b64"] if isinstance(key, dict) else key
    value: Any = None
    if record.value is not None:
        value = _as_json(record.value)
        if value is None:
            line["value_b64"] = _b64(record.value)
    if "value_b64" not in line:
        line["value"] = value
    if record.headers:
        line["headers"] = [[name, _text_or_b64(data)] for name, data in record.headers]
    line.update(seal or {})
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _as_json(value: bytes) -> dict[str, Any] | None:
    """The value as a JSON object if it reads back to the very same bytes, else None (it is kept in base64).

    A poison record (nested too deep, an integer Python will not convert, a duplicate key) must neither stop an
    export nor be rewritten on its way to an import."""
    if value.count(b"{") + value.count(b"[") > MAX_DEPTH:
        return None  # possibly too deep for the line that holds it to be read back
    try:
        found = json.loads(value)
        same = isinstance(found, dict) and _json_bytes(found) == value
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return found if same else None


def decode_record(text: str, where: str) -> LogRecord:
    """One record line; ReplayError names the line and what is wrong with it."""
    try:
        line = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReplayError(f"{where}: not a record of an h200 export ({exc})") from None
    return record_of(line, where)


def record_of(line: Any, where: str) -> LogRecord:
    """The record of a parsed line; ReplayError names the line and what is wrong with it."""
    try:
        topic, partition, offset = line["topic"], int(line["partition"]), int(line["offset"])
        if topic not in BY_NAME:
            raise ValueError(f"topic {topic!r} is not in the catalogue")
        if not 0 <= partition < BY_NAME[topic].partitions:
            raise ValueError(f"{topic} has partitions 0..{BY_NAME[topic].partitions - 1}, not {partition}")
        key = base64.b64decode(line["key_b64"]) if "key_b64" in line else _utf8(line.get("key"))
        if "value_b64" in line:
            value: bytes | None = base64.b64decode(line["value_b64"])
        else:
            value = None if line["value"] is None else _json_bytes(line["value"])
        headers = tuple((str(name), _header_bytes(data)) for name, data in line.get("headers", ()))
        timestamp, kind = line.get("timestamp"), line.get("timestamp_type")
        return LogRecord(
            topic,
            partition,
            offset,
            key,
            value,
            None if timestamp is None else int(timestamp),
            headers,
            None if kind is None else int(kind),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise ReplayError(f"{where}: not a record of an h200 export ({detail})") from None


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _json_bytes(value: Any) -> bytes:
    # The compact form the services write (pydantic's model_dump_json): the same bytes after a round trip.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _header_bytes(data: Any) -> bytes:
    return base64.b64decode(data["b64"]) if isinstance(data, dict) else str(data).encode("utf-8")


def write_export(path: Path, header: dict[str, Any], records: Iterable[LogRecord]) -> Chain:
    """Write the header, the records and the chain's trailer to `path` (complete or not at all); returns the
    chain (its head and how many records)."""
    partial = path.with_name(f".{path.name}.partial")
    chain = Chain(header)
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.write(json.dumps(header, ensure_ascii=False) + "\n")
            for record in records:
                out.write(encode_record(record, chain.seal(record)) + "\n")
            out.write(json.dumps(chain.trailer()) + "\n")
        os.replace(partial, path)
    except OSError as exc:
        raise ReplayError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return chain


def read_header(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as lines:
            first = lines.readline()
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ReplayError(
            f'{path} is not an h200 export: its first line must be the header {{"format": "{FORMAT}"...}}'
        )
    if header.get("version") not in READABLE:
        raise ReplayError(
            f"{path} is an export of format version {header.get('version')}; this tool reads "
            f"{' and '.join(map(str, READABLE))}"
        )
    return header


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Each line after the header, parsed, with its line number; ReplayError names a line that is not JSON."""
    read_header(path)
    with path.open(encoding="utf-8") as lines:
        next(lines)
        for number, text in enumerate(lines, start=2):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise ReplayError(f"{path}:{number}: not a record of an h200 export ({exc})") from None


def _is_trailer(line: Any) -> bool:
    return isinstance(line, dict) and TRAILER in line


def read_export(path: Path, topics: Iterable[str] | None = None, stream: TextIO | None = None) -> Iterator[LogRecord]:
    """The records of an export in file order, those of `topics` only if given."""
    wanted = None if topics is None else set(topics)
    progress = Progress(f"reading {path}", None, stream)
    for number, line in _lines(path):
        if _is_trailer(line):
            continue
        record = record_of(line, f"{path}:{number}")
        progress.advance()
        if wanted is None or record.topic in wanted:
            yield record
    progress.close()


def chain_lines(path: Path) -> Iterator[ChainLine]:
    """The record lines with their chain fields, in file order (every topic)."""
    for number, line in _lines(path):
        if not _is_trailer(line):
            prev, sealed = line.get("prev"), line.get("hash")
            record = record_of(line, f"{path}:{number}")
            yield ChainLine(
                number, record, prev if isinstance(prev, str) else None, sealed if isinstance(sealed, str) else None
            )


def check_export_chain(path: Path) -> ChainReport | None:
    """The chain of a version 2 export checked (services.replay.chain); None for a version 1 file, which has none."""
    header = read_header(path)
    if header.get("version") == 1:
        return None
    return check_chain(header, lambda: chain_lines(path), _trailer(path))


def _trailer(path: Path, tail: int = 4096) -> dict[str, Any] | None:
    """The file's last line if it is the chain's trailer (read from the end: the file may be long)."""
    with path.open("rb") as data:
        data.seek(max(data.seek(0, os.SEEK_END) - tail, 0))
        last = next((text for text in reversed(data.read().splitlines()) if text.strip()), b"")
    try:
        line = json.loads(last)
    except ValueError:
        return None
    return line if _is_trailer(line) else None


def exported_topics(path: Path) -> tuple[str, ...]:
    return tuple(read_header(path).get("topics", {}))
