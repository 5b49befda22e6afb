"""What became of a command the CLI sent, told from the events its service recorded. Pure: events in, verdicts out.

A watch looks at the events of the outcome topic in offset order. Those already there when the command was sent
(`fresh=False`) tell of an identical command sent before (same content, same id: recorded once) or of a history
that makes the service record nothing for it (a repeated step report, an identical resend of an order); the ones
after it are the service's answer. `settle` runs a set of watches over such a stream until each has a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from schemas.base import Message, Reason
from schemas.envelope import Envelope, order_id_for
from schemas.fulfilment import FulfilmentStepRecorded, FulfilmentStepRejected, RecordFulfilmentStep
from schemas.intake import OrderPlaced, OrderSubmissionRejected, OrderTerms, SubmitOrder

Verdict = Literal["recorded", "unchanged", "refused", "unknown"]

EXIT_CODES: dict[Verdict, int] = {"recorded": 0, "unchanged": 0, "refused": 1, "unknown": 3}
"""Exit status of a write command by its worst outcome: a refusal is 1, no answer within the time allowed 3."""


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    text: str


@dataclass(frozen=True)
class Seen:
    """An event read from the outcome topic; `fresh` when it was written after the command was sent."""

    envelope: Envelope[Message]
    fresh: bool


@dataclass(frozen=True)
class CaughtUp:
    """Every event that was on the outcome topic when the command was sent has been read."""


class Watch(Protocol):
    key: bytes
    """The record key of the events that can answer: others are skipped undecoded."""
    outcome: Outcome | None

    def see(self, seen: Seen) -> None: ...

    def caught_up(self) -> None: ...

    def timed_out(self, seconds: float) -> Outcome: ...


def _refusal(reason: Reason) -> str:
    return f"[{reason.code}] {reason.message}"


class StepWatch:
    """What fulfilment made of one RecordFulfilmentStep (h200.fulfilment, keyed by allocation)."""

    def __init__(self, command: Envelope[RecordFulfilmentStep]) -> None:
        self.command = command
        self.step = command.payload
        self.key = str(self.step.allocation_id).encode()
        self.outcome: Outcome | None = None
        self.steps: list[tuple[str, Any]] = []
        self.earlier_refusal: Reason | None = None

    def see(self, seen: Seen) -> None:
        payload = seen.envelope.payload
        earlier = "" if seen.fresh else " (this same report was recorded before)"
        if getattr(payload, "cause_event_id", None) == self.command.id:
            if isinstance(payload, FulfilmentStepRecorded):
                self.outcome = Outcome("recorded", self._recorded(payload) + earlier)
            elif isinstance(payload, FulfilmentStepRejected):
                # A report refused as unknown_allocation is decided again when resent: wait for the new answer.
                if seen.fresh or payload.reason.code != "unknown_allocation":
                    self.outcome = Outcome("refused", f"fulfilment refused it {_refusal(payload.reason)}{earlier}")
                else:
                    self.earlier_refusal = payload.reason
        elif isinstance(payload, FulfilmentStepRecorded) and payload.allocation_id == self.step.allocation_id:
            self.steps.append((payload.step, payload.at))

    def _recorded(self, event: FulfilmentStepRecorded) -> str:
        text = (
            f"recorded: allocation {event.allocation_id} {event.step} at {event.at.isoformat()} "
            f"({event.quantity:,} chips of batch {event.batch_id} for {event.buyer_id}, order {event.order_id})"
        )
        if event.step in ("lost", "refused"):
            text += "; delivery failed: its chips go back to the pool"
        return text

    def caught_up(self) -> None:
        # Fulfilment records nothing for a repeat of the last step, or of any step with its recorded time.
        if self.outcome is None and self.earlier_refusal is None and self.steps:
            last, last_at = self.steps[-1]
            if last == self.step.step or (self.step.step, self.step.at) in self.steps:
                self.outcome = Outcome(
                    "unchanged",
                    f"nothing new: allocation {self.step.allocation_id} was already reported {self.step.step} "
                    f"(its last step: {last} at {last_at.isoformat()}); fulfilment records a repeated report once",
                )

    def timed_out(self, seconds: float) -> Outcome:
        if self.earlier_refusal is not None:
            return Outcome(
                "refused",
                f"fulfilment refused this report before {_refusal(self.earlier_refusal)} and gave no new answer "
                f"within {seconds:g} s",
            )
        return Outcome(
            "unknown",
            f"no answer on h200.fulfilment within {seconds:g} s: the report waits on h200.fulfilment.commands; "
            "is the fulfilment service running? (`h200 ledger` shows the line's shipment later)",
        )


def _terms(order: OrderTerms) -> dict[str, object]:
    return {name: getattr(order, name) for name in OrderTerms.model_fields}


class OrderWatch:
    """What intake made of one SubmitOrder (h200.orders, keyed by buyer): placed, refused, or already placed."""

    def __init__(self, command: Envelope[SubmitOrder]) -> None:
        self.command = command
        self.order = command.payload
        self.order_id = order_id_for(self.order.buyer_id, self.order.upstream_ref)
        self.key = self.order.buyer_id.encode()
        self.outcome: Outcome | None = None
        self.placed_before: Envelope[Message] | None = None

    @property
    def name(self) -> str:
        return f"{self.order.buyer_id}/{self.order.upstream_ref}"

    def see(self, seen: Seen) -> None:
        payload = seen.envelope.payload
        earlier = "" if seen.fresh else " (this same submission was recorded before)"
        if seen.envelope.causation_id == self.command.id:
            if isinstance(payload, OrderPlaced):
                self.outcome = Outcome(
                    "recorded", f"placed as order {payload.order_id} for {payload.quantity:,} chips{earlier}"
                )
            elif isinstance(payload, OrderSubmissionRejected):
                reasons = "; ".join(_refusal(reason) for reason in payload.reasons)
                self.outcome = Outcome("refused", f"intake refused it {reasons}{earlier}")
        elif isinstance(payload, OrderPlaced) and payload.order_id == self.order_id:
            self.placed_before = seen.envelope

    def caught_up(self) -> None:
        # Intake records nothing for a resend with the same terms (it refuses one with other terms): only an
        # exact copy of the placed terms is known to be silent, anything else waits for intake's answer.
        placed = self.placed_before
        if (
            self.outcome is None
            and placed is not None
            and isinstance(placed.payload, OrderPlaced)
            and _terms(placed.payload) == _terms(self.order)
        ):
            self.outcome = Outcome(
                "unchanged",
                f"nothing new: order {self.order_id} was placed with these terms by an earlier submission "
                f"(event {placed.id}); intake records an identical resend once",
            )

    def timed_out(self, seconds: float) -> Outcome:
        before = f"; order {self.order_id} was placed by an earlier submission" if self.placed_before else ""
        return Outcome(
            "unknown",
            f"no answer on h200.orders within {seconds:g} s{before}: the submission waits on h200.intake.commands; "
            "is the intake service running?",
        )


def settle(watches: Sequence[Watch], stream: Iterable[Seen | CaughtUp], seconds: float) -> list[Outcome]:
    """Each watch's outcome from the stream (which ends when the time allowed is up), in the watches' order."""
    by_key: dict[bytes, list[Watch]] = {}
    for watch in watches:
        by_key.setdefault(watch.key, []).append(watch)
    for item in stream:
        if isinstance(item, CaughtUp):
            for watch in watches:
                watch.caught_up()
        else:
            for watch in by_key.get(item.envelope.key.encode(), ()):
                if watch.outcome is None:
                    watch.see(item)
        if all(watch.outcome is not None for watch in watches):
            break
    return [watch.outcome or watch.timed_out(seconds) for watch in watches]


def exit_code(outcomes: Iterable[Outcome]) -> int:
    return max((EXIT_CODES[outcome.verdict] for outcome in outcomes), default=0)
