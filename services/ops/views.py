"""Views of the read models for operators: an order with its trail, a buyer's orders, the ledger (as a table, CSV
or JSON), buyer and batch totals."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from services.projector.store import ReadModelStore

LEDGER_FIELDS = (
    "allocation_id",
    "pool_id",
    "buyer_id",
    "order_id",
    "batch_id",
    "quantity",
    "allocated_at",
    "status",
    "shipment",
    *(f"{step}_at" for step in ("packed", "shipped", "customs_cleared", "delivered", "held", "lost", "refused")),
    "released_at",
    "released_why",
    "recall",
    "suspended",
    "rule",
    "policy_version",
    "cause_event_id",
)
"""The columns of a ledger line as CSV: every field the projector writes on a line (blank where not set)."""


def order_view(store: ReadModelStore, order_id: str) -> str:
    order = store.order(order_id)
    if not order:
        return f"no order {order_id} in the read model (namespace {store.ns})"
    lines = [
        f"order {order_id}  buyer {order.get('buyer_id')}  ref {order.get('upstream_ref')}",
        f"  status {order.get('status')}  requested {order.get('quantity', '-')}  approved "
        f"{order.get('approved_quantity', '-')}  allocated {order.get('allocated', 0)}  shipped "
        f"{order.get('shipped', 0)}  delivered {order.get('delivered', 0)}",
    ]
    if order.get("reasons"):
        lines.append(f"  reasons: {order['reasons']}")
    if order.get("policy_refs"):
        lines.append(f"  policy applied: {order['policy_refs']}")
    lines.append("  trail:")
    lines += [f"    {t['at']}  {t['type']:<22} {t['what']}  (event {t['id'][:8]})" for t in store.trail(order_id)]
    return "\n".join(lines)


def buyer_orders_view(store: ReadModelStore, buyer: str) -> str | None:
    """The buyer's orders, one line each, or None when the read model has none."""
    orders = sorted(
        (order for order in store.orders().values() if order.get("buyer_id") == buyer),
        key=lambda order: (order.get("placed_at", ""), order.get("upstream_ref", "")),
    )
    if not orders:
        return None
    header = (
        f"{'ref':<18} {'order_id':<36}  {'status':<20} {'requested':>10} {'approved':>10} {'allocated':>10} "
        f"{'shipped':>10} {'delivered':>10}"
    )
    rows = [f"{len(orders)} order(s) of buyer {buyer} (namespace {store.ns}):", header, "-" * len(header)]
    for order in orders:
        counts = " ".join(
            f"{_number(order.get(name)):>10}" for name in ("quantity", "approved_quantity", "allocated", "shipped")
        )
        rows.append(
            f"{order.get('upstream_ref', '?'):<18} {order.get('order_id', '?'):<36}  {order.get('status', '?'):<20} "
            f"{counts} {_number(order.get('delivered')):>10}"
        )
    rows.append(f"an order's trail: h200 show --buyer {buyer} --ref {orders[0].get('upstream_ref', 'REF')}")
    return "\n".join(rows)


def _number(text: str | None) -> str:
    return f"{int(text):,}" if text else "-"


def ledger_view(store: ReadModelStore) -> str:
    """The ledger, a line per allocation with its full id (what `h200 fulfil --allocation` takes)."""
    header = (
        f"{'allocation_id':<36}  {'allocated_at':<25} {'buyer':<12} {'batch':<12} {'chips':>8}  {'status':<10} "
        f"{'shipment':<16} policy"
    )
    rows = [header, "-" * len(header)]
    for line in store.ledger():
        rows.append(
            f"{line.get('allocation_id', '?'):<36}  {line['allocated_at']:<25} {line['buyer_id']:<12} "
            f"{line['batch_id']:<12} {int(line['quantity']):>8,}  {line['status']:<10} {line.get('shipment', '-'):<16} "
            f"{line['policy_version']}"
        )
    return "\n".join(rows)


def ledger_csv(store: ReadModelStore) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LEDGER_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(store.ledger())
    return out.getvalue()


COUNTERS = frozenset({"quantity", "requested", "approved", "allocated", "shipped", "delivered", "released", "orders"})


def _typed(fields: dict[str, str]) -> dict[str, Any]:
    """Quantities and counters as numbers; everything else as the projector wrote it."""
    return {k: int(v) if k in COUNTERS else v for k, v in fields.items()}


def ledger_json(store: ReadModelStore) -> str:
    document = {
        "namespace": store.ns,
        "lines": [_typed(line) for line in store.ledger()],
        "buyers": {buyer: _typed(totals) for buyer, totals in store.buyers().items()},
        "batches": {batch: _typed(totals) for batch, totals in store.batches().items()},
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def totals_view(store: ReadModelStore) -> str:
    rows = [f"{'buyer':<12} {'requested':>10} {'approved':>10} {'allocated':>10} {'shipped':>10} {'delivered':>10}"]
    for buyer, t in store.buyers().items():
        rows.append(
            f"{buyer:<12} {int(t.get('requested', 0)):>10,} {int(t.get('approved', 0)):>10,} "
            f"{int(t.get('allocated', 0)):>10,} {int(t.get('shipped', 0)):>10,} {int(t.get('delivered', 0)):>10,}"
        )
    rows.append("")
    rows.append(f"{'batch':<12} {'site':<28} {'chips':>9} {'allocated':>10} {'delivered':>10}")
    for batch, b in store.batches().items():
        rows.append(
            f"{batch:<12} {b.get('site', '?')[:28]:<28} {int(b.get('quantity', 0)):>9,} "
            f"{int(b.get('allocated', 0)):>10,} {int(b.get('delivered', 0)):>10,}"
        )
    return "\n".join(rows)
