"""No batch gives out more chips than it holds, no order receives more than approved, no chip is allocated twice.

Checked as the allocation core wrote its decisions (a pool's allocations and releases share one partition of
h200.allocations). A release gives chips back only if they are still in the warehouse: a line that shipped
(services.replay.shipped) and was then released without a failed delivery keeps counting against its batch and
its order, so its chips given again to another order show as an overdraft naming the shipped lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from schemas.approval import OrderApproved
from schemas.supply import BatchManufactured
from services.replay.reading import Read
from services.replay.rows import Rows, SortedRows, id_int
from services.replay.shipped import Allocated, LineFacts, Released
from services.replay.violations import Violation, ids

SHOWN_LINES = 10
"""Allocations named with a batch or an order that went over its limit: the latest ones."""


class _Limit(NamedTuple):
    """A batch's BatchManufactured or an order's OrderApproved: its id and the chips it allows."""

    event: int
    quantity: int

    @property
    def id(self) -> UUID:
        return UUID(int=self.event)


@dataclass(slots=True)
class _Account:
    """The chips drawn on one batch or given to one order, against what it holds or was approved. One per order of
    the log while the check runs, so slotted, naming its lines by their place in `rows` (LineFacts.decisions) and
    with `gone` made only when a line is (~160 bytes an order's account, from ~640 with two dicts and each line's
    row held)."""

    rows: Rows[Allocated | Released]
    limit: int | None
    limit_event: int | None
    """The id (as an integer) of the event that set the limit: named with the lines when the limit is passed."""
    total: int = 0
    """Live lines plus lines that shipped and were released afterwards: chips that are not in the pool."""
    lines: dict[int, None] | list[int] = field(default_factory=list)
    """Where the live lines are in `rows`, in the order allocated: a list for an order's few lines (64 bytes where
    the smallest dict takes 224), a dict for a batch's many (each removed in one step)."""
    gone: list[int] | None = None
    """Where the lines released after they shipped are in `rows`: their chips left and did not come back."""
    gone_total: int = 0
    overdrawn: bool = False
    overdrawn_by_gone: bool = False

    @property
    def live(self) -> int:
        return self.total - self.gone_total

    def add(self, line: Allocated, index: int) -> str | None:
        """`live` the first time live lines alone go over the limit, `gone` the first time shipped chips count."""
        if isinstance(self.lines, list):
            self.lines.append(index)
        else:
            self.lines[index] = None
        self.total += line.quantity
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

    def remove(self, line: Allocated, index: int, shipped: bool) -> None:
        if isinstance(self.lines, list):
            self.lines.remove(index)
        else:
            del self.lines[index]
        if shipped:
            if self.gone is None:
                self.gone = []
            self.gone.append(index)
            self.gone_total += line.quantity
        else:
            self.total -= line.quantity

    def _shown(self, lines: dict[int, None] | list[int] | None, latest: bool) -> list[Allocated]:
        places = list(lines or ())
        shown = [self.rows[index] for index in (places[-SHOWN_LINES:] if latest else places[:SHOWN_LINES])]
        return [line for line in shown if isinstance(line, Allocated)]  # every place here is an allocation's

    def events(self) -> tuple[str, ...]:
        limit = None if self.limit_event is None else _Limit(self.limit_event, self.limit or 0)
        return ids(limit, *self._shown(self.gone, False), *self._shown(self.lines, True))

    def named_gone(self) -> str:
        return ", ".join(f"{line.allocation_id} ({line.quantity})" for line in self._shown(self.gone, False))


class Chips:
    """Every overdrawn batch, overfilled order, line allocated twice or released wrongly, named by its events. Keeps
    each batch's and each approved order's limit; the lines are LineFacts', read at the end (their shipments are
    on a topic read after them)."""

    def __init__(self, facts: LineFacts) -> None:
        self.facts = facts
        self.holds: dict[str, _Limit] = {}
        self.approvals = SortedRows(40)
        """order id, approval's event id, chips approved (8 bytes): the latest under an order is the one that stands."""

    def see(self, read: Read) -> None:
        if read.inbox:
            return
        match read.envelope.payload:
            case BatchManufactured() as p:
                self.holds[p.batch_id] = _Limit(read.envelope.id.int, p.quantity)
            case OrderApproved() as p:
                self.approvals.add(p.order_id.bytes + read.envelope.id.bytes + p.approved_quantity.to_bytes(8, "big"))

    def approval(self, order: int) -> _Limit | None:
        """The latest approval of the order (its id as an integer), if any."""
        found = self.approvals.under(order.to_bytes(16, "big"))
        if not found:
            return None
        row = found[-1]
        return _Limit(id_int(row[16:32]), int.from_bytes(row[32:40]))

    def _account(self, orders: dict[int, _Account | int], order: int) -> _Account:
        """The order's account, made from its one line if it was kept as that line's place."""
        held = orders[order]
        if isinstance(held, _Account):
            return held
        account = orders[order] = _limit(self.facts.decisions, self.approval(order), [])
        first = self.facts.decisions[held]
        assert isinstance(first, Allocated)
        account.add(first, held)  # within the approval (so kept as a place): reports nothing
        return account

    def violations(self) -> list[Violation]:
        batches: dict[str, _Account] = {}
        orders: dict[int, _Account | int] = {}
        """Per order, its account; or, while it has one line within its approval and nothing released, that
        line's place in `rows` (most orders of a log: ~100 bytes an order, where an account took ~470)."""
        rows = self.facts.decisions
        lines: dict[int, int] = {}
        """Allocation id -> where its line is in `rows`: its row is read again when it is released or named."""
        released: dict[int, Released] = {}
        problems: list[Violation] = []
        for index, e in enumerate(rows):
            place = lines.get(e.allocation)
            line = None if place is None else rows[place]
            if isinstance(e, Released):
                if line is None or e.allocation in released:
                    state = "never allocated" if line is None else "already released"
                    found = ids(line, released.get(e.allocation), e)
                    problems.append(
                        Violation("bad_release", f"allocation {e.allocation_id} released but {state}", found)
                    )
                    continue
                released[e.allocation] = e
                gone = self.facts.shipped_for_good(e.allocation_id)
                assert isinstance(line, Allocated) and place is not None  # `lines` places allocations only
                batches[line.batch_id].remove(line, place, gone)
                self._account(orders, line.order).remove(line, place, gone)
                continue
            if line is not None:
                problems.append(
                    Violation("allocated_twice", f"allocation {e.allocation_id} decided twice", ids(line, e))
                )
                continue
            lines[e.allocation] = index
            batch = batches.get(e.batch_id)
            if batch is None:
                batch = batches[e.batch_id] = _limit(rows, self.holds.get(e.batch_id), {})
            order: _Account | None = None
            if e.order not in orders:
                approval = self.approval(e.order)
                if approval is not None and e.quantity <= approval.quantity:
                    orders[e.order] = index  # one line within its approval: nothing to report yet
                else:
                    order = orders[e.order] = _limit(rows, approval, [])
            else:
                order = self._account(orders, e.order)
            if batch.limit is None:
                message = f"allocation {e.allocation_id} draws on unknown batch {e.batch_id}"
                problems.append(Violation("unknown_batch", message, ids(e)))
            if order is not None and order.limit is None:
                message = f"allocation {e.allocation_id} went to order {e.order_id}, which was never approved"
                problems.append(Violation("order_not_approved", message, ids(e)))
            problems += _overdraft("batch", e.batch_id, batch, batch.add(e, index))
            if order is not None:
                problems += _overdraft("order", e.order_id, order, order.add(e, index))
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


def _limit(rows: Rows[Allocated | Released], event: _Limit | None, lines: dict[int, None] | list[int]) -> _Account:
    if event is None:
        return _Account(rows, None, None, lines=lines)
    return _Account(rows, event.quantity, event.event, lines=lines)
