"""A broken rule found in the log, with the ids of the events involved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.envelope import Envelope


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    events: tuple[str, ...] = ()

    def __str__(self) -> str:
        named = f" (events: {', '.join(self.events)})" if self.events else ""
        return f"{self.message}{named}"


def ids(*envelopes: Envelope[Any] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(e.id) for e in envelopes if e is not None))
