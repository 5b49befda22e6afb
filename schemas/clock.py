"""Time as data: the clock's ticks, and approval's promise that a partition has decided everything before a time.

No core reads a clock. Time reaches them only as recorded facts: the broker's LogAppendTime of the inbox record
they decide on (its arrival) and ticks of the clock process, copied into every partition of the inboxes that act
as time passes (docs/time.md).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.base import Event, Slug, Timestamp


class ClockTicked(Event):
    """Business time has reached `at`: what is due at or before it (a policy in force, a licence that expires, an
    order left unfilled too long) is decided on this tick. Ticks of one clock strictly increase."""

    TYPE: ClassVar[str] = "ClockTicked"
    VERSION: ClassVar[int] = 1
    clock_id: Slug = "h200"
    at: Timestamp


class _ApprovalsPassedFields(Event):
    """What every version of ApprovalsPassed says (the versions differ only in what they add)."""

    model_config = ConfigDict(
        json_schema_extra={"x-h200-rules": ["lane: less than lanes", "source_partition: less than sources"]}
    )

    source_partition: Annotated[int, Field(ge=0, le=1023)]
    sources: Annotated[int, Field(ge=1, le=1024)]
    lane: Annotated[int, Field(ge=0, le=1023)]
    lanes: Annotated[int, Field(ge=1, le=1024)]
    at: Timestamp

    @model_validator(mode="after")
    def _positions_within_counts(self) -> Self:
        # Allocation's frontier counts one mark per (lane, source) below these counts: a marker outside its own
        # counts would be a mark that says nothing, so it is refused as a contract error.
        if self.lane >= self.lanes:
            raise ValueError("lane: must be less than lanes")
        if self.source_partition >= self.sources:
            raise ValueError("source_partition: must be less than sources")
        return self

    def id_discriminator(self) -> str:
        return f"{self.source_partition}/{self.lane}"


class ApprovalsPassedV1(_ApprovalsPassedFields):
    """Superseded by version 2, which says whether the marker bounds only its own lane's allocation partition;
    kept so that old records still decode (as lane_only false: every allocation partition counts them)."""

    TYPE: ClassVar[str] = "ApprovalsPassed"
    VERSION: ClassVar[int] = 1


class ApprovalsPassed(_ApprovalsPassedFields):
    """Approval's partition `source_partition` (of `sources`) will decide nothing more with a decided_at before
    `at`: everything it decided earlier is already written ahead of this marker on lane `lane` (the partition of
    h200.approvals this marker is written to). Allocation admits an approval into first-approved-first-served only
    once every source has passed its decided_at on the lanes that feed its partition, so a copy that is late cannot
    lose its place.

    A pool's approvals and their ends are all on one lane, and h200.approvals and h200.allocation.inbox have the
    same partitions under the same key (pool_id), so lane L feeds allocation partition L alone. A `lane_only`
    marker says so: it is copied to allocation partition `lane` only, and that partition's frontier is taken over
    its own lane's sources (docs/time.md). Version 1 markers (lane_only false) are copied to, and counted by, every
    partition: a log written before version 2 is refolded as it was decided."""

    TYPE: ClassVar[str] = "ApprovalsPassed"
    VERSION: ClassVar[int] = 2
    lane_only: bool = Field(
        default=False,
        description="true: counted only by allocation's partition `lane`, the one partition this lane feeds (and "
        "copied there alone); false: counted by every allocation partition, as version 1 markers are",
    )
