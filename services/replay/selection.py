"""What an operator asks the ledger for: a moment, a buyer, a batch, an order; and answers when the log has no such
thing. Filters only choose what is shown: the ledger hash always covers the whole ledger at the moment.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.intake import OrderPlaced
from services.replay.ledger import Ledger, Line
from services.replay.order_refs import OrderIds, OrderRefs
from services.replay.records import ReplayError

SHOWN_NAMES = 8


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time with a zone (`Z` allowed); ValueError says what a good one looks like."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-02-10T09:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z or +00:00 (e.g. 2026-02-10T09:00:00Z)")
    return moment


@dataclass(frozen=True)
class Known:
    """Every buyer, batch and order the log names (at any time), and the buyers' own references of orders."""

    buyers: frozenset[str]
    batches: frozenset[str]
    orders: Container[str]
    """Order ids as text."""
    refs: Mapping[str, str]
    """order id -> upstream reference."""


class KnownThings:
    """Gathers what `Known` holds one event at a time, for a replay that folds while it reads."""

    def __init__(self) -> None:
        self.buyers: set[str] = set()
        self.batches: set[str] = set()
        self.orders = OrderIds()
        self.refs = OrderRefs()
        """Both at 16-30 bytes an order: a set and a dict of texts took ~300 (215 MB at 5M events)."""

    def add(self, envelope: Envelope[Message]) -> None:
        payload: Any = envelope.payload
        if isinstance(getattr(payload, "buyer_id", None), str):
            self.buyers.add(payload.buyer_id)
        if isinstance(getattr(payload, "batch_id", None), str):
            self.batches.add(payload.batch_id)
        if isinstance(getattr(payload, "order_id", None), UUID):
            self.orders.add(payload.order_id)
        if isinstance(payload, OrderPlaced):
            self.refs.add(payload.order_id, payload.upstream_ref)

    def known(self) -> Known:
        return Known(frozenset(self.buyers), frozenset(self.batches), self.orders, self.refs)


def known_things(events: Iterable[Envelope[Message]]) -> Known:
    found = KnownThings()
    for envelope in events:
        found.add(envelope)
    return found.known()


@dataclass(frozen=True)
class Selection:
    buyer: str | None = None
    batch: str | None = None
    order: str | None = None
    """An order id, or the buyer's own reference of the order."""

    @property
    def active(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value is not None}

    def resolve(self, known: Known) -> Selection:
        """The same selection with the order given as its id; ReplayError if the log has no such buyer, batch, order."""
        if self.buyer is not None and self.buyer not in known.buyers:
            raise ReplayError(f"no buyer {self.buyer!r} in the log; buyers: {_names(known.buyers)}")
        if self.batch is not None and self.batch not in known.batches:
            raise ReplayError(f"no batch {self.batch!r} in the log; batches: {_names(known.batches)}")
        if self.order is None or self.order in known.orders:
            return self
        by_ref = sorted(order for order, ref in known.refs.items() if ref == self.order)
        if len(by_ref) == 1:
            return Selection(self.buyer, self.batch, by_ref[0])
        if by_ref:
            raise ReplayError(f"{self.order!r} is the reference of {len(by_ref)} orders; give the order id: {by_ref}")
        raise ReplayError(
            f"no order {self.order!r} in the log; give an order id or a buyer's reference, e.g. "
            f"{_names(frozenset(known.refs.values()))}"
        )

    def keeps(self, line: Line) -> bool:
        return (
            (self.buyer is None or line.buyer == self.buyer)
            and (self.batch is None or line.batch_id == self.batch)
            and (self.order is None or line.order_id == self.order)
        )


def _names(names: frozenset[str]) -> str:
    ordered = sorted(names)
    if not ordered:
        return "none"
    more = f", ... ({len(ordered)} in all)" if len(ordered) > SHOWN_NAMES else ""
    return ", ".join(ordered[:SHOWN_NAMES]) + more


def shown_lines(ledger: Ledger, selection: Selection) -> list[Line]:
    return list(each_shown_line(ledger, selection))


def each_shown_line(ledger: Ledger, selection: Selection) -> Iterator[Line]:
    """The lines shown, made one at a time from the packed ledger (a list of 714,000 Lines held 450 MB)."""
    return (line for line in ledger.lines if selection.keeps(line))


def shown_totals(ledger: Ledger, selection: Selection) -> dict[str, Any]:
    """The totals of the lines shown: buyers and batches outside the selection left out."""
    everything = ledger.totals()
    if not selection.active:
        return everything
    lines = shown_lines(ledger, selection)
    buyers = {line.buyer for line in lines} | ({selection.buyer} if selection.buyer else set())
    batches = {line.batch_id for line in lines} | ({selection.batch} if selection.batch else set())
    pools = {everything["batches"][b]["pool_id"] for b in batches if b in everything["batches"]}
    return {
        "buyers": {k: v for k, v in everything["buyers"].items() if k in buyers},
        "batches": {k: v for k, v in everything["batches"].items() if k in batches},
        "pools": {k: v for k, v in everything["pools"].items() if k in pools},
    }
