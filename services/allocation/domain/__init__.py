"""The order book's pure core: shares a pool's batches among admitted approved orders by the pool's published rule.

A decider (see services.common.decider): `decide` and `evolve` over `AllocationState`, and `time_of`, the
partition's clock, which dates every decision (docs/time.md); standard library and `schemas` only.
"""

from services.allocation.domain.admission import time_of
from services.allocation.domain.decide import decide
from services.allocation.domain.evolve import evolve
from services.allocation.domain.query import AllocationLine, BatchPosition, BookSummary, OrderPosition, book_summary
from services.allocation.domain.state import AllocationState, initial_state

NAME = "allocation"

__all__ = [
    "NAME",
    "AllocationLine",
    "AllocationState",
    "BatchPosition",
    "BookSummary",
    "OrderPosition",
    "book_summary",
    "decide",
    "evolve",
    "initial_state",
    "time_of",
]
