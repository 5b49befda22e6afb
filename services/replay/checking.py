"""What every check of `verify` is: a fold over the log read once, record by record, that keeps only the facts it
needs (ids, quantities, a few names) and names what is wrong at the end. `h200 verify` feeds the checks while it
reads, so it holds what they keep, never the decoded log; an EventLog (tests, the simulation) is fed the same way.

Records come topic by topic in the catalogue's order, partition by partition, offset by offset (services.replay
.reading). A check that joins topics (a release and the shipment of its line, an allocation and the batch it
draws on) keeps what it joins on and decides at the end, so its findings do not depend on which topic was read
first: a log with its topics in another order (an export appended to) is checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from services.replay.eventlog import EventLog
from services.replay.reading import Read
from services.replay.violations import Violation


class Check(Protocol):
    def see(self, read: Read) -> None: ...

    def violations(self) -> list[Violation]: ...


def reads_of(log: EventLog) -> Iterator[Read]:
    """The log's events in the order read, then its inbox partition by partition (no check depends on where the
    inbox sits among the event topics)."""
    for envelope, spot in zip(log.events, log.spots, strict=True):
        yield Read(envelope, spot, False)
    for partition in sorted(log.inbox):
        for item in log.inbox[partition]:
            yield Read(item.envelope, item.spot, True)


def run(check: Check, reads: Iterable[Read]) -> list[Violation]:
    for read in reads:
        check.see(read)
    return check.violations()
