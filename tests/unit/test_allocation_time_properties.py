"""First approved, first served whatever the copies' latency: under any arrival order of approvals and batches,
with approval's markers wherever their promise allows, every order ends with what the rule gives it when the
orders are ranked by decided_at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders_allocation import AT, Book, approved, batch, order_ids, passed
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import Envelope
from services.allocation.domain.rules import Claim, Stock, first_approved_first_served

SOURCES = 2
END = 30  # minutes: after every decision

approvals = st.lists(
    st.tuples(st.integers(1, 50), st.integers(1, 10), st.integers(0, SOURCES - 1)),  # quantity, minute, source
    min_size=1,
    max_size=8,
)
batches = st.lists(st.integers(1, 80), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(approvals, batches, st.randoms(use_true_random=False))
def test_orders_are_served_in_decision_order_whatever_order_their_copies_arrive_in(
    wanted: list[tuple[int, int, int]], supply: list[int], rng: Any
) -> None:
    orders = order_ids(len(wanted), seed="latency")
    copies: list[tuple[str, Any]] = [("approval", index) for index in range(len(wanted))]
    copies += [("batch", index) for index in range(len(supply))]
    rng.shuffle(copies)
    book = Book().given(*(passed(AT, source=source, sources=SOURCES) for source in range(SOURCES)))
    arrived: set[int] = set()
    at = 0
    for kind, index in copies:
        at += 1
        if kind == "batch":
            book.given(batch(f"B{index}", supply[index], at=AT + timedelta(minutes=END + at)))
            continue
        quantity, minute, _ = wanted[index]
        book.given(approved(orders[index], quantity, decided_at=AT + timedelta(minutes=minute)))
        arrived.add(index)
        for source in range(SOURCES):
            if rng.random() < 0.5:
                book.given(_marker(source, wanted, arrived))
    book.given(*(_marker(source, wanted, arrived) for source in range(SOURCES)))

    claims = [Claim(orders[i], "bytedance", AT + timedelta(minutes=m), q) for i, (q, m, _) in enumerate(wanted)]
    ideal = first_approved_first_served(claims, [Stock("all", AT, sum(supply))])
    expected = {order_id: 0 for order_id in orders}
    for grant in ideal:
        expected[grant.order_id] += grant.quantity
    assert {order_id: book.allocated_to(order_id) for order_id in orders} == expected


def _marker(source: int, wanted: list[tuple[int, int, int]], arrived: set[int]) -> Envelope[Any]:
    """The latest marker `source` may write: before the earliest of its decisions that has not reached the book."""
    pending = [minute for index, (_, minute, s) in enumerate(wanted) if s == source and index not in arrived]
    return passed(AT + timedelta(minutes=min(pending, default=END)), source=source, sources=SOURCES)
