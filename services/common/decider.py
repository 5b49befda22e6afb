"""The decider shape every service core follows, and the one function that runs it.

A core is a module (or object) with:
    NAME: str                                        the producer name written into envelopes
    initial_state() -> State
    decide(state, message) -> Sequence[Message]      payloads of the facts `message` causes; never mutates state
    evolve(state, message) -> State                  folds an observed input or one of its own events
    time_of(state, message) -> datetime              (optional) the time of the decisions `message` causes;
                                                     without it, when the service learned of the message

`evolve` may reuse the previous state object (updating it in place) and return it: replays fold millions of
events and copying a whole book per event would make them quadratic. Callers therefore never keep an old
state after calling `evolve`. Neither function does I/O, reads a clock or makes random ids: time and ids come
from the envelopes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from schemas.base import Message
from schemas.envelope import Envelope, learned_at, make_envelope
from schemas.routing import record_key
from schemas.topics import BY_NAME

S = TypeVar("S")


class Core(Protocol[S]):
    NAME: str

    def initial_state(self) -> S: ...

    def decide(self, state: S, message: Envelope[Any]) -> Sequence[Message]: ...

    def evolve(self, state: S, message: Envelope[Any]) -> S: ...


def wrap(
    core_name: str, cause: Envelope[Any], payloads: Sequence[Message], at: datetime | None = None
) -> list[Envelope[Message]]:
    """Envelopes for the facts a message caused: ids derived from the cause; their time is the decision's (`at`),
    by default when the service learned of the cause (its inbox arrival, docs/time.md)."""
    occurred_at = learned_at(cause) if at is None else at
    copy = _broadcast_partition(cause)
    return [
        make_envelope(
            payload,
            key=record_key(payload),
            producer=core_name,
            occurred_at=occurred_at,
            cause=cause,
            discriminator=_discriminator(copy, index, payload),
        )
        for index, payload in enumerate(payloads)
    ]


def _broadcast_partition(cause: Envelope[Any]) -> int | None:
    """The inbox partition of a cause copied into every partition (a tick, a rule for every buyer), else None.
    Each copy has the id of the original, and each partition decides on it for its own keys: without the partition
    in their ids, the first decision of two partitions would be one id for two facts, and readers would drop one."""
    arrival = cause.arrival
    if arrival is None or arrival.topic not in BY_NAME:
        return None
    return arrival.partition if isinstance(cause.payload, BY_NAME[arrival.topic].broadcast) else None


def _discriminator(copy: int | None, index: int, payload: Message) -> str | int:
    # Unchanged for every cause that is not a broadcast copy, so ids recorded before stay what a refold derives.
    own = f"{index}:{payload.id_discriminator()}" if payload.id_discriminator() else index
    return own if copy is None else f"p{copy}:{own}"


def step(core: Any, state: S, message: Envelope[Any]) -> tuple[S, list[Envelope[Message]]]:
    """Decide on one input, then fold the input and every resulting event into the state."""
    time_of = getattr(core, "time_of", None)
    at = time_of(state, message) if time_of is not None else None
    outputs = wrap(core.NAME, message, core.decide(state, message), at)
    state = core.evolve(state, message)
    for output in outputs:
        state = core.evolve(state, output)
    return state, outputs


def fold(core: Any, messages: Sequence[Envelope[Any]], state: S | None = None) -> tuple[S, list[Envelope[Message]]]:
    """Run a sequence of inputs through a core: the final state and every event decided on the way."""
    current: S = core.initial_state() if state is None else state
    decided: list[Envelope[Message]] = []
    for message in messages:
        current, outputs = step(core, current, message)
        decided.extend(outputs)
    return current, decided
