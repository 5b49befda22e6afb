"""What the API reads from the projector's read models: the ledger as of a moment and filtered, supply against
demand over time, and an order's trail. Pure: a read model in, documents out (the gateway brings the read model).

The read model holds each fact with its own time (a line's `allocated_at`, its release's `released_at`, each
shipment step's `<step>_at`, a batch's `ready_at`, an order's `placed_at`, an approval's trail entry), so the
ledger as of T keeps exactly what had happened by T, cut as `h200 replay --as-of T` cuts the log
(services.replay.ledger), and its totals are replay's: the same Line, the same `totals`, the same filters
(services.replay.selection). One difference is said where it matters: a line is dated by its `allocated_at`, while
replay takes the later of that and its envelope's time (chips handed out as of approval's frontier).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from services.api.gateway import typed
from services.replay.ledger import Demand, Line, Stock, iso, make_ledger
from services.replay.live import read_model_line
from services.replay.records import ReplayError
from services.replay.selection import Known, Selection, shown_lines, shown_totals

STEPS = ("packed", "shipped", "held", "released", "customs_cleared", "delivered", "lost", "refused")
"""Shipment steps in the order they follow one another, to tell which came last when two share a time."""
FIGURES = ("manufactured", "requested", "approved", "allocated", "shipped", "delivered")
"""The figures of supply against demand, each a running total."""
APPROVED = "OrderApproved"


class ReadModel(Protocol):
    """What services.projector.store.ReadModelStore answers (and tests' FakeReadModel)."""

    ns: str

    def ledger(self) -> list[dict[str, str]]: ...
    def batches(self) -> dict[str, dict[str, str]]: ...
    def buyers(self) -> dict[str, dict[str, str]]: ...
    def orders(self) -> dict[str, dict[str, str]]: ...
    def order(self, order_id: str) -> dict[str, str]: ...
    def trail(self, order_id: str) -> list[dict[str, Any]]: ...
    def positions(self) -> dict[tuple[str, int], int]: ...
    def dead_letters(self) -> dict[str, int]: ...


class UnknownError(ReplayError):
    """A buyer, batch or moment the read model cannot answer for; the message names what it has."""


def moment_of(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def chips_released_at(fields: dict[str, str]) -> datetime | None:
    """When the line's chips went back to the pool (None: never). A customs hold's `released` step writes the same
    field, so only a line whose status is released counts."""
    return moment_of(fields.get("released_at")) if fields.get("status") == "released" else None


def line_as_of(fields: dict[str, str], moment: datetime | None) -> dict[str, str] | None:
    """A ledger line of the read model as it stood at `moment` (None: now), or None if not allocated by then."""
    if moment is None:
        return dict(fields)
    allocated = moment_of(fields.get("allocated_at"))
    if allocated is None or allocated > moment:
        return None
    line = dict(fields)
    released = chips_released_at(fields)
    if released is not None and released > moment:
        line["status"] = "allocated"
        line.pop("released_at", None)
        line.pop("released_why", None)
    steps = []
    for index, step in enumerate(STEPS):
        if step == "released" and released is not None:
            continue  # released_at is the release of the chips, not a step of the shipment
        at = moment_of(fields.get(f"{step}_at"))
        if at is not None and at > moment:
            line.pop(f"{step}_at", None)
        elif at is not None:
            steps.append((at, index, step))
    if steps:
        line["shipment"] = max(steps)[2]
    else:
        line.pop("shipment", None)
    return line


@dataclass(frozen=True)
class Order:
    """What supply against demand needs of an order: asked for when, approved how many when."""

    buyer_id: str
    requested: int
    placed_at: datetime | None
    approved: int
    approved_at: datetime | None


def orders_of(model: ReadModel) -> list[Order]:
    """Every placed order with the time of its approval (its trail's OrderApproved entry)."""
    found = []
    for order_id, fields in model.orders().items():
        placed = moment_of(fields.get("placed_at"))
        if placed is None:  # rejected at intake: no demand
            continue
        approved = int(fields.get("approved_quantity") or 0)
        approved_at = None
        if approved:
            entries = [entry for entry in model.trail(order_id) if entry.get("type") == APPROVED]
            approved_at = moment_of(entries[0]["at"]) if entries else placed
        found.append(
            Order(fields.get("buyer_id", "?"), int(fields.get("quantity") or 0), placed, approved, approved_at)
        )
    return found


def _demand(orders: Iterable[Order], moment: datetime) -> dict[str, Demand]:
    asked: dict[str, list[int]] = {}
    for order in orders:
        if order.placed_at is not None and order.placed_at <= moment:
            sums = asked.setdefault(order.buyer_id, [0, 0])
            sums[0] += order.requested
            sums[1] += order.approved if order.approved_at is not None and order.approved_at <= moment else 0
    return {buyer: Demand(requested, approved) for buyer, (requested, approved) in asked.items()}


def _stock(model: ReadModel, moment: datetime | None) -> list[Stock]:
    return [
        Stock(batch_id, fields.get("pool_id", "?"), int(fields["quantity"]))
        for batch_id, fields in model.batches().items()
        if "quantity" in fields and (moment is None or (moment_of(fields.get("ready_at")) or moment) <= moment)
    ]


def known(model: ReadModel, lines: Iterable[Line]) -> Known:
    shown = list(lines)
    return Known(
        buyers=frozenset(model.buyers()) | {line.buyer for line in shown},
        batches=frozenset(model.batches()) | {line.batch_id for line in shown},
        orders=frozenset(),
        refs={},
    )


def ledger_document(
    model: ReadModel, moment: datetime | None = None, buyer: str | None = None, batch: str | None = None
) -> dict[str, Any]:
    """The ledger at `moment` (None: now), its lines and totals restricted to `buyer` and `batch` when given: the
    read model's fields of each line (with its allocation id), and replay's totals of what is shown."""
    cut = [line for line in (line_as_of(fields, moment) for fields in model.ledger()) if line is not None]
    lines = [read_model_line(fields) for fields in cut]
    if moment is None:
        demand = {
            buyer_id: Demand(int(fields.get("requested", 0)), int(fields.get("approved", 0)))
            for buyer_id, fields in model.buyers().items()
        }
    else:
        demand = _demand(orders_of(model), moment)
    ledger = make_ledger(None if moment is None else iso(moment), lines, _stock(model, moment), demand)
    selection = Selection(buyer, batch).resolve(known(model, lines))
    kept = {line.allocation_id for line in shown_lines(ledger, selection)}
    totals = shown_totals(ledger, selection)
    return {
        "namespace": model.ns,
        "as_of": ledger.as_of,
        "selection": selection.active,
        "lines": sorted(
            (typed(fields) for fields in cut if fields.get("allocation_id") in kept),
            key=lambda line: (str(line["allocated_at"]), str(line.get("buyer_id")), str(line.get("batch_id"))),
        ),
        "totals": totals,
        "buyers": totals["buyers"],
        "batches": totals["batches"],
    }


def parse_as_of(text: str | None) -> datetime | None:
    """`as_of` of a request: an ISO 8601 time with a zone, or none; UnknownError says what a good one looks like."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise UnknownError(f"as_of is not an ISO 8601 time: {text!r} (e.g. 2026-02-10T09:00:00Z)") from None
    if moment.tzinfo is None:
        raise UnknownError(f"as_of {text!r} has no time zone; add Z or +00:00 (e.g. 2026-02-10T09:00:00Z)")
    return moment.astimezone(UTC)
