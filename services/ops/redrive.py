"""Dead letters as the operator reads them, and the rule for sending one again. Pure: records in, answers out.

A dead letter re-driven is sent under a new envelope id that records the original one: `causation_id` is the
original envelope's id, `correlation_id`, key, type, producer, time and payload stay as they were. Readers apply an
id once, so the original id would be dropped wherever it had been applied already; the new id is
`derive_id("redrive", original id, dlq service, dlq offset)`, so re-driving the same dead letter twice sends the
same id twice, and readers apply it once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from schemas.base import Message
from schemas.codec import ContractError, decode, encode
from schemas.envelope import Envelope, derive_id
from schemas.routing import record_key
from schemas.topics import BY_NAME
from services.replay.records import LogRecord

ERROR_SHOWN = 60
"""Characters of dlq.error shown in a listing; `show` prints it whole."""
HEX_SHOWN = 256
"""Bytes of a value that is not UTF-8 shown in hex."""


@dataclass(frozen=True)
class Letter:
    """One record of an h200.dlq.<service> topic and what its dlq.* headers say."""

    service: str
    record: LogRecord

    @property
    def offset(self) -> int:
        return self.record.offset

    def header(self, name: str, default: str = "") -> str:
        for key, data in self.record.headers:
            if key == name:
                return data.decode("utf-8", "backslashreplace")
        return default

    @property
    def dlq_headers(self) -> dict[str, str]:
        return {key: self.header(key) for key, _ in self.record.headers if key.startswith("dlq.")}

    @property
    def own_headers(self) -> list[tuple[str, bytes]]:
        """The original record's headers, as the dead letter kept them."""
        return [(key, data) for key, data in self.record.headers if not key.startswith("dlq.")]

    @property
    def code(self) -> str:
        return self.header("dlq.error_code", "unknown")

    @property
    def truncated(self) -> bool:
        return self.header("dlq.truncated") == "true"

    @property
    def source(self) -> str:
        topic, partition = self.header("dlq.source_topic", "?"), self.header("dlq.source_partition", "?")
        return f"{topic}[{partition}]@{self.header('dlq.source_offset', '?')}"

    @property
    def size(self) -> int:
        """Bytes of the original value (more than the dead letter holds when it was truncated)."""
        length = self.header("dlq.original_length")
        return int(length) if length.isdigit() else len(self.record.value or b"")

    def summary(self) -> dict[str, Any]:
        error = self.header("dlq.error")
        return {
            "service": self.service,
            "offset": self.offset,
            "code": self.code,
            "source": self.source,
            "at": self.header("dlq.at"),
            "size": self.size,
            "truncated": self.truncated,
            "error": error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 3] + "...",
        }


def counts(letters: list[Letter]) -> dict[str, dict[str, int]]:
    """Dead letters per service, then per error code."""
    found: dict[str, Counter[str]] = {}
    for letter in letters:
        found.setdefault(letter.service, Counter())[letter.code] += 1
    return {service: dict(sorted(codes.items())) for service, codes in sorted(found.items())}


def value_text(letter: Letter) -> list[str]:
    """The value held: as text when it is UTF-8, else a hex preview; and what is missing when it was truncated."""
    value = letter.record.value
    if value is None:
        lines = ["value: none (the record had no value)"]
    else:
        try:
            lines = [f"value ({len(value)} bytes, UTF-8):", value.decode("utf-8")]
        except UnicodeDecodeError:
            more = f" (first {HEX_SHOWN})" if len(value) > HEX_SHOWN else ""
            lines = [f"value ({len(value)} bytes, not UTF-8; hex{more}):", value[:HEX_SHOWN].hex(" ")]
    if letter.truncated:
        lines.append(
            f"truncated: the original was {letter.size} bytes, sha256 {letter.header('dlq.original_sha256')}; "
            f"the whole record is at {letter.source}"
        )
    return lines


def envelope_now(letter: Letter) -> Envelope[Message]:
    """The value as a valid envelope under today's contracts; ContractError says why not."""
    if letter.record.value is None:
        raise ContractError("empty_value", "the record has no value (a tombstone is not a message)")
    return decode(letter.record.value)


def redrive_id(original: UUID, service: str, offset: int) -> UUID:
    return derive_id("redrive", original, service, offset)


@dataclass(frozen=True)
class Resend:
    """A record to send again: where to, under which key, and the envelope with its new id."""

    topic: str
    partition: int | None
    """None: the producer's partitioner chooses by key."""
    key: bytes
    envelope: Envelope[Message]
    headers: list[tuple[str, bytes]]

    @property
    def value(self) -> bytes:
        return encode(self.envelope)


class RedriveRefusedError(ValueError):
    """A dead letter that cannot be sent again as it is; the message says why and what to do instead."""


def refusal_of_truncated(letter: Letter) -> str:
    return (
        f"the dead letter holds only the first {len(letter.record.value or b'')} of {letter.size} bytes "
        f"(dlq.truncated=true): the original must be re-sent by its producer; it is the record of sha256 "
        f"{letter.header('dlq.original_sha256')} at {letter.source}"
    )


def resend(letter: Letter, to: str | None) -> Resend:
    """What re-driving `letter` sends: to its source topic and partition under its own key, or to `to` under the
    catalogue's key for that topic. RedriveRefusedError when it cannot be sent as it is."""
    if letter.truncated:
        raise RedriveRefusedError(refusal_of_truncated(letter))
    try:
        original = envelope_now(letter)
    except ContractError as exc:
        raise RedriveRefusedError(
            f"the value does not decode as an envelope now [{exc.code}] {exc.detail}; nothing to re-send until "
            "its contract or its producer is fixed"
        ) from None
    source = letter.header("dlq.source_topic")
    topic = to or source
    catalogued = BY_NAME.get(topic)
    if catalogued is None or catalogued.dead_letter:
        raise RedriveRefusedError(f"{topic} is no topic of the catalogue a service reads (`h200 catalogue`)")
    if original.type not in {message.TYPE for message in catalogued.messages}:
        raise RedriveRefusedError(f"{topic} does not carry {original.type}: give --to the topic that does")
    renewed = original.model_copy(
        update={"id": redrive_id(original.id, letter.service, letter.offset), "causation_id": original.id}
    )
    if topic == source:
        partition = letter.header("dlq.source_partition")
        key = letter.record.key if letter.record.key is not None else original.key.encode()
        return Resend(topic, int(partition) if partition.isdigit() else None, key, renewed, letter.own_headers)
    if catalogued.carries_copies:
        raise RedriveRefusedError(f"{topic} is an inbox its service's routers fill: give the message's home topic")
    key = record_key(original.payload, catalogued).encode()
    return Resend(topic, None, key, renewed, letter.own_headers)
