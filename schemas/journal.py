"""The decision journal: what a service decided on each record of its inbox, written before any of it is sent.

A worker that rebuilds a partition folds these entries (the decider's `evolve` over the recorded facts) instead of
deciding again, and a record decided before a crash but not yet committed is answered with what was recorded: a
deployed change to a core can never change or repeat a decision already made (issue #9). One journal topic per
deciding service, partitioned like its inbox; an entry is keyed by its inbox offset.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Contract

Outcome = Literal["decided", "rejected", "failed"]
"""decided: the core decided (outputs may be empty); rejected: the record is not a valid message (dead-lettered);
failed: the core raised on it (dead-lettered as processing_failed, nothing folded)."""


class JournalEntry(Contract):
    """One inbox record's decision, or one part of it when its outputs do not fit in one record."""

    version: Literal[1] = 1
    inbox: Annotated[str, Field(min_length=1)]
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)] = Field(description="the inbox offset of the record decided on")
    record_sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] = Field(
        description="of the inbox record's value: an entry is used only for the very record it was written for"
    )
    core_version: Annotated[str, Field(min_length=1)] = Field(description="the core that decided (its name@digest)")
    outcome: Outcome
    error_code: str | None = None
    error_detail: str | None = None
    outputs: tuple[str, ...] = Field(default=(), description="the encoded envelopes decided, in the order sent")
    part: Annotated[int, Field(ge=0)] = 0
    parts: Annotated[int, Field(ge=1)] = 1
