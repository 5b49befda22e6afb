"""No batch gives out more chips than it holds, no order receives more than approved, no chip is allocated twice.

Checked as the allocation core wrote its decisions (a pool's allocations and releases share one partition of
h200.allocations). A release gives chips back only if they are still in the warehouse: a line that shipped
(services.replay.shipped) and was then released without a failed delivery keeps counting against its batch and
its order, so its chips given again to another order show as an overdraft naming the shipped lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.allocation import AllocationReleased, ChipsAllocated
from schemas.approval import OrderApproved
from schemas.envelope import Envelope
from schemas.supply import BatchManufactured
from services.replay.eventlog import EventLog
from services.replay.shipped import shipped_lines
from services.replay.violations import Violation, ids

Event = Envelope[Any]
SHOWN_LINES = 10
"""Allocations named with a batch or an order that went over its limit: the latest ones."""


@dataclass
class _Account:
    """The chips drawn on one batch or given to one order, against what it holds or was approved."""

    limit: int | None
    limit_event: Event | None
    total: int = 0
    """Live lines plus lines that shipped and were released afterwards: chips that are not in the pool."""
    lines: dict[Any, Event] = field(default_factory=dict)
    gone: dict[Any, Event] = field(default_factory=dict)
    """Lines released after they shipped, by allocation id: their chips left and did not come back."""
    gone_total: int = 0
    overdrawn: bool = False
    overdrawn_by_gone: bool = False

    @property
    def live(self) -> int:
        return self.total - self.gone_total

    def add(self, line: Event) -> str | None:
        """`live` the first time live lines alone go over the limit, `gone` the first time shipped chips count."""
        self.lines[line.payload.allocation_id] = line
        self.total += line.payload.quantity
        if self.limit is None or self.total <= self.limit:
            return None
        if self.live > self.limit:
            if self.overdrawn:
                return None
            self.overdrawn = True
            return "live"
        if self.overdrawn_by_gone:
            return None
        self.overdrawn_by_gone = True
        return "gone"

    def remove(self, line: Event, shipped: bool) -> None:
        self.lines.pop(line.payload.allocation_id, None)
        if shipped:
            self.gone[line.payload.allocation_id] = line
            self.gone_total += line.payload.quantity
        else:
            self.total -= line.payload.quantity

    def events(self) -> tuple[str, ...]:
        gone = list(self.gone.values())[:SHOWN_LINES]
        return ids(self.limit_event, *gone, *list(self.lines.values())[-SHOWN_LINES:])

    def named_gone(self) -> str:
        return ", ".join(f"{a} ({line.payload.quantity})" for a, line in list(self.gone.items())[:SHOWN_LINES])


def check_chips(log: EventLog) -> list[Violation]:
    """Every overdrawn batch, overfilled order, line allocated twice or released wrongly, named by its events."""
    holds = {e.payload.batch_id: e for e in log.of(BatchManufactured)}  # type: ignore[attr-defined]
    approvals = {e.payload.order_id: e for e in log.of(OrderApproved)}  # type: ignore[attr-defined]
    shipped = shipped_lines(log)
    batches: dict[str, _Account] = {}
    orders: dict[Any, _Account] = {}
    lines: dict[Any, Event] = {}
    released: dict[Any, Event] = {}
    problems: list[Violation] = []
    for e in log.of(ChipsAllocated, AllocationReleased):
        p: Any = e.payload
        line = lines.get(p.allocation_id)
        if isinstance(p, AllocationReleased):
            if line is None or p.allocation_id in released:
                state = "never allocated" if line is None else "already released"
                found = ids(line, released.get(p.allocation_id), e)
                problems.append(Violation("bad_release", f"allocation {p.allocation_id} released but {state}", found))
                continue
            released[p.allocation_id] = e
            gone = p.allocation_id in shipped
            batches[line.payload.batch_id].remove(line, gone)
            orders[line.payload.order_id].remove(line, gone)
            continue
        if line is not None:
            problems.append(Violation("allocated_twice", f"allocation {p.allocation_id} decided twice", ids(line, e)))
            continue
        lines[p.allocation_id] = e
        batch = batches.setdefault(p.batch_id, _limit(holds.get(p.batch_id), "quantity"))
        order = orders.setdefault(p.order_id, _limit(approvals.get(p.order_id), "approved_quantity"))
        if batch.limit is None:
            message = f"allocation {p.allocation_id} draws on unknown batch {p.batch_id}"
            problems.append(Violation("unknown_batch", message, ids(e)))
        if order.limit is None:
            message = f"allocation {p.allocation_id} went to order {p.order_id}, which was never approved"
            problems.append(Violation("order_not_approved", message, ids(e)))
        problems += _overdraft("batch", p.batch_id, batch, batch.add(e))
        problems += _overdraft("order", p.order_id, order, order.add(e))
    return problems


def _overdraft(kind: str, name: object, account: _Account, how: str | None) -> list[Violation]:
    """The violation `add` reported, if any: by live lines alone, or only by counting shipped chips."""
    code, has, allows = (
        ("batch_overdrawn", "gave out", "holds") if kind == "batch" else ("order_overfilled", "holds", "approved for")
    )
    if how == "live":
        separator = " but" if kind == "batch" else ","
        message = f"{kind} {name} {has} {account.live} chips{separator} {allows} {account.limit}"
        return [Violation(code, message, account.events())]
    if how == "gone":
        message = (
            f"{kind} {name} {has} {account.total} chips, {allows} {account.limit}: {account.live} on live lines and "
            f"{account.total - account.live} on lines released after they shipped, whose chips were given again "
            f"while gone (shipped lines: {account.named_gone()})"
        )
        return [Violation(f"{code}_by_shipped_chips", message, account.events())]
    return []


def _limit(event: Event | None, field_name: str) -> _Account:
    return _Account(None if event is None else getattr(event.payload, field_name), event)
