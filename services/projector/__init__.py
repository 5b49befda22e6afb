"""Read models in Redis: order status and trail, buyer totals, batch usage and the ledger."""
