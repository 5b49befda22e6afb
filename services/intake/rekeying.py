"""Upstream records whose Kafka key is not their buyer: intake's router re-keys them into its inbox anyway.

The key and partition of a record on h200.intake.commands are the upstream client's choice: librdkafka
clients hash keys with CRC32, Java and kafka-python with murmur2, and a key in another case or no key lands
elsewhere again. Intake decides on h200.intake.inbox, keyed by the payload's buyer_id, so none of that changes
an outcome. A record keyed otherwise is still worth knowing about (its sender may rely on the key): each kind is
counted per source topic and logged the first time it is seen, not once per record.
"""

from __future__ import annotations

import logging
from collections import Counter

from services.common.records import Record

log = logging.getLogger(__name__)


def key_mismatch(key: bytes | None, buyer_id: str) -> str | None:
    """Why a record's key is not its buyer's id (a stable reason for counting), or None when it is."""
    if key is None:
        return "no_key"
    if key == buyer_id.encode():
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return "key_not_utf8"
    if text.strip().casefold() == buyer_id.casefold():
        return "key_in_other_case_or_padded"
    return "key_names_another_buyer"


class RekeyedRecords:
    """Counts, per (source topic, reason), the records re-keyed by buyer; logs the first of each."""

    def __init__(self, inbox: str) -> None:
        self.inbox = inbox
        self.counts: Counter[tuple[str, str]] = Counter()

    def note(self, record: Record, buyer_id: str) -> str | None:
        reason = key_mismatch(record.key, buyer_id)
        if reason is None:
            return None
        self.counts[(record.topic, reason)] += 1
        if self.counts[(record.topic, reason)] == 1:
            log.warning(
                "%s is keyed %r, not by its buyer %s (%s): decided under key %s in %s; "
                "further records of %s with this reason are counted, not logged",
                record.where,
                record.key,
                buyer_id,
                reason,
                buyer_id,
                self.inbox,
                record.topic,
            )
        return reason

    def by_reason(self) -> dict[str, int]:
        """`topic:reason` -> count, for the worker's stats page."""
        return {f"{topic}:{reason}": count for (topic, reason), count in sorted(self.counts.items())}
