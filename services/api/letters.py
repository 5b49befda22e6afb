"""Dead letters over HTTP: the list, one letter, and re-driving one, with the very rules `h200 dead-letters` applies
(services.ops.redrive: the new id, what is refused and why). Pure: the letters and a sender come from the gateway.

The API sends as its own Kafka principal (`api`), which may write only what the catalogue grants it: a re-drive to
any other topic is refused here with the command an operator runs instead, rather than sent and refused by the
broker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.codec import ContractError
from schemas.principals import grants_of
from services.common.dead_letters import dead_letter_topic
from services.ops.redrive import Letter, RedriveRefusedError, Resend, counts, envelope_now, resend, value_text

API_PRINCIPAL = "api"


def writable_topics(principal: str = API_PRINCIPAL) -> frozenset[str]:
    return frozenset(g.resource for g in grants_of(principal) if g.resource_type == "topic" and g.operation == "WRITE")


class LetterNotFoundError(LookupError):
    """No dead letter at that offset; the message says which offsets there are."""


class RedriveNotHereError(RuntimeError):
    """A re-drive the API may not send (it names the topic and the command to run instead)."""


def listing(found: list[Letter], code: str | None = None) -> dict[str, Any]:
    kept = [letter for letter in found if code is None or letter.code == code]
    return {"dead_letters": [letter.summary() for letter in kept], "counts": counts(kept)}


def find(found: list[Letter], service: str, offset: int) -> Letter:
    for letter in found:
        if letter.service == service and letter.offset == offset:
            return letter
    held = [letter.offset for letter in found if letter.service == service]
    where = f"offsets {held[0]} to {held[-1]}" if held else "no record"
    raise LetterNotFoundError(f"{dead_letter_topic(service)} has no record at offset {offset} ({where})")


def detail(letter: Letter) -> dict[str, Any]:
    """Everything `h200 dead-letters show` prints, as a document, with what a re-drive would send."""
    document: dict[str, Any] = {
        **letter.summary(),
        "error": letter.header("dlq.error"),
        "dlq_headers": letter.dlq_headers,
        "original_headers": {name: data.decode("utf-8", "backslashreplace") for name, data in letter.own_headers},
        "key": None if letter.record.key is None else letter.record.key.decode("utf-8", "backslashreplace"),
        "value": value_text(letter),
    }
    try:
        envelope = envelope_now(letter)
    except ContractError as exc:
        document["decodes_now"] = {"decodes": False, "code": exc.code, "detail": exc.detail}
    else:
        document["decodes_now"] = {
            "decodes": True,
            "type": envelope.type,
            "version": envelope.version,
            "id": str(envelope.id),
        }
    try:
        document["redrive"] = {"possible": True, **_resend_document(resend(letter, None))}
    except RedriveRefusedError as refused:
        document["redrive"] = {"possible": False, "refused": str(refused)}
    return document


def _resend_document(record: Resend) -> dict[str, Any]:
    envelope = record.envelope
    return {
        "topic": record.topic,
        "partition": record.partition,
        "key": record.key.decode("utf-8", "backslashreplace"),
        "type": envelope.type,
        "new_id": str(envelope.id),
        "causation_id": str(envelope.causation_id),
    }


def redrive(
    letter: Letter,
    to: str | None,
    dry_run: bool,
    sent_before: Callable[[Resend], str | None],
    send: Callable[[Resend], tuple[int, int]],
) -> dict[str, Any]:
    """Re-drive `letter` as `h200 dead-letters redrive` does: refused (RedriveRefusedError), already sent (nothing
    sent again), would send (dry run) or sent, with the record's new id and where it went."""
    where = f"{dead_letter_topic(letter.service)}@{letter.offset}"
    record = resend(letter, to)
    document = {"dead_letter": where, **_resend_document(record)}
    if record.topic not in writable_topics():
        raise RedriveNotHereError(
            f"the API may write only {', '.join(sorted(writable_topics()))}, not {record.topic}: run "
            f"`h200 dead-letters redrive {letter.service} {letter.offset}` as a principal that writes {record.topic}"
        )
    earlier = sent_before(record)
    if earlier is not None:
        return {**document, "outcome": "already_sent", "at": earlier}
    if dry_run:
        return {**document, "outcome": "would_send"}
    partition, offset = send(record)
    return {**document, "outcome": "sent", "at": f"{record.topic}[{partition}]@{offset}"}
