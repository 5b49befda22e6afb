"""Named scenarios: each plays one known cross-service defect as a story, holding back the routes whose latency
makes it happen, then lets everything settle. On sound cores the story ends without a violation.

Holds name a service and the topic it copies from (and a key, for one partition), never an offset, so a story
survives new routes and message types: a protocol that answers through the held route simply waits for it.
The clock ticks before a story begins and runs on after it ends (Simulation.run_out); its authorities put every
policy in force at once, with windows that outlast the story, unless the story is about time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from random import Random
from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.fulfilment import RecordFulfilmentStep, Step
from schemas.intake import CancelOrder
from schemas.supply import BatchManufactured
from schemas.topics import BY_NAME

from .actions import Deliver, Inject
from .clock import tick
from .inputs import Inputs
from .policies import BUYERS, DENIED_LISTS, POOL
from .simulation import Result, Simulation
from .topology import Consumer, partition_of

Hold = Callable[[Consumer], bool]


class StoppedError(Exception):
    """The story cannot go on: a violation stopped the run before what it waits for happened."""


def decider(service: str, key: str) -> Hold:
    """The deciding agent of `service` on the inbox partition of `key`."""

    def held(consumer: Consumer) -> bool:
        if consumer.service != service or consumer.route is not None:
            return False
        return consumer.partition == partition_of(key, BY_NAME[consumer.topic])

    return held


def route(service: str, source: str, key: str | None = None) -> Hold:
    """The router of `service` copying from `source` (only the partition of `key`, if given)."""

    def held(consumer: Consumer) -> bool:
        if (consumer.service, consumer.topic) != (service, source) or consumer.route is None:
            return False
        return key is None or consumer.partition == partition_of(key, BY_NAME[source])

    return held


class Story:
    def __init__(self, name: str, verbose: bool = False) -> None:
        self.sim = Simulation(verbose)
        self.inputs = Inputs(name, Random(name), timely=True)
        self.authorities = self.inputs.policies
        self.tick()
        self.drain()

    def tick(self, minutes: int = 1) -> None:
        """The clock process ticks `minutes` after the story's time."""
        self.inputs.clock += timedelta(minutes=minutes)
        self.sim.apply(Inject(tick(self.inputs.clock)))

    def send(self, payload: Message) -> Envelope[Any]:
        self.inputs.clock += timedelta(minutes=10)
        envelope = self.inputs.envelope(payload)
        self.sim.apply(Inject(envelope))
        return envelope

    def resend(self, envelope: Envelope[Any]) -> None:
        self.sim.apply(Inject(envelope))

    def settle(self, *held: Hold) -> None:
        """Deliver everything but what the holds keep back, in pipeline order, while the clock runs: then a tick a
        minute later, delivered too (allocation admits an approval once approval's markers have passed it)."""
        self.drain(*held)
        self.tick()
        self.drain(*held)

    def drain(self, *held: Hold) -> None:
        while self.sim.violation is None:
            ready = [c for c in self.sim.pending() if not any(hold(c) for hold in held)]
            if not ready:
                return
            self.sim.apply(Deliver(ready[0]))

    def authorise(
        self,
        buyer: str,
        licence: int = 100,
        quota: int = 100,
        rule: str = "fafs",
        *,
        close_unfilled_after_s: int | None = None,
        authorised_in: timedelta | None = None,
        licence_for: timedelta | None = None,
    ) -> None:
        """The rules, then a licence, an import authorisation and a quota for `buyer`: all in force at once unless
        the authorisation takes effect `authorised_in` later; the licence valid for `licence_for` if given."""
        at, authorities = self.inputs.clock, self.authorities
        if not any(e.type == "ImportUseRulesSet" for e in self.inputs.sent):
            self.send(authorities.use_rules(at))
            rules = authorities.allocation_rule(at, first=True)
            chosen = "pro_rata" if rule == "pro_rata" else FAFS
            change = {"rule": chosen, "close_unfilled_after_s": close_unfilled_after_s}
            self.send(rules.model_copy(update=change))
        issued = authorities.licence(buyer, at, licence)
        if licence_for is not None:
            issued = issued.model_copy(update={"valid_until": at + licence_for})
        self.send(issued)
        authorised = authorities.importer_authorised(buyer, at)
        if authorised_in is not None:
            authorised = authorised.model_copy(update={"effective_at": at + authorised_in})
        self.send(authorised)
        self.send(authorities.quota(buyer, at, quota))

    def order(self, buyer: str, quantity: int) -> tuple[str, str]:
        submission = self.inputs.submission(buyer, quantity, complete=True)
        self.send(submission)
        return buyer, submission.upstream_ref

    def batch(self, quantity: int) -> None:
        number = sum(1 for e in self.inputs.sent if e.type == "BatchManufactured") + 1
        at = self.inputs.clock
        self.send(
            BatchManufactured(
                batch_id=f"TSMC-B{number:02}", pool_id=POOL, quantity=quantity, site="Tainan", ready_at=at
            )
        )

    def line_of(self, buyer: str) -> Any:
        lines = (line.payload for line in self.sim.oracle.facts.lines.values() if line.payload.buyer_id == buyer)
        found = next(lines, None)
        if found is None and self.sim.violation is not None:
            raise StoppedError
        return found

    def report(self, line: Any, *steps: Step, hold: tuple[Hold, ...] = ()) -> Envelope[Any]:
        for step in steps:
            sent = self.send(RecordFulfilmentStep(allocation_id=line.allocation_id, step=step, at=self.inputs.clock))
            self.settle(*hold)
        return sent

    def cancel(self, order: tuple[str, str]) -> None:
        buyer, ref = order
        self.send(CancelOrder(buyer_id=buyer, upstream_ref=ref, reason="plans changed", requested_at=self.inputs.clock))

    def end(self) -> Result:
        self.settle()
        self.sim.run_out()
        return self.sim.finish()


FAFS = "first_approved_first_served"
SHIPPED_UNKNOWN_TO_ALLOCATION = route("allocation", "h200.fulfilment")


def _shipped_line_then(story: Story, ends_order: Callable[[Story, tuple[str, str]], None]) -> Result:
    """(a) A's line ships; allocation has not heard when A's order ends, B waits for chips."""
    first, second = BUYERS[0], BUYERS[1]
    story.authorise(first)
    story.authorise(second)
    order = story.order(first, 20)
    story.settle()
    story.order(second, 20)
    story.batch(20)
    story.settle()
    story.report(story.line_of(first), "packed", "shipped", hold=(SHIPPED_UNKNOWN_TO_ALLOCATION,))
    ends_order(story, order)
    story.settle(SHIPPED_UNKNOWN_TO_ALLOCATION)
    return story.end()


def revoked_after_shipping(story: Story) -> Result:
    return _shipped_line_then(story, lambda s, o: s.send(s.authorities.importer(o[0], s.inputs.clock, "revoked")))


def cancelled_after_shipping(story: Story) -> Result:
    return _shipped_line_then(story, Story.cancel)


def cancelled_after_delivery(story: Story) -> Result:
    """(b) An order delivered then cancelled must keep its licence and quota use: a new order finds none left."""
    buyer = BUYERS[0]
    story.authorise(buyer, licence=30, quota=30)
    order = story.order(buyer, 30)
    story.batch(30)
    story.settle()
    story.report(story.line_of(buyer), "packed", "shipped", "customs_cleared", "delivered")
    story.cancel(order)
    story.settle()
    story.order(buyer, 30)
    return story.end()


def earlier_approval_copied_late(story: Story) -> Result:
    """(c) First approved, first served: an order approved first ranks first, even when the news of it reaches
    allocation last. Here approval's partition of the early buyer is slow: its order arrived first (so it is
    approved first, in business time) but the approval is written after the later one; the clock ticks and a
    batch arrives meanwhile."""
    early, late = _on_two_partitions("h200.approval.inbox")
    story.authorise(early)
    story.authorise(late)
    story.settle()
    slow = decider("approval", early)
    story.order(early, 20)
    story.settle(slow)
    story.order(late, 20)
    story.settle(slow)
    story.tick()
    story.settle(slow)
    story.batch(20)
    story.settle(slow)
    return story.end()


def delisted_from_one_of_two_lists(story: Story) -> Result:
    """(d) Each denied-party list is its own policy: delisted from one, a buyer on the other stays denied."""
    buyer, at, authorities = BUYERS[0], story.inputs.clock, story.authorities
    story.authorise(buyer)
    story.send(authorities.denied(buyer, at, listed=True, on=DENIED_LISTS[0]))
    story.send(authorities.denied(buyer, at, listed=True, on=DENIED_LISTS[1]))
    story.send(authorities.denied(buyer, at, listed=False, on=DENIED_LISTS[0]))
    story.settle()
    story.order(buyer, 20)
    return story.end()


def report_before_its_line_then_retried(story: Story) -> Result:
    """(e) A report that arrived before its ledger line is decided when logistics sends it again."""
    buyer = BUYERS[0]
    line_not_copied = route("fulfilment", "h200.allocations")
    story.authorise(buyer)
    story.order(buyer, 20)
    story.batch(20)
    story.settle(line_not_copied)
    report = story.report(story.line_of(buyer), "packed", hold=(line_not_copied,))
    story.settle()
    story.resend(report)
    return story.end()


def authorisation_effective_later(story: Story) -> Result:
    """#8: an import authorisation that takes effect tomorrow approves nothing today; the order waits, and is
    decided on the first tick after the authorisation came into force."""
    buyer = BUYERS[0]
    story.authorise(buyer, authorised_in=timedelta(days=1))
    story.settle()
    story.order(buyer, 20)
    story.settle()
    story.tick(minutes=24 * 60)
    story.settle()
    story.batch(20)
    return story.end()


def licence_expires_before_the_batch(story: Story) -> Result:
    """#8: an approval on a licence that ends before any chips arrive expires on the tick that passes its end;
    the batch that comes later goes to no one under it."""
    buyer = BUYERS[0]
    story.authorise(buyer, licence_for=timedelta(hours=2))
    story.settle()
    story.order(buyer, 20)
    story.settle()
    story.tick(minutes=3 * 60)
    story.settle()
    story.batch(20)
    return story.end()


def order_left_unfilled_closes(story: Story) -> Result:
    """#8: under a pool rule that closes orders left unfilled for an hour, a partly filled order is closed on the
    tick that passes that hour; its unshipped chips are recalled and it keeps only what shipped."""
    buyer = BUYERS[0]
    story.authorise(buyer, close_unfilled_after_s=3600)
    story.settle()
    story.order(buyer, 30)
    story.batch(10)
    story.settle()
    story.tick(minutes=2 * 60)
    return story.end()


def _on_two_partitions(topic: str) -> tuple[str, str]:
    partitions = {partition_of(buyer, BY_NAME[topic]): buyer for buyer in reversed(BUYERS)}
    first, second, *_ = sorted(partitions.values(), key=BUYERS.index)
    return first, second


SCENARIOS: dict[str, Callable[[Story], Result]] = {
    "revoked_after_shipping": revoked_after_shipping,
    "cancelled_after_shipping": cancelled_after_shipping,
    "cancelled_after_delivery": cancelled_after_delivery,
    "earlier_approval_copied_late": earlier_approval_copied_late,
    "delisted_from_one_of_two_lists": delisted_from_one_of_two_lists,
    "report_before_its_line_then_retried": report_before_its_line_then_retried,
    "authorisation_effective_later": authorisation_effective_later,
    "licence_expires_before_the_batch": licence_expires_before_the_batch,
    "order_left_unfilled_closes": order_left_unfilled_closes,
}


def play(name: str, verbose: bool = False) -> Result:
    story = Story(name, verbose)
    try:
        return SCENARIOS[name](story)
    except StoppedError:
        return story.sim.finish()
