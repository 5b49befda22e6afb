"""A buyer never exceeds its licence or its import quota, counted from the facts, not from approval's own sums.

What an order takes from the licence and the tranche quota its approval cites: while the approval stands, the
chips approved (they may still be allocated); once it ended (ApprovalReleased), the chips it keeps, i.e. its
lines that shipped and were not lost or refused (services.replay.shipped). Chips that left never come back, so
a release that gives them back to the licence does not make room. Checked at every approval, in the order
approval recorded its decisions (per partition of h200.approvals; partitions, one per pool, merged by decision
time, since one licence may serve orders of several pools), against the revision the approval cites; at the
end, whatever the order, against the latest revision, where chips shipped alone above it are named apart.
Each approval must also fall within the validity window of what it cites.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from schemas.approval import ApprovalReleased, OrderApproved
from schemas.base import PolicyRef
from schemas.envelope import Envelope
from schemas.policy import ExportLicenceIssued, PolicyEvent, TrancheQuotaSet
from services.replay.reading import Read
from services.replay.rows import Names, Rows, id_int, time_fields, time_of
from services.replay.shipped import LineFacts
from services.replay.violations import Violation, ids

Event = Envelope[Any]
"""A policy event: few enough to keep whole."""


class _Approval(NamedTuple):
    """An OrderApproved, as much of it as the licence and quota check asks about (ids as integers, names kept once,
    the policies cited shared among approvals citing the same)."""

    event: int
    order: int
    buyer_id: str
    licence_id: str
    tranche_id: str
    approved_quantity: int
    decided_at: datetime
    policy_refs: tuple[PolicyRef, ...]

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def order_id(self) -> UUID:
        return UUID(int=self.order)


class _Ended(NamedTuple):
    event: int
    order: int
    decided_at: datetime


Key = tuple[str, str]
"""("licence", licence id) or ("quota", "buyer/tranche")."""
SHOWN_ORDERS = 10
ROW = "?16s16sIIIqqiI"
"""ended?, event id, order id, buyer, licence, tranche (by number), chips approved, decided at (us, offset), the
policies cited (by number): 71 bytes, where an _Approval and its objects took ~300."""


def _limit_key(p: Any) -> Key:
    if isinstance(p, ExportLicenceIssued):
        return ("licence", p.licence_id)
    return ("quota", f"{p.buyer_id}/{p.tranche_id}")


def _keys(approval: Any) -> tuple[Key, Key]:
    return ("licence", approval.licence_id), ("quota", f"{approval.buyer_id}/{approval.tranche_id}")


def _cited(refs: tuple[PolicyRef, ...], policies: dict[tuple[str, int], Event], key: Key) -> Event | None:
    """The revision of the licence or the tranche quota (`key`) that a decision cites."""
    for ref in refs:
        found = policies.get((ref.policy_id, ref.revision))
        limits = isinstance(found.payload, ExportLicenceIssued | TrancheQuotaSet) if found else False
        if found is not None and limits and _limit_key(found.payload) == key:
            return found
    return None


class _Standing(NamedTuple):
    """An approval as `_Use` keeps it while it stands, one per order of the log: no time, no policies cited, its
    licence and quota keys shared (~130 bytes where the _Approval took ~290)."""

    event: int
    order: int
    approved_quantity: int
    keys: tuple[Key, Key]

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)

    @property
    def order_id(self) -> UUID:
        return UUID(int=self.order)


class _Use:
    """Per licence and per quota, as approvals stand and end: chips under standing approvals (what they approved,
    or more if more shipped) and chips kept by ended orders. Sums are kept as they run: logs are long."""

    def __init__(self, kept: dict[int, int]) -> None:
        self.kept = kept
        """By order id as an integer, like the rest of this class."""
        self.approvals: dict[int, _Standing] = {}
        self._shared_keys: dict[tuple[Key, Key], tuple[Key, Key]] = {}
        self.ended: set[int] = set()
        self.standing: Counter[Key] = Counter()
        self.kept_by_ended: Counter[Key] = Counter()

    def _standing(self, approval: _Standing) -> int:
        return int(max(approval.approved_quantity, self.kept.get(approval.order, 0)))

    def approve(self, approved: _Approval) -> None:
        order_id = approved.order
        self._forget(order_id)  # approved again: the new approval replaces the old one
        keys = _keys(approved)
        keys = self._shared_keys.setdefault(keys, keys)
        approval = self.approvals[order_id] = _Standing(approved.event, order_id, approved.approved_quantity, keys)
        for key in keys:
            self.standing[key] += self._standing(approval)

    def _forget(self, order_id: int) -> None:
        old = self.approvals.pop(order_id, None)
        if old is None:
            return
        for key in old.keys:
            if order_id in self.ended:
                self.kept_by_ended[key] -= self.kept.get(order_id, 0)
            else:
                self.standing[key] -= self._standing(old)
        self.ended.discard(order_id)

    def end(self, order_id: int) -> None:
        approval = self.approvals.get(order_id)
        if approval is None or order_id in self.ended:
            return
        self.ended.add(order_id)
        for key in approval.keys:
            self.standing[key] -= self._standing(approval)
            self.kept_by_ended[key] += self.kept.get(order_id, 0)

    def of(self, key: Key) -> tuple[int, int]:
        """(chips under standing approvals, chips kept by ended orders)."""
        return self.standing[key], self.kept_by_ended[key]

    def shipped(self) -> dict[Key, tuple[int, list[_Standing]]]:
        """Per licence and quota, the chips kept by the orders approved on it and the first SHOWN_ORDERS of those
        orders' approvals (a list of them all took 8 bytes an order per key)."""
        found: dict[Key, tuple[int, list[_Standing]]] = {}
        for order_id, approval in self.approvals.items():
            kept = self.kept.get(order_id, 0)
            if kept:
                for key in approval.keys:
                    chips, named = found.get(key, (0, []))
                    if len(named) < SHOWN_ORDERS:
                        named.append(approval)
                    found[key] = (chips + kept, named)
        return found


class LicenceAndQuota:
    """Every licence and tranche quota a buyer's orders took more of than allowed, and approvals out of window.
    Keeps the policy events, and approvals and their ends as rows per partition: they are taken in decision order
    at the end, once the shipments (read after them) say what each order keeps."""

    def __init__(self, facts: LineFacts) -> None:
        self.facts = facts
        self.policies: dict[tuple[str, int], Event] = {}
        self.latest: dict[Key, Event] = {}
        self.partitions: dict[tuple[str, int], Rows[_Approval | _Ended]] = {}
        self.names = Names()
        """Buyers, licences and tranches, and the policies cited (`cited`), kept once and named by number in rows."""
        self.cited: list[tuple[PolicyRef, ...]] = []
        self._cited_numbers: dict[tuple[PolicyRef, ...], int] = {}

    def _row(self, fields: tuple[Any, ...]) -> _Approval | _Ended:
        ended, event, order, buyer, licence, tranche, quantity, us, offset, refs = fields
        if ended:
            return _Ended(id_int(event), id_int(order), time_of(us, offset))
        names = self.names.names[buyer], self.names.names[licence], self.names.names[tranche]
        return _Approval(id_int(event), id_int(order), *names, quantity, time_of(us, offset), self.cited[refs])

    def _rows(self, read: Read) -> Rows[_Approval | _Ended]:
        where = (read.spot.topic, read.spot.partition)
        rows = self.partitions.get(where)
        if rows is None:
            rows = self.partitions[where] = Rows(ROW, self._row)
        return rows

    def see(self, read: Read) -> None:
        if read.inbox:
            return
        e = read.envelope
        p: Any = e.payload
        if isinstance(p, PolicyEvent):
            self.policies[(p.policy_id, p.revision)] = e
            if isinstance(p, ExportLicenceIssued | TrancheQuotaSet):
                self.latest[_limit_key(p)] = e
        elif isinstance(p, OrderApproved):
            refs = self._cited_numbers.get(p.policy_refs)
            if refs is None:
                refs = self._cited_numbers[p.policy_refs] = len(self.cited)
                self.cited.append(p.policy_refs)
            names = self.names.index(p.buyer_id), self.names.index(p.licence_id), self.names.index(p.tranche_id)
            us, offset = time_fields(p.decided_at)
            self._rows(read).append(False, e.id.bytes, p.order_id.bytes, *names, p.approved_quantity, us, offset, refs)
        elif isinstance(p, ApprovalReleased):
            us, offset = time_fields(p.decided_at)
            self._rows(read).append(True, e.id.bytes, p.order_id.bytes, 0, 0, 0, 0, us, offset, 0)

    def violations(self) -> list[Violation]:
        use = _Use(self.facts.kept_by_order())
        reported: set[Key] = set()
        problems: list[Violation] = []
        for e in self._in_decision_order():
            if isinstance(e, _Ended):
                use.end(e.order)
                continue
            use.approve(e)
            for key in _keys(e):
                limit = _cited(e.policy_refs, self.policies, key) or self.latest.get(key)
                problems += _within(key, use.of(key), limit, e, reported)
        shipped = use.shipped()
        for key, limit in self.latest.items():
            problems += _at_the_end(key, use, shipped.get(key, (0, [])), limit, reported)
        return problems

    def _in_decision_order(self) -> Iterator[_Approval | _Ended]:
        """Approvals and releases in each partition's order, the partitions merged by the time of each decision."""
        # merge takes the earliest head each time, so each partition keeps its own order even where its times do not
        chosen = (self.partitions[key] for key in sorted(self.partitions))
        return heapq.merge(*chosen, key=lambda e: e.decided_at)


def _within(
    key: Key, used: tuple[int, int], limit: Event | None, approval: _Approval, reported: set[Key]
) -> list[Violation]:
    kind, name = key
    a = approval
    if limit is None:
        return [
            Violation(f"unknown_{kind}", f"order {a.order_id} approved on {kind} {name}, not in the log", ids(approval))
        ]
    p: Any = limit.payload
    problems = []
    if sum(used) > p.quantity and key not in reported:
        reported.add(key)  # the first approval that takes too much is named; the ones after it follow from it
        message = f"{kind} {name}: {_use(used)}, revision {p.revision} allows {p.quantity}"
        problems.append(Violation(f"{kind}_exceeded", message, ids(limit, approval)))
    start, end = (p.valid_from, p.valid_until) if kind == "licence" else (p.opens_at, p.closes_at)
    if not start <= a.decided_at < end:
        message = (
            f"order {a.order_id} approved at {a.decided_at.isoformat()}, outside {kind} {name} ({_window(start, end)})"
        )
        problems.append(Violation(f"{kind}_not_in_force", message, ids(limit, approval)))
    return problems


def _at_the_end(
    key: Key, use: _Use, keeping: tuple[int, list[_Standing]], limit: Event, reported: set[Key]
) -> list[Violation]:
    kind, name = key
    p: Any = limit.payload
    shipped, first = keeping
    if shipped > p.quantity:
        named = ", ".join(str(a.order_id) for a in first)
        message = (
            f"{kind} {name}: {shipped} chips shipped and not lost or refused (orders {named}), its latest "
            f"revision {p.revision} allows {p.quantity}"
        )
        return [Violation(f"{kind}_exceeded_by_shipped_chips", message, ids(limit, *first))]
    used = use.of(key)
    if sum(used) > p.quantity and key not in reported:
        message = f"{kind} {name}: {_use(used)} at the end, its latest revision {p.revision} allows {p.quantity}"
        return [Violation(f"{kind}_exceeded", message, ids(limit))]
    return []


def _use(used: tuple[int, int]) -> str:
    standing, kept = used
    kept_text = f" and {kept} chips kept by ended orders" if kept else ""
    return f"{standing} chips under open approvals{kept_text}"


def _window(start: datetime, end: datetime) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"
