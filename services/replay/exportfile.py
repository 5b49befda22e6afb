"""The export format: JSON lines, a header first, then one record per line in partition order.

    {"format": "h200-log-export", "version": 1, "source": "kafka://...", "exported_at": "...", "topics": {...}}
    {"topic": "h200.orders", "partition": 0, "offset": 0, "timestamp": 1769590800000, "key": "bytedance",
     "value": {"id": "...", "type": "OrderPlaced", ...}}

`timestamp_type` is Kafka's (1: the broker's LogAppendTime, the time an inbox record arrived; 0: the producer's
CreateTime), given when the reader knew it: a replay of the file refolds an inbox with the times its core read.

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
from services.replay.progress import Progress
from services.replay.records import LogRecord, ReplayError

FORMAT = "h200-log-export"
VERSION = 1


def make_header(source: str, topics: Iterable[str], exported_at: datetime | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "exported_at": (exported_at or datetime.now(UTC)).isoformat(),
        "topics": {name: BY_NAME[name].partitions for name in topics if name in BY_NAME},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text_or_b64(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": _b64(data)}


def encode_record(record: LogRecord) -> str:
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


def write_export(path: Path, header: dict[str, Any], records: Iterable[LogRecord]) -> int:
    """Write the header and the records to `path` (complete or not at all); returns how many records."""
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.write(json.dumps(header, ensure_ascii=False) + "\n")
            for record in records:
                out.write(encode_record(record) + "\n")
                count += 1
        os.replace(partial, path)
    except OSError as exc:
        raise ReplayError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return count


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
    if header.get("version") != VERSION:
        raise ReplayError(f"{path} is an export of format version {header.get('version')}; this tool reads {VERSION}")
    return header


def read_export(path: Path, topics: Iterable[str] | None = None, stream: TextIO | None = None) -> Iterator[LogRecord]:
    """The records of an export in file order, those of `topics` only if given."""
    read_header(path)
    wanted = None if topics is None else set(topics)
    progress = Progress(f"reading {path}", None, stream)
    with path.open(encoding="utf-8") as lines:
        next(lines)
        for number, text in enumerate(lines, start=2):
            if not text.strip():
                continue
            record = decode_record(text, f"{path}:{number}")
            progress.advance()
            if wanted is None or record.topic in wanted:
                yield record
    progress.close()


def exported_topics(path: Path) -> tuple[str, ...]:
    return tuple(read_header(path).get("topics", {}))
