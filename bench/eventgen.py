"""A large, realistic event log made fast: each message kind encoded once by the real contracts (make_envelope,
encode) with sentinel values, then filled in per order by splicing bytes. Every record is a valid envelope
with its own ids (checked against schemas.codec.decode), so a replay dedups, validates and folds real work.

One order's story is 7 events: OrderPlaced, OrderApproved, ChipsAllocated and FulfilmentStepRecorded for
packed, shipped, customs_cleared and delivered, each caused by the one before; 40 batches and the policies come
first. The log keeps every invariant `h200 verify` checks (each fact from its owner, order ids derived from their
references, each buyer within its licence and quota, each batch within what it holds, up to 5M events) except
determinism: it has no allocation inbox to refold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from schemas import allocation, approval, fulfilment, intake, policy, supply
from schemas.base import Message, PolicyRef
from schemas.codec import decode, encode
from schemas.envelope import make_envelope, order_id_for
from schemas.routing import home_topic, record_key

STORY = 7
BATCHES = 40
CHIPS = 100
"""Per order: 5M events are 714,280 orders, 71.4M chips, within 40 batches of 2M and 24 licences of 10M."""
BUYERS = tuple(f"buyer-{i:02d}" for i in range(24))
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEPS = ("packed", "shipped", "customs_cleared", "delivered")

# Sentinels: distinct values that appear nowhere else in an encoded envelope.
S_EVENT, S_CAUSE, S_CORR = (f"eeeeeeee-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
S_ORDER, S_ALLOC = "eeeeeeee-0000-4000-8000-000000000004", "eeeeeeee-0000-4000-8000-000000000005"
S_BUYER, S_BATCH, S_REF = "sentinel-buyer", "SENTINEL-BATCH", "SENTINEL-REF"
S_TIME = "2031-07-07T07:07:07Z"
SENTINELS = (S_EVENT, S_CAUSE, S_CORR, S_ORDER, S_ALLOC, S_BUYER, S_BATCH, S_REF, S_TIME)


@dataclass(frozen=True)
class Template:
    topic: str
    key_field: str
    parts: tuple[Any, ...]
    """Literal bytes and sentinel names, alternating as they occur in the encoded envelope."""

    def fill(self, values: dict[str, bytes]) -> bytes:
        return b"".join(values[p] if isinstance(p, str) else p for p in self.parts)


def _uuid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def _template(payload: Message, key_field: str) -> Template:
    envelope = make_envelope(
        payload,
        key=record_key(payload),
        producer=home_topic(payload).producers[0],
        occurred_at=S_TIME,
        message_id=UUID(S_EVENT),
    )
    data = envelope.model_dump(mode="json")
    data.update(correlation_id=S_CORR, causation_id=S_CAUSE)
    text = encode(type(envelope).model_validate(data)).decode()
    text = text.replace("2031-07-07T07:07:07Z", S_TIME)
    parts: list[Any] = []
    while text:
        hits = [(text.find(s), s) for s in SENTINELS if s in text]
        if not hits:
            parts.append(text.encode())
            break
        at, sentinel = min(hits)
        parts += [text[:at].encode(), sentinel]
        text = text[at + len(sentinel) :]
    return Template(home_topic(payload).name, key_field, tuple(parts))


def _templates() -> dict[str, Template]:
    at = datetime.fromisoformat(S_TIME)
    order, alloc = UUID(S_ORDER), UUID(S_ALLOC)
    line = {"allocation_id": alloc, "pool_id": "h200", "order_id": order, "buyer_id": S_BUYER, "batch_id": S_BATCH}
    placed = intake.OrderPlaced(
        buyer_id=S_BUYER,
        buyer_name="Sentinel Buyer Ltd.",
        upstream_ref=S_REF,
        quantity=CHIPS,
        unit_price_cents=2_500_000,
        declared_uses=[{"use": "ai_research", "share_pct": 70}, {"use": "inference", "share_pct": 30}],
        domestic_commitment={"supplier": "Huawei Ascend", "quantity": 30},
        delivery_site={"site_id": "BJ-DC-3", "city": "Beijing"},
        order_id=order,
        placed_at=at,
    )
    refs = (PolicyRef(policy_id=f"us-licence/{S_BUYER}", revision=1), PolicyRef(policy_id="cn-use-rules", revision=1))
    approved = approval.OrderApproved(
        order_id=order,
        buyer_id=S_BUYER,
        pool_id="h200",
        policy_refs=refs,
        cause_event_id=UUID(S_CAUSE),
        decided_at=at,
        requested_quantity=CHIPS,
        approved_quantity=CHIPS,
        licence_id=f"BIS-{S_BUYER}",
        tranche_id="T1",
    )
    allocated = allocation.ChipsAllocated(
        **line,
        quantity=CHIPS,
        rule="first_approved_first_served",
        policy_ref=PolicyRef(policy_id="allocation/h200", revision=1),
        cause_event_id=UUID(S_CAUSE),
        allocated_at=at,
    )
    found = {
        "placed": _template(placed, "buyer"),
        "approved": _template(approved, "buyer"),
        "allocated": _template(allocated, "pool"),
    }
    for step in STEPS:
        recorded = fulfilment.FulfilmentStepRecorded(
            **line, quantity=CHIPS, step=step, cause_event_id=UUID(S_CAUSE), at=at
        )
        found[step] = _template(recorded, "allocation")
    batch = supply.BatchManufactured(batch_id=S_BATCH, pool_id="h200", quantity=2_000_000, site="Fab 18", ready_at=at)
    found["batch"] = _template(batch, "pool")
    return found


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes


PREAMBLE = BATCHES + 2 + 2 * len(BUYERS)
"""Records before the first story: the batches and the policies."""


def stories(events: int) -> int:
    """Whole stories in a log of about `events` records."""
    return (events - PREAMBLE) // STORY


def policies() -> Iterator[Record]:
    """What every order's approval and allocation cite: use rules, the pool's rule, a licence and a tranche quota
    per buyer, in force for ten years from T0."""
    issued: list[Message] = [
        policy.ImportUseRulesSet(
            policy_id="cn-use-rules",
            revision=1,
            effective_at=T0,
            issued_by="MOFCOM / NDRC",
            necessary_uses=("ai_research", "inference"),
            max_inference_share_pct=30,
            min_domestic_commitment_pct=20,
        ),
        policy.AllocationPolicySet(
            policy_id="allocation/h200",
            revision=1,
            effective_at=T0,
            issued_by="h200 operations",
            pool_id="h200",
            rule="first_approved_first_served",
        ),
    ]
    until = T0 + timedelta(days=3650)
    for buyer in BUYERS:
        issued.append(
            policy.ExportLicenceIssued(
                policy_id=f"us-licence/{buyer}",
                revision=1,
                effective_at=T0,
                issued_by="US Department of Commerce, BIS",
                licence_id=f"BIS-{buyer}",
                buyer_id=buyer,
                quantity=10_000_000,
                valid_from=T0,
                valid_until=until,
            )
        )
        issued.append(
            policy.TrancheQuotaSet(
                policy_id=f"cn-quota/{buyer}/T1",
                revision=1,
                effective_at=T0,
                issued_by="MOFCOM",
                tranche_id="T1",
                buyer_id=buyer,
                quantity=100_000_000,
                opens_at=T0,
                closes_at=until,
            )
        )
    for n, payload in enumerate(issued):
        owner = home_topic(payload).producers[0]
        envelope = make_envelope(
            payload, key=record_key(payload), producer=owner, occurred_at=T0, message_id=UUID(_uuid(0xD0, n))
        )
        yield Record(home_topic(payload).name, record_key(payload).encode(), encode(envelope))


def generate(events: int, first: int = 0) -> Iterator[Record]:
    """About `events` records (whole stories), batches and policies first; with `first`, the stories that follow
    that many (a later stretch of the same log: no batches, new ids, later times)."""
    templates = _templates()
    if first == 0:
        yield from policies()
        for b in range(BATCHES):
            v = _values(_uuid(0xB0, b), _uuid(0xB1, b), _uuid(0xB0, b), "", "", BUYERS[0], f"TSMC-B{b:03d}", "", T0)
            yield Record(templates["batch"].topic, b"h200", templates["batch"].fill(v))
    count = stories(events) if first == 0 else events // STORY
    for n in range(first, first + count):
        buyer, batch = BUYERS[n % len(BUYERS)], f"TSMC-B{n % BATCHES:03d}"
        order, alloc, when = str(order_id_for(buyer, f"PO-{n}")), _uuid(0xA1, n), T0 + timedelta(seconds=n)
        cause, correlation = _uuid(0xCF, n), _uuid(0xC0, n)
        keys = {"buyer": buyer.encode(), "pool": b"h200", "allocation": alloc.encode()}
        for index, kind in enumerate(("placed", "approved", "allocated", *STEPS)):
            event = _uuid(0xC0 + index, n)
            template = templates[kind]
            values = _values(event, cause, correlation, order, alloc, buyer, batch, f"PO-{n}", when)
            yield Record(template.topic, keys[template.key_field], template.fill(values))
            cause = event


def _values(
    event: str, cause: str, corr: str, order: str, alloc: str, buyer: str, batch: str, ref: str, at: Any
) -> dict[str, bytes]:
    text = at.isoformat().replace("+00:00", "Z")
    return {
        S_EVENT: event.encode(),
        S_CAUSE: cause.encode(),
        S_CORR: corr.encode(),
        S_ORDER: order.encode(),
        S_ALLOC: alloc.encode(),
        S_BUYER: buyer.encode(),
        S_BATCH: batch.encode(),
        S_REF: ref.encode(),
        S_TIME: text.encode(),
    }


def check(sample: int = 2_000) -> int:
    """Decode the first records with the real codec: each is a valid envelope with the ids spliced in."""
    seen = set()
    for record in generate(sample):
        envelope = decode(record.value)
        assert envelope.id not in seen, envelope
        seen.add(envelope.id)
        assert home_topic(envelope.payload).name == record.topic
    return len(seen)
