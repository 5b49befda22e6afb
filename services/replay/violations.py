"""A broken rule found in the log, with the ids of the events involved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    events: tuple[str, ...] = ()

    def __str__(self) -> str:
        named = f" (events: {', '.join(self.events)})" if self.events else ""
        return f"{self.message}{named}"


class Named(Protocol):
    """An event, or the few facts a check keeps of one: what a violation names is its id."""

    @property
    def id(self) -> UUID: ...


def ids(*events: Named | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(e.id) for e in events if e is not None))
