"""The live Redis read model seen as a Ledger, so that its hash is computed exactly as a replay's is."""

from __future__ import annotations

from datetime import datetime

from schemas.topics import EVENT_TOPICS
from services.projector.store import ReadModelStore
from services.replay.ledger import Demand, Ledger, Line, Stock, iso, line_status, make_ledger


def _time(text: str | None) -> str | None:
    return iso(datetime.fromisoformat(text)) if text else None


def read_model_line(fields: dict[str, str]) -> Line:
    """A ledger line of the read model as replay's Line."""
    return Line(
        allocation_id=fields["allocation_id"],
        pool_id=fields["pool_id"],
        buyer=fields["buyer_id"],
        order_id=fields["order_id"],
        batch_id=fields["batch_id"],
        quantity=int(fields["quantity"]),
        allocated_at=iso(datetime.fromisoformat(fields["allocated_at"])),
        status=line_status(fields.get("status") == "released", fields.get("shipment")),
        shipped_at=_time(fields.get("shipped_at")),
        delivered_at=_time(fields.get("delivered_at")),
        rule=fields["rule"],
        policy_version=fields["policy_version"],
        cause_event_id=fields["cause_event_id"],
    )


def live_ledger(store: ReadModelStore) -> Ledger:
    """The read model's ledger now: its lines, its batches and what each buyer asked for and was approved."""
    lines = [read_model_line(fields) for fields in store.ledger()]
    stock = [
        Stock(batch_id, fields["pool_id"], int(fields["quantity"]))
        for batch_id, fields in store.batches().items()
        if "quantity" in fields
    ]
    demand = {
        buyer: Demand(int(fields.get("requested", 0)), int(fields.get("approved", 0)))
        for buyer, fields in store.buyers().items()
    }
    return make_ledger(None, lines, stock, demand)


def projector_behind(store: ReadModelStore, ends: dict[tuple[str, int], int]) -> int:
    """Records of the event topics the read model has not applied yet (0 when it has read them to their ends)."""
    positions = store.positions()
    return sum(
        max(end - positions.get(partition, 0), 0) for partition, end in ends.items() if partition[0] in EVENT_TOPICS
    )
