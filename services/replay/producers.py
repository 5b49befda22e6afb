"""Every fact comes from the party the catalogue lets publish it: a decision by anyone else is an impersonation.

The owner of a message type is the producer list of its home topic (schemas.routing.home_topic): OrderPlaced is
intake's, OrderApproved approval's, ChipsAllocated allocation's, policies and batches ops'. A copy re-keyed into
an inbox keeps the envelope of its original, so it is held to the same owner; and every record must be a type
the topic it was read from carries, or the services reading that topic were fed something they never expect.
"""

from __future__ import annotations

from uuid import UUID

from schemas.routing import home_topic
from schemas.topics import BY_NAME, CATALOGUE
from services.domain_kit.seen_ids import SeenIds
from services.replay.reading import Read
from services.replay.violations import Violation, ids

KNOWN_PRODUCERS = frozenset(producer for topic in CATALOGUE for producer in topic.producers)
"""Every party the catalogue names as a producer of some topic."""


class AsCatalogued:
    """Each event (and each inbox copy) read from a topic that carries its type, published by its type's owner.

    A copy of an event of the log is the same fact: only a record found in the inbox alone (one a service decided
    on although no event topic holds it) is reported as an inbox record. Its report waits for the end of the log,
    since the event topics after the inbox may still hold it. Keeps 16 bytes an id."""

    def __init__(self, events: SeenIds | None = None) -> None:
        self._own_events = events is None
        self.events = SeenIds() if events is None else events
        """The ids of the events read: shared with the reading when it keeps them (see Trail.events)."""
        self.inbox_seen = SeenIds()
        self.problems: list[Violation] = []
        self.inbox_only: dict[UUID, Violation] = {}

    def see(self, read: Read) -> None:
        envelope = read.envelope
        if not read.inbox:
            if self._own_events:
                self.events.add(envelope.id)
            found = _misplaced(read)
            if found is not None:
                self.problems.append(found)
            return
        if envelope.id in self.events or not self.inbox_seen.add_new(envelope.id):
            return
        found = _misplaced(read)
        if found is not None:
            self.inbox_only[envelope.id] = found

    def violations(self) -> list[Violation]:
        later = [found for event_id, found in self.inbox_only.items() if event_id not in self.events]
        return [*self.problems, *later]


def _misplaced(read: Read) -> Violation | None:
    e, spot = read.envelope, read.spot
    topic = BY_NAME.get(spot.topic)
    if topic is None or type(e.payload) not in topic.messages:
        message = f"{e.type} {e.id} at {spot} (producer {e.producer!r}): {spot.topic} does not carry {e.type}"
        return Violation("message_on_wrong_topic", message, ids(e))
    owners = home_topic(e.payload).producers
    if e.producer in owners:
        return None
    code = "impersonated_producer" if e.producer in KNOWN_PRODUCERS else "unknown_producer"
    message = (
        f"{e.type} {e.id} at {spot} names producer {e.producer!r}; only {' or '.join(owners)} may publish it "
        f"({home_topic(e.payload).name} in the catalogue)"
    )
    return Violation(code, message, ids(e))
