"""A buyer never exceeds its licence or its import quota: open approvals against the revision each approval cites,
as they run (a buyer's approvals and releases share one partition of h200.approvals) and at the end against the
latest revision; and each approval falls within the validity window of what it cites.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from schemas.approval import ApprovalReleased, OrderApproved
from schemas.base import PolicyRef
from schemas.envelope import Envelope
from schemas.policy import ExportLicenceIssued, PolicyEvent, TrancheQuotaSet
from services.replay.eventlog import EventLog
from services.replay.violations import Violation, ids

Event = Envelope[Any]


def _policies(log: EventLog) -> dict[tuple[str, int], Event]:
    return {(e.payload.policy_id, e.payload.revision): e for e in log.of(PolicyEvent)}  # type: ignore[attr-defined]


def _cited(refs: tuple[PolicyRef, ...], policies: dict[tuple[str, int], Event], key: tuple[str, str]) -> Event | None:
    """The revision of the licence or the tranche quota (`key`) that a decision cites."""
    for ref in refs:
        found = policies.get((ref.policy_id, ref.revision))
        limits = isinstance(found.payload, ExportLicenceIssued | TrancheQuotaSet) if found else False
        if found is not None and limits and _limit_key(found.payload) == key:
            return found
    return None


def licence_and_quota(log: EventLog) -> list[Violation]:
    """A buyer's open approvals never exceed the licence or the tranche quota they draw on, as they run and at the
    end; each approval falls within the validity window of the licence and tranche revisions it cites."""
    policies = _policies(log)
    latest: dict[tuple[str, str], Event] = {}
    for e in log.of(ExportLicenceIssued, TrancheQuotaSet):
        p: Any = e.payload
        latest[_limit_key(p)] = e
    open_: Counter[tuple[str, str]] = Counter()
    last_approval: dict[tuple[str, str], Event] = {}
    problems: list[Violation] = []
    for e in log.of(OrderApproved, ApprovalReleased):
        p = e.payload
        keys = (("licence", p.licence_id), ("quota", f"{p.buyer_id}/{p.tranche_id}"))
        if isinstance(p, ApprovalReleased):
            for key in keys:
                open_[key] -= p.quantity
            continue
        for key in keys:
            open_[key] += p.approved_quantity
            last_approval[key] = e
            limit = _cited(p.policy_refs, policies, key) or latest.get(key)
            problems += _within(key, open_[key], limit, e)
    for key, used in open_.items():
        limit = latest.get(key)
        if limit is not None and used > limit.payload.quantity:
            message = f"{key[0]} {key[1]}: {used} chips under open approvals at the end, its latest revision allows "
            problems.append(Violation(f"{key[0]}_exceeded", f"{message}{limit.payload.quantity}", ids(limit)))
    return problems


def _limit_key(p: Any) -> tuple[str, str]:
    if isinstance(p, ExportLicenceIssued):
        return ("licence", p.licence_id)
    return ("quota", f"{p.buyer_id}/{p.tranche_id}")


def _within(key: tuple[str, str], used: int, limit: Event | None, approval: Event) -> list[Violation]:
    kind, name = key
    a: Any = approval.payload
    if limit is None:
        return [
            Violation(f"unknown_{kind}", f"order {a.order_id} approved on {kind} {name}, not in the log", ids(approval))
        ]
    p: Any = limit.payload
    problems = []
    if used > p.quantity:
        message = f"{kind} {name}: {used} chips under open approvals, revision {p.revision} allows {p.quantity}"
        problems.append(Violation(f"{kind}_exceeded", message, ids(limit, approval)))
    start, end = (p.valid_from, p.valid_until) if kind == "licence" else (p.opens_at, p.closes_at)
    if not start <= a.decided_at < end:
        message = (
            f"order {a.order_id} approved at {a.decided_at.isoformat()}, outside {kind} {name} ({_window(start, end)})"
        )
        problems.append(Violation(f"{kind}_not_in_force", message, ids(limit, approval)))
    return problems


def _window(start: datetime, end: datetime) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"
