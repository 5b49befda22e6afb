"""Reads the event log and checks the invariants of domain.md over it: the auditor's view, no service state.

Used by the end-to-end and crash tests, and by the demo to prove what it printed. The reading, the checks and
the ledger fold live in services.replay (`h200 verify` runs them all, and more); this is their short form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.topics import EVENT_TOPICS
from services.replay.eventlog import EventLog, build_log
from services.replay.invariants import check
from services.replay.kafka_io import read_topics
from services.replay.ledger import fold_ledger
from services.replay.records import in_catalogue_order

AUDITED_TOPICS = EVENT_TOPICS

Log = EventLog
"""Every event of the audited topics, in partition order, each id once; duplicates and bad records counted."""


def read_log(bootstrap: str, topics: Iterable[str] = AUDITED_TOPICS) -> Log:
    chosen = in_catalogue_order(tuple(topics))
    return build_log(read_topics(bootstrap, chosen), chosen, f"kafka {bootstrap}")


def check_invariants(log: Log) -> list[str]:
    """Every violation found, each naming the events or things involved; empty when the log is sound."""
    return [str(violation) for violation in check(log)]


def ledger_rows(log: Log) -> list[dict[str, Any]]:
    """Live ledger lines (not released), oldest first: who got which batch, how many, when."""
    rows = [
        {
            "allocated_at": line.allocated_at,
            "buyer_id": line.buyer,
            "order_id": line.order_id,
            "batch_id": line.batch_id,
            "quantity": line.quantity,
            "allocation_id": line.allocation_id,
        }
        for line in fold_ledger(log.events).lines
        if line.live
    ]
    return sorted(rows, key=lambda r: (r["allocated_at"], r["buyer_id"], r["batch_id"], r["allocation_id"]))
