"""Supply against demand over time, from the read models: chips manufactured, asked for, approved, allocated,
shipped and delivered, as running totals at every moment one of them changed.

Each point is what `ledger_document(model, moment)` totals at that moment (services.api.reads), summed over buyers
and batches: a line counts as allocated from its `allocated_at` until its chips go back to the pool, as shipped from
its first of shipped/delivered until then, as delivered from its delivery until then (as replay counts a line at a
moment). One pass over the lines, batches and orders, so a long ledger costs a sort, not a ledger per moment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from services.api.reads import FIGURES, ReadModel, chips_released_at, moment_of, orders_of
from services.replay.ledger import iso


class _Changes:
    def __init__(self) -> None:
        self.by_moment: defaultdict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))

    def add(self, figure: str, at: datetime | None, quantity: int, until: datetime | None = None) -> None:
        """`quantity` counted in `figure` from `at` until `until` (None: from now on); nothing when never counted."""
        if at is None or (until is not None and until <= at):
            return
        self.by_moment[at][figure] += quantity
        if until is not None:
            self.by_moment[until][figure] -= quantity


def supply_and_demand(model: ReadModel, buyer: str | None = None) -> dict[str, Any]:
    """The running totals at every moment one changed, oldest first, and the totals now (the last point). With
    `buyer`, demand and the buyer's chips only; manufactured is the whole supply either way."""
    changes = _Changes()
    for fields in model.batches().values():
        changes.add("manufactured", moment_of(fields.get("ready_at")), int(fields.get("quantity") or 0))
    for order in orders_of(model):
        if buyer is None or order.buyer_id == buyer:
            changes.add("requested", order.placed_at, order.requested)
            changes.add("approved", order.approved_at, order.approved)
    for line in model.ledger():
        if buyer is not None and line.get("buyer_id") != buyer:
            continue
        quantity, released = int(line["quantity"]), chips_released_at(line)
        shipped = [
            moment for moment in (moment_of(line.get("shipped_at")), moment_of(line.get("delivered_at"))) if moment
        ]
        changes.add("allocated", moment_of(line.get("allocated_at")), quantity, released)
        changes.add("shipped", min(shipped) if shipped else None, quantity, released)
        changes.add("delivered", moment_of(line.get("delivered_at")), quantity, released)
    running = dict.fromkeys(FIGURES, 0)
    points = []
    for moment in sorted(changes.by_moment):
        for figure, delta in changes.by_moment[moment].items():
            running[figure] += delta
        points.append({"at": iso(moment), **running})
    return {"namespace": model.ns, "buyer": buyer, "figures": list(FIGURES), "points": points, "now": dict(running)}
