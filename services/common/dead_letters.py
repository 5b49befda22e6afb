"""Input a service cannot accept goes to its dead-letter topic, byte for byte, with the reason; and is counted."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

from schemas.codec import ContractError
from services.common.records import Record

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[object]]


def dead_letter_topic(service: str) -> str:
    return f"h200.dlq.{service}"


def dead_letter_headers(service: str, record: Record, error: ContractError, at: datetime) -> list[tuple[str, bytes]]:
    """The headers the catalogue documents (schemas.topics.DEAD_LETTER_HEADERS), plus the record's own."""
    ours = {
        "dlq.error_code": error.code,
        "dlq.error": error.detail[:4000],
        "dlq.source_topic": record.topic,
        "dlq.source_partition": str(record.partition),
        "dlq.source_offset": str(record.offset),
        "dlq.service": service,
        "dlq.at": at.isoformat(),
    }
    return [(k, v.encode()) for k, v in ours.items()] + [(k, v) for k, v in record.headers if not k.startswith("dlq.")]


class DeadLetters:
    def __init__(self, service: str, send: Send) -> None:
        self.service = service
        self.topic = dead_letter_topic(service)
        self._send = send
        self.counts: Counter[str] = Counter()

    async def reject(self, record: Record, error: ContractError, at: datetime) -> None:
        await self._send(self.topic, record.key, record.value, dead_letter_headers(self.service, record, error, at))
        self.counts[error.code] += 1
        log.warning("dead-lettered %s: %s (%s total of %s)", record.where, error, self.counts[error.code], error.code)
