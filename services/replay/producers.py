"""Every fact comes from the party the catalogue lets publish it: a decision by anyone else is an impersonation.

The owner of a message type is the producer list of its home topic (schemas.routing.home_topic): OrderPlaced is
intake's, OrderApproved approval's, ChipsAllocated allocation's, policies and batches ops'. A copy re-keyed into
an inbox keeps the envelope of its original, so it is held to the same owner; and every record must be a type
the topic it was read from carries, or the services reading that topic were fed something they never expect.
"""

from __future__ import annotations

from collections.abc import Iterator

from schemas.routing import home_topic
from schemas.topics import BY_NAME, CATALOGUE
from services.replay.eventlog import EventLog, Located
from services.replay.violations import Violation, ids

KNOWN_PRODUCERS = frozenset(producer for topic in CATALOGUE for producer in topic.producers)
"""Every party the catalogue names as a producer of some topic."""


def producers_as_catalogued(log: EventLog) -> list[Violation]:
    """Each event (and each inbox copy) read from a topic that carries its type, published by its type's owner."""
    problems: list[Violation] = []
    for item in _every_record(log):
        e, spot = item.envelope, item.spot
        topic = BY_NAME.get(spot.topic)
        if topic is None or type(e.payload) not in topic.messages:
            message = f"{e.type} {e.id} at {spot} (producer {e.producer!r}): {spot.topic} does not carry {e.type}"
            problems.append(Violation("message_on_wrong_topic", message, ids(e)))
            continue
        owners = home_topic(e.payload).producers
        if e.producer in owners:
            continue
        code = "impersonated_producer" if e.producer in KNOWN_PRODUCERS else "unknown_producer"
        message = (
            f"{e.type} {e.id} at {spot} names producer {e.producer!r}; only {' or '.join(owners)} may publish it "
            f"({home_topic(e.payload).name} in the catalogue)"
        )
        problems.append(Violation(code, message, ids(e)))
    return problems


def _every_record(log: EventLog) -> Iterator[Located]:
    """The events where first read, then the inbox records not among them (one report per fact)."""
    seen = {e.id for e in log.events}
    yield from log.located()
    for partition in sorted(log.inbox):
        for item in log.inbox[partition]:
            # A copy of an event of the log is the same fact: only a record found in the inbox alone (one a
            # service decided on although no event topic holds it) is looked at here.
            if item.envelope.id not in seen:
                seen.add(item.envelope.id)
                yield item
