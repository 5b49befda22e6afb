"""Time as data: the clock's ticks, and approval's promise that a partition has decided everything before a time.

No core reads a clock. Time reaches them only as recorded facts: the broker's LogAppendTime of the inbox record
they decide on (its arrival) and ticks of the clock process, copied into every partition of the inboxes that act
as time passes (docs/time.md).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from schemas.base import Event, Slug, Timestamp


class ClockTicked(Event):
    """Business time has reached `at`: what is due at or before it (a policy in force, a licence that expires, an
    order left unfilled too long) is decided on this tick. Ticks of one clock strictly increase."""

    TYPE: ClassVar[str] = "ClockTicked"
    VERSION: ClassVar[int] = 1
    clock_id: Slug = "h200"
    at: Timestamp


class ApprovalsPassed(Event):
    """Approval's partition `source_partition` (of `sources`) will decide nothing more with a decided_at before
    `at`: everything it decided earlier is already written ahead of this marker on lane `lane` (the partition of
    h200.approvals this marker is written to). Allocation admits an approval into first-approved-first-served only
    once every source has passed its decided_at on every lane, so a copy that is late cannot lose its place."""

    TYPE: ClassVar[str] = "ApprovalsPassed"
    VERSION: ClassVar[int] = 1
    source_partition: Annotated[int, Field(ge=0, le=1023)]
    sources: Annotated[int, Field(ge=1, le=1024)]
    lane: Annotated[int, Field(ge=0, le=1023)]
    lanes: Annotated[int, Field(ge=1, le=1024)]
    at: Timestamp

    def id_discriminator(self) -> str:
        return f"{self.source_partition}/{self.lane}"
