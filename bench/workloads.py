"""What the recovery bench fills the approval inbox with: (partition, record value) pairs.

held       orders and nothing else: no policy is known, so every order is held and stays open. The state of a
           partition is every order it was sent: it grows with the log, whatever the worker does.
lifecycle  the policies that clear every buyer (use rules, a licence, an import authorisation and a quota), then
           orders approved as they come, each closed by the order book (OrderClosed, delivered) 100 orders later:
           what a long-running system's log looks like. The orders done with are forgotten (issue #9), so the
           state of a partition is what is open plus 16 bytes an id seen.
Buyers are spread over partitions by buyer (buyer k on partition k mod 6), as the inbox is keyed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from schemas import allocation, policy
from schemas.codec import encode
from schemas.envelope import Envelope, command_id_for, derive_id, make_envelope
from schemas.routing import record_key
from schemas.samples import placed_orders, sample_payloads
from schemas.topics import BY_NAME

INBOX = "h200.approval.inbox"
PARTITIONS = BY_NAME[INBOX].partitions
BUYERS = 500
CLOSE_AFTER = 100
"""Orders between an order's placing and its close: that many are open at any time."""
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FAR = datetime(2100, 1, 1, tzinfo=UTC)
"""Policies valid over any time the broker stamps (the partition clock is the records' append time)."""
NAME = "bench-order"
ORDER_CHIPS = 100


def buyer_of(n: int) -> str:
    return f"buyer-{n % BUYERS:03d}"


def partition_of(n: int) -> int:
    return (n % BUYERS) % PARTITIONS


def _policy(payload: policy.PolicyEvent) -> Envelope[policy.PolicyEvent]:
    return make_envelope(
        payload,
        key=record_key(payload),
        producer="ops",
        occurred_at=EPOCH,
        message_id=command_id_for("ops", payload),
    )


def clearing_policies() -> list[tuple[int, bytes]]:
    """Every buyer cleared by both governments for the rest of the century; the use rules to every partition."""
    common = {"revision": 1, "effective_at": EPOCH, "issued_by": "bench authority"}
    # The sample use rules, which the sample order (what placed_orders copies) meets, in force from EPOCH.
    sample = next(p for p in sample_payloads() if isinstance(p, policy.ImportUseRulesSet))
    rules = _policy(sample.model_copy(update=common))
    records = [(partition, encode(rules)) for partition in range(PARTITIONS)]
    for k in range(BUYERS):
        buyer = buyer_of(k)
        payloads: list[policy.PolicyEvent] = [
            policy.ExportLicenceIssued(
                **common,
                policy_id=f"us-licence/BENCH-{buyer}",
                licence_id=f"BENCH-{buyer}",
                buyer_id=buyer,
                quantity=10_000_000,
                valid_from=EPOCH,
                valid_until=FAR,
            ),
            policy.ImporterAuthorised(**common, policy_id=f"cn-importer/{buyer}", buyer_id=buyer, buyer_name=buyer),
            policy.TrancheQuotaSet(
                **common,
                policy_id=f"cn-quota/BENCH/{buyer}",
                tranche_id="BENCH",
                buyer_id=buyer,
                quantity=10_000_000,
                opens_at=EPOCH,
                closes_at=FAR,
            ),
        ]
        records += [(partition_of(k), encode(_policy(payload))) for payload in payloads]
    return records


def closed(n: int, order_id: UUID) -> tuple[int, bytes]:
    """The order book's close of order n, every chip delivered."""
    payload = allocation.OrderClosed(
        order_id=order_id,
        pool_id="h200",
        buyer_id=buyer_of(n),
        approved_quantity=ORDER_CHIPS,
        kept_quantity=ORDER_CHIPS,
        why="delivered",
        cause_event_id=derive_id("bench-close", n),
        closed_at=EPOCH + timedelta(seconds=n),
    )
    envelope = make_envelope(
        payload,
        key=payload.buyer_id,
        producer="allocation",
        occurred_at=payload.closed_at,
        message_id=derive_id("bench-closed", n),
    )
    return partition_of(n), encode(envelope)


def held(first: int, count: int) -> list[tuple[int, bytes]]:
    """`count` placed orders from number `first`, with no policy anywhere: every one is held."""
    placed = placed_orders(first, count, buyers=BUYERS, name=NAME)
    return [(n % PARTITIONS, encode(envelope)) for n, envelope in enumerate(placed, start=first)]


def small_orders(first: int, count: int) -> list[Envelope[Any]]:
    """The sample orders of 100 chips (half of them matched by a domestic commitment): a buyer's licence and
    quota (10 million chips at most, as the contract bounds them) last 100,000 orders, as shipped chips stay
    counted."""
    return [
        envelope.model_copy(
            update={
                "payload": envelope.payload.model_copy(
                    update={
                        "quantity": ORDER_CHIPS,
                        "domestic_commitment": envelope.payload.domestic_commitment.model_copy(
                            update={"quantity": ORDER_CHIPS // 2}
                        )
                        if envelope.payload.domestic_commitment
                        else None,
                    }
                )
            }
        )
        for envelope in placed_orders(first, count, buyers=BUYERS, name=NAME)
    ]


def lifecycle(first: int, count: int, chunk: int = 10_000) -> Iterator[tuple[int, bytes]]:
    """Orders `first`.. placed, each closed CLOSE_AFTER orders later (the last CLOSE_AFTER stay open): about
    2 * count records (lifecycle_records says how many), made `chunk` orders at a time so that millions of them
    never sit in memory as objects."""
    pending: deque[UUID] = deque()
    for start in range(first, first + count, chunk):
        placed = small_orders(start, min(chunk, first + count - start))
        for n, envelope in enumerate(placed, start=start):
            yield partition_of(n), encode(envelope)
            pending.append(envelope.payload.order_id)
            if n - CLOSE_AFTER >= first:
                yield closed(n - CLOSE_AFTER, pending.popleft())


def lifecycle_records(count: int) -> int:
    """How many records lifecycle(first, count) yields."""
    return count + max(count - CLOSE_AFTER, 0)


def one_per_partition(workload: str, after: int) -> tuple[list[tuple[int, bytes]], int]:
    """A new order on every partition, numbered from past `after`: the records and the next free number."""
    if workload == "held":
        return held(after, PARTITIONS), after + PARTITIONS
    base = (after // BUYERS + 1) * BUYERS  # numbers n with n % BUYERS = partition: buyer p, on partition p
    placed = small_orders(base, PARTITIONS)
    return [(partition_of(n), encode(e)) for n, e in enumerate(placed, start=base)], base + BUYERS
