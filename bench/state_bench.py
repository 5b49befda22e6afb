"""What a core's state holds as the log grows: approval and allocation, each folded in-process over a lifecycle
history (orders approved as they come, each done with CLOSE_AFTER orders later), beside the same core that never
forgets (its list of orders done with cleared before every step). Intake and fulfilment beside them, which keep
every (buyer, reference) and every shipment, compactly: a resend or a step reported again however late must get
the same answer.

The size is what a restart holds: the state's snapshot (pickle, as services.common.snapshots writes it) loaded
again under tracemalloc, so objects are counted as Python holds them, not as they are serialised.

`make bench-state` (ORDERS=n: the largest size, default 40,000; the sizes are n/8, n/2 and n).
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import pickle
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from bench import workloads
from schemas.allocation import ChipsAllocated
from schemas.approval import OrderApproved
from schemas.base import PolicyRef
from schemas.codec import decode
from schemas.envelope import Envelope, derive_id, make_envelope
from schemas.fulfilment import FulfilmentStepRecorded, RecordFulfilmentStep
from schemas.intake import SubmitOrder
from schemas.policy import AllocationPolicySet
from schemas.samples import sample_payloads
from schemas.supply import BatchManufactured
from services.allocation import domain as allocation
from services.approval import domain as approval
from services.common.decider import step
from services.fulfilment import domain as fulfilment
from services.intake import domain as intake

EPOCH = workloads.EPOCH
POOL = "h200"
CHIPS = workloads.ORDER_CHIPS
ORDERS_A_BATCH = 100
"""A batch of 10,000 chips serves 100 orders of 100: batches, which the book keeps, come a hundred times less often."""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def held_bytes(state: Any) -> int:
    """Bytes Python holds for the state as a restart loads it from its snapshot."""
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        loaded = pickle.loads(data)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del loaded
    return held


def _envelope(payload: Any, n: int, kind: str, producer: str) -> Envelope[Any]:
    at = EPOCH + timedelta(seconds=n)
    return make_envelope(
        payload, key=POOL, producer=producer, occurred_at=at, message_id=derive_id("bench-state", kind, n)
    )


def approval_inputs(orders: int) -> Iterator[Envelope[Any]]:
    records = itertools.chain(workloads.clearing_policies(), workloads.lifecycle(0, orders))
    return (decode(value) for _, value in records)


def allocation_history(orders: int) -> Iterator[tuple[Envelope[Any], Callable[[list[Any]], None] | None]]:
    """For order n: its approval (after a batch every ORDERS_A_BATCH orders) and the delivery of order n - CLOSE_AFTER's
    line."""
    rule = AllocationPolicySet(
        policy_id=f"allocation/{POOL}",
        revision=1,
        effective_at=EPOCH,
        issued_by="ops",
        pool_id=POOL,
        rule="first_approved_first_served",
    )
    yield _envelope(rule, 0, "rule", "ops"), None
    lines: dict[int, Any] = {}
    for n in range(orders):
        if n % ORDERS_A_BATCH == 0:
            batch = BatchManufactured(
                batch_id=f"B{n // ORDERS_A_BATCH}",
                pool_id=POOL,
                quantity=CHIPS * ORDERS_A_BATCH,
                site="TSMC Fab 18, Tainan",
                ready_at=EPOCH,
            )
            yield _envelope(batch, n, "batch", "supply"), None
        approved = OrderApproved(
            order_id=derive_id("bench-state-order", n),
            buyer_id=workloads.buyer_of(n),
            pool_id=POOL,
            policy_refs=(PolicyRef(policy_id="cn-use-rules", revision=1),),
            cause_event_id=derive_id("bench-state-cause", n),
            decided_at=EPOCH + timedelta(seconds=n),
            requested_quantity=CHIPS,
            approved_quantity=CHIPS,
            licence_id="BIS-H200-0001",
            tranche_id="T1",
        )
        yield _envelope(approved, n, "approved", "approval"), functools.partial(_remember_line, lines, n)
        if n >= workloads.CLOSE_AFTER:
            line = lines.pop(n - workloads.CLOSE_AFTER)
            fields = line.model_dump(include={"allocation_id", "pool_id", "order_id", "buyer_id", "batch_id"})
            done = FulfilmentStepRecorded(
                **fields,
                quantity=line.quantity,
                step="delivered",
                cause_event_id=derive_id("bench-state-step", n),
                at=EPOCH + timedelta(seconds=n),
            )
            yield _envelope(done, n, "delivered", "fulfilment"), None


def _remember_line(lines: dict[int, Any], n: int, outputs: list[Any]) -> None:
    lines[n] = outputs[0].payload  # the order's one ChipsAllocated (its batch has room for it)


def run_allocation(orders: int, forget: bool) -> tuple[int, float]:
    state, began = allocation.initial_state(), time.monotonic()
    for message, then in allocation_history(orders):
        if not forget:
            for pool in state.pools.values():
                pool.done_with.clear()
        state, outputs = step(allocation, state, message)
        if then is not None:
            then(outputs)
    return held_bytes(state), time.monotonic() - began


def run_approval(orders: int, forget: bool) -> tuple[int, float]:
    state, began = approval.initial_state(), time.monotonic()
    for message in approval_inputs(orders):
        if not forget:
            state.done_with.clear()
        state, _ = step(approval, state, message)
    return held_bytes(state), time.monotonic() - began


def run_fulfilment(orders: int, forget: bool) -> tuple[int, float]:
    del forget  # fulfilment keeps every shipment (see the module's docstring)
    state, began = fulfilment.initial_state(), time.monotonic()
    for n in range(orders):
        line = ChipsAllocated(
            allocation_id=derive_id("bench-state-line", n),
            pool_id=POOL,
            order_id=derive_id("bench-state-order", n),
            buyer_id=workloads.buyer_of(n),
            batch_id=f"B{n}",
            quantity=CHIPS,
            rule="first_approved_first_served",
            policy_ref=None,
            cause_event_id=derive_id("bench-state-cause", n),
            allocated_at=EPOCH + timedelta(seconds=n),
        )
        state, _ = step(fulfilment, state, _envelope(line, n, "line", "allocation"))
        for k, name in enumerate(STEPS):
            at = EPOCH + timedelta(seconds=n, milliseconds=k + 1)
            command = RecordFulfilmentStep(allocation_id=line.allocation_id, step=name, at=at)
            state, _ = step(fulfilment, state, _envelope(command, n * len(STEPS) + k, "step", "logistics"))
    return held_bytes(state), time.monotonic() - began


STEPS = ("packed", "shipped", "customs_cleared", "delivered")


def run_intake(orders: int, forget: bool) -> tuple[int, float]:
    del forget  # intake keeps every (buyer, reference): a reference is bound to its first terms for good
    sample = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
    state, began = intake.initial_state(), time.monotonic()
    for n in range(orders):
        at = EPOCH + timedelta(seconds=n)
        command = sample.model_copy(
            update={"buyer_id": workloads.buyer_of(n), "upstream_ref": f"BENCH-PO-{n}", "submitted_at": at}
        )
        envelope = make_envelope(
            command, key=command.buyer_id, producer="buyer", occurred_at=at, message_id=derive_id("bench-state", n)
        )
        state, _ = step(intake, state, envelope)
    return held_bytes(state), time.monotonic() - began


CORES: dict[str, Callable[[int, bool], tuple[int, float]]] = {
    "intake": run_intake,
    "approval": run_approval,
    "allocation": run_allocation,
    "fulfilment": run_fulfilment,
}


FORGETTING = ("approval", "allocation")
"""The cores that drop what they are done with; the others keep everything, compactly (their figures twice)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=40_000, help="the largest history, in orders")
    parser.add_argument("--cores", nargs="*", default=list(CORES), choices=list(CORES))
    args = parser.parse_args(argv)
    sizes = sorted({max(args.orders // 8, 1), max(args.orders // 2, 1), args.orders})
    say(f"state a restart holds, by orders in the log ({workloads.CLOSE_AFTER} open at any time)")
    say(f"{'core':<12}{'orders':>9}{'forgets: MB':>13}{'B/order':>9}{'never forgets: MB':>19}{'B/order':>9}")
    for name in args.cores:
        for orders in sizes:
            forgetting, _ = CORES[name](orders, True)
            remembering, _ = CORES[name](orders, False) if name in FORGETTING else (forgetting, 0.0)
            say(
                f"{name:<12}{orders:>9,}{forgetting / 1e6:>13.2f}{forgetting / orders:>9,.0f}"
                f"{remembering / 1e6:>19.2f}{remembering / orders:>9,.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
