"""Input a service cannot accept goes to its dead-letter topic with the reason and where it came from; and is counted.

A dead letter carries the original bytes when they fit in one record under the cluster's limit. A record can be
accepted by the broker and still not fit once the dlq.* headers are added (its producer allowed more than ours
does): its dead letter carries the first 64 KiB of the value, marked dlq.truncated=true, with the original length
and SHA-256, so that it can always be sent; the source coordinates find the whole record, which stays in its
topic. The size is worked out before sending, so a dead letter never fails for its size and never stalls a worker.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.codec import ContractError
from services.common.logs import FIELDS
from services.common.records import Record

log = logging.getLogger(__name__)

VALUE_HEAD = 64 * 1024
"""How much of a value too large to dead-letter whole is kept."""
KEY_HEAD = 1024
ERROR_CHARS = 4000
RECORD_OVERHEAD = 128
"""More than a record batch adds around one record: the v2 batch header (61 bytes) and the record's varints."""


class RecordRefusedError(Exception):
    """The producer or the broker will never take this record as it is (too large, corrupt): retrying is useless."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{topic} refused the record: {reason}")
        self.topic = topic
        self.reason = reason


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    truncated: bool = False

    @property
    def size(self) -> int:
        return record_size(self.key, self.value, self.headers)


Send = Callable[[DeadLetter], Awaitable[object]]


def dead_letter_topic(service: str) -> str:
    return f"h200.dlq.{service}"


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """At least what one record takes in a produce request, as producers count it against their limit."""
    fields = sum(len(name.encode()) + len(data) + 10 for name, data in headers)
    return RECORD_OVERHEAD + len(key or b"") + len(value or b"") + fields


def _encoded(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    # backslashreplace: an error detail may quote text that is not valid UTF-8 (a lone surrogate from JSON).
    return [(name, text.encode("utf-8", "backslashreplace")) for name, text in headers.items()]


def dead_letter(
    service: str, record: Record, error: ContractError, at: datetime, max_bytes: int, *, shorten: bool = False
) -> DeadLetter:
    """The dead letter of a record: whole if it fits in `max_bytes` (and `shorten` is not asked), else shortened."""
    value = record.value or b""
    ours = {
        "dlq.error_code": error.code,
        "dlq.error": error.detail[:ERROR_CHARS],
        "dlq.source_topic": record.topic,
        "dlq.source_partition": str(record.partition),
        "dlq.source_offset": str(record.offset),
        "dlq.service": service,
        "dlq.at": at.isoformat(),
        "dlq.original_length": str(len(value)),
        "dlq.original_sha256": hashlib.sha256(value).hexdigest(),
        "dlq.truncated": "false",
    }
    theirs = [(name, data) for name, data in record.headers if not name.startswith("dlq.")]
    topic = dead_letter_topic(service)
    whole = DeadLetter(topic, record.key, record.value, _encoded(ours) + theirs)
    if not shorten and whole.size <= max_bytes:
        return whole
    ours["dlq.truncated"] = "true"
    key = record.key[:KEY_HEAD] if record.key is not None else None
    headers = _encoded(ours)
    if record_size(key, None, headers + theirs) + VALUE_HEAD <= max_bytes:
        headers += theirs  # the record's own headers are kept when they leave room for the value's head
    room = max(0, max_bytes - record_size(key, None, headers))
    head = None if record.value is None else record.value[: min(VALUE_HEAD, room)]
    return DeadLetter(topic, key, head, headers, truncated=True)


class DeadLetters:
    def __init__(self, service: str, send: Send, max_bytes: int) -> None:
        """`max_bytes`: the largest record the producer sends and the cluster accepts."""
        self.service = service
        self.topic = dead_letter_topic(service)
        self.max_bytes = max_bytes
        self._send = send
        self.counts: Counter[str] = Counter()
        self.unsent = 0

    async def reject(self, record: Record, error: ContractError, at: datetime) -> None:
        letter = dead_letter(self.service, record, error, at, self.max_bytes)
        try:
            await self._send(letter)
        except RecordRefusedError as refused:
            # The cluster takes less than we were told (H200_MAX_MESSAGE_BYTES is above the topic's limit).
            log.warning("%s; sending the dead letter of %s shortened instead", refused, record.where)
            letter = dead_letter(self.service, record, error, at, self.max_bytes, shorten=True)
            try:
                await self._send(letter)
            except RecordRefusedError as again:
                self.unsent += 1
                log.error(
                    "could not dead-letter %s (%s) even shortened: %s. The record stays at its source; "
                    "lower H200_MAX_MESSAGE_BYTES to the max.message.bytes of %s",
                    record.where,
                    error,
                    again,
                    self.topic,
                )
                return
        self.counts[error.code] += 1
        fields = {
            "service": self.service,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "code": error.code,
            "dead_letter_topic": self.topic,
        }
        log.warning(
            "dead-lettered %s%s: %s (%s total of %s)",
            record.where,
            " (shortened)" if letter.truncated else "",
            error,
            self.counts[error.code],
            error.code,
            extra={FIELDS: fields},
        )
