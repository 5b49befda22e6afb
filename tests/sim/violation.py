"""What the oracle reports: the invariant broken, in words, and the events that show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.envelope import Envelope

from .actions import describe_message


@dataclass(frozen=True)
class Violation:
    check: str
    message: str
    events: tuple[Envelope[Any], ...] = ()

    def __str__(self) -> str:
        lines = [f"[{self.check}] {self.message}"]
        lines += [f"    {describe_message(envelope)}" for envelope in self.events]
        return "\n".join(lines)
