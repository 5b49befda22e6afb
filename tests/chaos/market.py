"""The seeded flow a drill sends through the system while faults hit it: buyers cleared by both governments,
their orders (some without the documents China asks for, so held), TSMC batches short of demand, shipments of the
lines already allocated (some lost at sea, so their chips come back), a revocation and a switch of the pool's rule.

The same seed gives the same messages in the same order; what the system decides from them depends on when faults
hit, which is why the drill checks invariants rather than a fixed ledger.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import builders as s
from schemas.base import Message
from schemas.codec import encode
from schemas.fulfilment import RecordFulfilmentStep
from schemas.intake import SubmitOrder
from schemas.routing import home_topic
from services.ops.kafka_clients import producer
from services.ops.publish import envelope_for

SEND_TIMEOUT_S = 240.0
"""How long a chunk may wait for its acknowledgements: longer than any fault holds a broker down."""


@dataclass
class Market:
    seed: int
    buyers: int = 6
    rng: random.Random = field(init=False)
    prefix: str = field(init=False)
    submitted: list[SubmitOrder] = field(default_factory=list)
    shipped: set[str] = field(default_factory=set)
    """Allocation ids whose shipment was reported, so no line is reported twice."""
    revoked: list[str] = field(default_factory=list)
    reports: list[RecordFulfilmentStep] = field(default_factory=list)
    """Every shipment report sent, each to be answered by fulfilment."""
    minute: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.prefix = f"chaos{self.seed}"

    @property
    def pool(self) -> str:
        return f"{self.prefix}-pool"

    @property
    def buyer_ids(self) -> list[str]:
        return [f"{self.prefix}-b{n}" for n in range(self.buyers)]

    def _tick(self) -> float:
        self.minute += 1
        return self.minute

    def opening(self) -> list[Message]:
        """The submission window, the use rules, every buyer cleared, and the pool's first rule."""
        cleared = []
        for buyer in self.buyer_ids:
            quota = self.rng.randrange(1_000, 3_001, 100)
            cleared += s.cleared_buyer(buyer, quota, licensed=quota + self.rng.choice((0, 500)))
        return [s.submission_window(), s.use_rules(), *cleared, s.allocation_rule(pool=self.pool)]

    def round(self, number: int, rounds: int, allocated: Sequence[str]) -> list[Message]:
        """One round's traffic: orders with a batch among them, shipments of lines allocated before, and in the
        middle round a revocation, in the last third a switch to pro-rata."""
        orders = [self._order() for _ in range(self.rng.randint(6, 12))]
        batches = [
            s.batch(
                f"{self.pool}-r{number}-B{n}", self.rng.randrange(300, 1_501, 50), minute=self._tick(), pool=self.pool
            )
            for n in range(self.rng.randint(1, 2))
        ]
        messages: list[Message] = s.interleave(orders, batches, every=max(1, len(orders) // len(batches)))
        messages += self._shipments(allocated)
        if number == rounds // 2:
            buyer = self.rng.choice([b for b in self.buyer_ids if b not in self.revoked])
            self.revoked.append(buyer)
            messages.append(s.importer_revoked(buyer, revision=2, minute=self._tick()))
        if number == (2 * rounds) // 3 and rounds > 2:
            messages.append(s.allocation_rule("pro_rata", pool=self.pool, revision=2))
        return messages

    def _order(self) -> SubmitOrder:
        buyer = self.rng.choice(self.buyer_ids)
        documents = () if self.rng.random() < 0.1 else ("end_use_statement",)  # China holds an order without one
        order = s.submit(
            buyer,
            f"{self.prefix}-PO-{len(self.submitted)}",
            self.rng.randrange(100, 601, 50),
            minute=self._tick(),
            pool=self.pool,
            documents=documents,
        )
        self.submitted.append(order)
        return order

    def _shipments(self, allocated: Sequence[str]) -> list[Message]:
        """Packed, shipped and delivered for most new lines; one in six lost at sea."""
        reports: list[RecordFulfilmentStep] = []
        for allocation_id in allocated:
            if allocation_id in self.shipped or self.rng.random() < 0.3:
                continue  # some lines wait for a later round
            self.shipped.add(allocation_id)
            lost = self.rng.random() < 1 / 6
            path = ("packed", "shipped", "lost") if lost else ("packed", "shipped", "customs_cleared", "delivered")
            reports += s.steps(allocation_id, *path, minute=self._tick(), every=30)
        self.reports += reports
        return list(reports)


class Traffic(threading.Thread):
    """Sends a round's messages `chunk` at a time with a pause between chunks, as ops and logistics would: work
    that is still arriving while a fault hits."""

    def __init__(self, bootstrap: str, messages: Sequence[Message], chunk: int = 4, pause_s: float = 0.4) -> None:
        super().__init__(name="chaos-traffic", daemon=True)
        self.bootstrap = bootstrap
        self.messages = list(messages)
        self.chunk = chunk
        self.pause_s = pause_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with producer(self.bootstrap, request_timeout_ms=15_000) as client:
                for start in range(0, len(self.messages), self.chunk):
                    for payload in self.messages[start : start + self.chunk]:
                        envelope = envelope_for(payload, "ops")
                        client.send(home_topic(payload).name, key=envelope.key.encode(), value=encode(envelope))
                    client.flush(timeout=SEND_TIMEOUT_S)
                    self.sent = min(start + self.chunk, len(self.messages))
                    time.sleep(self.pause_s)
        except BaseException as exc:
            self.error = exc

    def run_checked(self) -> None:
        """Send everything in this thread, raising what failed."""
        self.run()
        if self.error is not None:
            raise self.error

    @property
    def share_sent(self) -> float:
        return self.sent / max(1, len(self.messages))

    def finish(self) -> None:
        self.join(SEND_TIMEOUT_S + 30)
        if self.is_alive():
            raise AssertionError(f"the traffic did not finish ({self.sent} of {len(self.messages)} sent)")
        if self.error is not None:
            raise self.error
