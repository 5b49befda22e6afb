"""Text views of the read models for operators: an order with its trail, the ledger, buyer and batch totals."""

from __future__ import annotations

from services.projector.store import ReadModelStore


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


def ledger_view(store: ReadModelStore) -> str:
    header = f"{'allocated_at':<26} {'buyer':<12} {'batch':<12} {'chips':>8}  {'status':<10} {'shipment':<16} policy"
    rows = [header, "-" * len(header)]
    for line in store.ledger():
        rows.append(
            f"{line['allocated_at']:<26} {line['buyer_id']:<12} {line['batch_id']:<12} {int(line['quantity']):>8,}  "
            f"{line['status']:<10} {line.get('shipment', '-'):<16} {line['policy_version']}"
        )
    return "\n".join(rows)


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
