"""The projector's own dead letters (h200.dlq.projector), and how it counts those of the services.

Its dead letters are sent and acknowledged before the batch that counts them is applied ("durable before
counted"). One the cluster refuses for its size is sent shortened (services.common.dead_letters); a failure
that passes is waited out, unless the projector is asked to stop, and then the batch is not applied and is
read again at the next start. Dead letters of the services are counted once per record they stand for: a
service that crashed after dead-lettering a record and read it again sends a second, identical one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kafka.errors import CorruptRecordError, KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

from schemas.codec import ContractError
from services.common.dead_letters import DeadLetter, dead_letter
from services.common.records import Record
from services.common.retry import FailureLog

log = logging.getLogger("h200.projector")

REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, CorruptRecordError)
RETRY_S = (0.1, 0.5, 1.0, 5.0)
SEND_WAIT_S = 10.0
FIELD_CHARS = 64


def source_of(record: Record) -> tuple[str, str]:
    """(the counter field `service:code`, the id of what a service's dead letter stands for) from its headers."""
    found = {name: data for name, data in record.headers}

    def text(name: str) -> str:
        return found.get(name, b"?").decode("utf-8", "replace")[:FIELD_CHARS]

    field = f"{text('dlq.service')}:{text('dlq.error_code')}"
    coordinates = [
        text(name) for name in ("dlq.service", "dlq.source_topic", "dlq.source_partition", "dlq.source_offset")
    ]
    if "?" in coordinates:
        return field, ""  # not written by a service: counted by its own position only
    return field, "dead-letter:" + ":".join(coordinates)


class ProjectorLetters:
    def __init__(self, producer: Any, max_bytes: int, running: Callable[[], bool]) -> None:
        self.producer = producer
        self.max_bytes = max_bytes
        self.running = running
        self.pending: list[tuple[Record, ContractError]] = []
        self.counts: Counter[str] = Counter()
        """Records dead-lettered since the start, by error code."""

    def add(self, record: Record, error: ContractError) -> None:
        self.pending.append((record, error))
        self.counts[error.code] += 1
        log.warning("dead-lettering %s: %s", record.where, error)

    def flush(self) -> bool:
        """Send what was added; False if the projector was asked to stop before all were acknowledged."""
        pending, self.pending = self.pending, []
        at = datetime.now(UTC)
        for record, error in pending:
            whole = dead_letter("projector", record, error, at, self.max_bytes)
            shortened = partial(dead_letter, "projector", record, error, at, self.max_bytes, shorten=True)
            if not self._send(whole, shortened):
                return False
        return True

    def _send(self, letter: DeadLetter, shortened: Callable[[], DeadLetter]) -> bool:
        failures = FailureLog(f"dead-lettering to {letter.topic}", log)
        while True:
            try:
                sent = self.producer.send(letter.topic, key=letter.key, value=letter.value, headers=letter.headers)
                sent.get(timeout=SEND_WAIT_S)  # bounded, so that a stop request is seen during an outage
                failures.succeeded()
                return True
            except REFUSED as refused:
                if letter.truncated:
                    log.error("h200.dlq.projector refused even a shortened dead letter (%s); not sent", refused)
                    return True
                log.warning("the dead letter was refused (%s); sending it shortened", refused)
                letter = shortened()
            except KafkaError as error:
                delay = RETRY_S[min(failures.failures, len(RETRY_S) - 1)]
                failures.failed(error, delay)
                time.sleep(delay)  # the projector's loop is synchronous: nothing else waits on it
                if not self.running():
                    return False
