"""What the outside world sends, drawn from a seed: authorities' policies, buyers' orders and cancellations,
TSMC's batches and logistics' reports, with a compressed business clock that only moves forward.

Few buyers, small quantities of the same order of magnitude as licences, quotas and batches: conflicts over
chips, licences and quotas are the point. Every message is a real contract built with the real schemas.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import sha256
from random import Random
from typing import Any

from schemas.base import Message
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.fulfilment import RecordFulfilmentStep, Step
from schemas.intake import AddOrderDocuments, CancelOrder, SubmitOrder, SupportingDocument
from schemas.routing import record_key
from schemas.supply import BatchManufactured

from . import policies
from .policies import BUYERS, NAMES, POOL

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
MIX = {"ai_research": 50, "model_training": 30, "inference": 20}
DOCUMENT_KINDS = ("end_use_statement", "usage_plan")
PRODUCERS = {"SubmitOrder": "upstream", "CancelOrder": "upstream", "AddOrderDocuments": "upstream"}

NEXT_STEP: dict[str | None, tuple[tuple[Step, int], ...]] = {
    None: (("packed", 1),),
    "packed": (("shipped", 1),),
    "shipped": (("customs_cleared", 6), ("held", 2), ("lost", 1)),
    "customs_cleared": (("delivered", 6), ("refused", 1), ("held", 1)),
    "held": (("released", 3), ("lost", 1)),
    "released": (("customs_cleared", 1), ("delivered", 1)),
}
"""The step logistics most likely reports next after the last one recorded (weights); any step may come."""
ALL_STEPS: tuple[Step, ...] = (
    "packed",
    "shipped",
    "customs_cleared",
    "delivered",
    "held",
    "released",
    "lost",
    "refused",
)


def document(buyer: str, ref: str, kind: str) -> SupportingDocument:
    digest = sha256(f"{buyer}/{ref}/{kind}".encode()).hexdigest()
    return SupportingDocument(document_id=f"{ref}-{kind}", kind=kind, sha256=digest)


class Inputs:
    """The world outside the services. `facts` reads the simulated topics (ledger lines, recorded steps)."""

    def __init__(self, seed: int | str, rng: Random, timely: bool = False) -> None:
        self.seed, self.rng = seed, rng
        self.clock = T0
        """The senders' clock (the world's time): the schedule keeps it at or after the broker's."""
        self.count = 0
        self.policies = policies.Authorities(rng, timely)
        self.orders: list[tuple[str, str, bool]] = []
        """(buyer, upstream_ref, documents complete) of every submission."""
        self.sent: list[Envelope[Any]] = []

    def envelope(self, payload: Message) -> Envelope[Any]:
        self.count += 1
        producer = PRODUCERS.get(payload.TYPE, "logistics" if payload.TYPE == "RecordFulfilmentStep" else "ops")
        envelope = make_envelope(
            payload,
            key=record_key(payload),
            producer=producer,
            occurred_at=self.clock,
            message_id=derive_id("sim", self.seed, self.count),
        )
        self.sent.append(envelope)
        return envelope

    def baseline(self) -> list[Envelope[Any]]:
        return [self.envelope(payload) for payload in self.policies.baseline(self.clock)]

    def next(self, lines: list[Any], steps: dict[Any, list[str]]) -> Envelope[Any]:
        """One input at a later time. `lines`: ChipsAllocated seen on the ledger; `steps`: steps recorded per line."""
        self.clock += timedelta(minutes=self.rng.choice((1, 10, 60, 240, 720)))
        rng = self.rng
        kind = rng.choices(
            ("order", "cancel", "batch", "report", "policy", "documents", "resend"), (30, 8, 14, 25, 18, 3, 6)
        )[0]
        if kind == "report" and lines:
            return self.report(lines, steps)
        if kind == "cancel" and self.orders:
            buyer, ref, _ = rng.choice(self.orders)
            return self.envelope(
                CancelOrder(buyer_id=buyer, upstream_ref=ref, reason="plans changed", requested_at=self.clock)
            )
        if kind == "documents" and any(not complete for *_, complete in self.orders):
            buyer, ref, _ = rng.choice([order for order in self.orders if not order[2]])
            added = (document(buyer, ref, "usage_plan"),)
            return self.envelope(
                AddOrderDocuments(buyer_id=buyer, upstream_ref=ref, documents=added, requested_at=self.clock)
            )
        if kind == "resend" and self.sent:
            return self.resend()
        if kind == "policy":
            return self.envelope(self.policies.change(self.clock))
        if kind == "batch":
            number = sum(1 for e in self.sent if e.type == "BatchManufactured") + 1
            quantity = rng.choice((20, 30, 40, 60))
            return self.envelope(
                BatchManufactured(
                    batch_id=f"TSMC-B{number:02}",
                    pool_id=POOL,
                    quantity=quantity,
                    site="TSMC Fab 18",
                    ready_at=self.clock,
                )
            )
        return self.envelope(self.submission(rng.choice(BUYERS)))

    def submission(self, buyer: str, quantity: int | None = None, complete: bool | None = None) -> SubmitOrder:
        ref = f"{buyer[:2].upper()}-{len(self.orders) + 1:03}"
        complete = self.rng.random() < 0.85 if complete is None else complete
        self.orders.append((buyer, ref, complete))
        return self.order(buyer, ref, quantity or self.rng.choice((10, 20, 30, 40, 50)), complete)

    def order(self, buyer: str, ref: str, quantity: int, complete: bool = True) -> SubmitOrder:
        kinds = DOCUMENT_KINDS if complete else DOCUMENT_KINDS[:1]
        return SubmitOrder(
            buyer_id=buyer,
            buyer_name=NAMES[buyer],
            upstream_ref=ref,
            pool_id=POOL,
            quantity=quantity,
            unit_price_cents=2_500_000,
            declared_uses=tuple({"use": use, "share_pct": share} for use, share in MIX.items()),
            documents=tuple(document(buyer, ref, kind) for kind in kinds),
            domestic_commitment={"supplier": "Huawei Ascend", "quantity": max(1, quantity // 4)},
            delivery_site={"site_id": f"{buyer.upper()}-DC1", "city": "Ulanqab"},
            submitted_at=self.clock,
        )

    def report(self, lines: list[Any], steps: dict[Any, list[str]]) -> Envelope[Any]:
        line = self.rng.choice(lines[-6:]) if self.rng.random() < 0.7 else self.rng.choice(lines)
        done = steps.get(line.allocation_id, [])
        if self.rng.random() < 0.8 and (done[-1] if done else None) in NEXT_STEP:
            options = NEXT_STEP[done[-1] if done else None]
            step = self.rng.choices([s for s, _ in options], [w for _, w in options])[0]
        else:
            step = self.rng.choice(ALL_STEPS)
        return self.envelope(RecordFulfilmentStep(allocation_id=line.allocation_id, step=step, at=self.clock))

    def resend(self) -> Envelope[Any]:
        """An upstream retry: the very same envelope again, or (orders) the same terms under a new message id."""
        earlier = self.rng.choice([e for e in self.sent if e.producer != "ops"] or self.sent)
        if isinstance(earlier.payload, SubmitOrder) and self.rng.random() < 0.5:
            return self.envelope(earlier.payload.model_copy(update={"submitted_at": self.clock}))
        return earlier
