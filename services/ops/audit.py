"""Reads the event log and checks the invariants of domain.md over it: the auditor's view, no service state.

Used by the end-to-end and crash tests, and by the demo to prove what it printed. The reading, the checks and
the ledger fold live in services.replay (`h200 verify` runs them all, and more); this is their short form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.base import Message
from schemas.codec import ContractError, decode
from schemas.envelope import Envelope
from schemas.topics import EVENT_TOPICS
from services.ops.protocol import check_protocol
from services.replay.eventlog import EventLog, build_log
from services.replay.invariants import check
from services.replay.kafka_io import read_topics
from services.replay.ledger import fold_ledger
from services.replay.records import in_catalogue_order

AUDITED_TOPICS = EVENT_TOPICS
FULFILMENT_INBOX = "h200.fulfilment.commands"
"""Fulfilment's inputs in the order it decided on them: where a line's suspension sits among its reports."""

Log = EventLog
"""Every event of the audited topics, in partition order, each id once; duplicates and bad records counted."""


def read_log(bootstrap: str, topics: Iterable[str] = AUDITED_TOPICS) -> Log:
    chosen = in_catalogue_order(tuple(topics))
    return build_log(read_topics(bootstrap, chosen), chosen, f"kafka {bootstrap}")


def check_invariants(log: Log) -> list[str]:
    """Every violation found, each naming the events or things involved; empty when the log is sound."""
    return [str(violation) for violation in check(log)]


def read_fulfilment_inbox(bootstrap: str) -> dict[int, list[Envelope[Message]]]:
    """h200.fulfilment.commands per partition, every decodable record in offset order (duplicates included)."""
    inbox: dict[int, list[Envelope[Message]]] = {}
    for record in read_topics(bootstrap, (FULFILMENT_INBOX,)):
        try:
            envelope = decode(record.value or b"")
        except ContractError:
            continue  # fulfilment dead-lettered it
        inbox.setdefault(record.partition, []).append(envelope)
    return inbox


def check_settled_protocol(bootstrap: str, log: Log) -> list[str]:
    """The protocol between services over a settled log: recalls answered, ended orders closed and released, no
    shipment after a recall or while suspended (services.ops.protocol)."""
    return check_protocol(log, read_fulfilment_inbox(bootstrap))


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
