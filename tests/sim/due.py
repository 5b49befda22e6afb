"""What falls due as time passes must be decided (docs/time.md), checked once settled: a service that has seen a
tick past a boundary has acted on it.

- `licence-end-ignored`: an approval still open (approved or suspended) although approval's partition of its
  buyer has seen a tick at or after the end of its licence's validity (it should have expired).
- `unfilled-not-closed`: an approved order still unfilled and open although allocation's partition of its pool
  has seen a tick `close_unfilled_after_s` after its approval, and after the order's last ledger line (an order
  admitted or given chips after the tick waits for the next one), checked only where every revision of the
  pool's rule says the same, so which revision applies does not matter.
"""

from __future__ import annotations

from datetime import timedelta

from schemas.topics import BY_NAME

from .cluster import Cluster, at_ms
from .facts import Facts
from .topology import partition_of
from .violation import Violation


def last_tick(cluster: Cluster, topic: str, key: str) -> int | None:
    log = cluster.logs[topic][partition_of(key, BY_NAME[topic])]
    return log[-1].tick_ms if log else None


def last_tick_seq(cluster: Cluster, topic: str, key: str) -> int:
    log = cluster.logs[topic][partition_of(key, BY_NAME[topic])]
    return max((entry.seq for entry in log if entry.envelope.type == "ClockTicked"), default=-1)


def licence_end_ignored(cluster: Cluster, facts: Facts) -> Violation | None:
    inbox = cluster.topology.inbox_of("approval").name
    for order in facts.orders.values():
        approved = order.approved
        if approved is None or order.status not in ("approved", "suspended"):
            continue
        tick = last_tick(cluster, inbox, approved.buyer_id)
        if tick is None:
            continue
        until = facts.valid_until(approved.licence_id, at_ms(tick))
        if until is not None and until <= at_ms(tick):
            message = (
                f"order {str(order.order_id)[:8]} still {order.status} on licence {approved.licence_id}, valid until "
                f"{until:%m-%d %H:%M:%S}, after approval's partition saw a tick at {at_ms(tick):%m-%d %H:%M:%S}"
            )
            return Violation("licence-end-ignored", message, (order.standing[-1][3],))
    return None


def unfilled_not_closed(cluster: Cluster, facts: Facts) -> Violation | None:
    inbox = cluster.topology.inbox_of("allocation").name
    for pool, rules in facts.rule_revisions.items():
        after = {rule.close_unfilled_after_s for rule in rules}
        tick = last_tick(cluster, inbox, pool)
        if len(after) != 1 or None in after or tick is None:
            continue
        waited = timedelta(seconds=after.pop())
        ticked = last_tick_seq(cluster, inbox, pool)
        for order in facts.orders.values():
            approved = order.approved
            if approved is None or approved.pool_id != pool or order.status != "approved" or order.closed:
                continue
            if any(max(line.seq, line.released_seq) > ticked for line in order.lines):
                continue
            if order.live_chips() < approved.approved_quantity and approved.decided_at + waited <= at_ms(tick):
                message = (
                    f"order {str(order.order_id)[:8]} approved {approved.decided_at:%m-%d %H:%M:%S} still unfilled "
                    f"({order.live_chips()} of {approved.approved_quantity}) and open after allocation's partition "
                    f"saw a tick at {at_ms(tick):%m-%d %H:%M:%S} (close_unfilled_after_s={waited.total_seconds():.0f})"
                )
                return Violation("unfilled-not-closed", message, (order.standing[-1][3],))
    return None
