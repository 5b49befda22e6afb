"""The two allocation rules, as pure functions of the book's demand and supply. Integer arithmetic only.

Both hand out min(chips available, unfilled demand). `first_approved_first_served` and `pro_rata` take claims
and stock in any order; the `*_in_order` forms take them already ranked (claims by approval, stock by supply
order) and read them lazily, so that the order book, which keeps both sides ranked, only reads what it uses.
Every ranking is total (ties broken by id): the result never depends on the order of the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Claim:
    """One eligible order's unfilled quantity: a line of the demand side."""

    order_id: UUID
    buyer_id: str
    approved_at: datetime
    unfilled: int


@dataclass(frozen=True, slots=True)
class Stock:
    """One batch's remaining chips: a line of the supply side."""

    batch_id: str
    ready_at: datetime
    remaining: int


@dataclass(frozen=True, slots=True)
class Grant:
    """Chips of one batch for one order."""

    order_id: UUID
    buyer_id: str
    batch_id: str
    quantity: int


def approval_rank(claim: Claim) -> tuple[datetime, str]:
    """Orders by approval time, ties by order id (compared as strings)."""
    return (claim.approved_at, str(claim.order_id))


def supply_rank(line: Stock) -> tuple[datetime, str]:
    """Batches earliest ready first, then by batch id."""
    return (line.ready_at, line.batch_id)


def draw(needs: Iterable[tuple[Claim, int]], stock_in_order: Iterable[Stock]) -> list[Grant]:
    """Each order in turn takes what it needs from the batches as they come, until either side runs out."""
    batches = iter(stock_in_order)
    grants: list[Grant] = []
    batch_id, left = "", 0
    for claim, need in needs:
        while need > 0:
            if left == 0:
                batch = next(batches, None)
                if batch is None:
                    return grants
                batch_id, left = batch.batch_id, batch.remaining
                continue
            take = min(need, left)
            grants.append(Grant(claim.order_id, claim.buyer_id, batch_id, take))
            need -= take
            left -= take
    return grants


def fill_in_order(claims_in_order: Iterable[Claim], stock_in_order: Iterable[Stock]) -> list[Grant]:
    """First approved, first served, on ranked inputs: reads only the claims and batches it fills from."""
    return draw(((claim, claim.unfilled) for claim in claims_in_order), stock_in_order)


def largest_remainder_shares(available: int, claims: Mapping[UUID, int]) -> dict[UUID, int]:
    """Shares of `available` proportional to the claims: floors, then one chip each to the largest remainders.

    The shares sum to min(available, sum of claims); each is the floor or the ceiling of the exact share, so it
    never exceeds its claim. Ties between equal remainders go to the smaller order id (as a string).
    """
    total = sum(claims.values())
    if available >= total:
        return dict(claims)
    shares: dict[UUID, int] = {}
    remainders: dict[UUID, int] = {}
    for order_id, claim in claims.items():
        shares[order_id], remainders[order_id] = divmod(available * claim, total)
    left = available - sum(shares.values())
    for order_id in sorted(claims, key=lambda key: (-remainders[key], str(key)))[:left]:
        shares[order_id] += 1
    return shares


def share_in_order(claims: Iterable[Claim], stock_in_order: Iterable[Stock], available: int) -> list[Grant]:
    """Pro rata on ranked stock holding `available` chips: orders then draw their shares in order id order."""
    by_id = sorted(claims, key=lambda claim: str(claim.order_id))
    shares = largest_remainder_shares(available, {claim.order_id: claim.unfilled for claim in by_id})
    return draw(((claim, shares[claim.order_id]) for claim in by_id), stock_in_order)


def first_approved_first_served(claims: Iterable[Claim], stock: Iterable[Stock]) -> list[Grant]:
    """The earliest approved order is filled first, then the next, until supply runs out."""
    return fill_in_order(sorted(claims, key=approval_rank), sorted(stock, key=supply_rank))


def pro_rata(claims: Iterable[Claim], stock: Iterable[Stock]) -> list[Grant]:
    """Available chips shared in proportion to unfilled quantity (largest remainder method)."""
    ranked = sorted(stock, key=supply_rank)
    return share_in_order(claims, ranked, sum(line.remaining for line in ranked))
