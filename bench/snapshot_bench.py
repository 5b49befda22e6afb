"""How long a snapshot holds a worker's event loop: pickled on the loop (the peer, `fork=False`) beside pickled and
written by a forked child (services.common.forked), for one approval partition holding ORDERS held orders.

For each way, RUNS snapshots of the same state: the time `FileSnapshots.capture` held the loop (no record read, no
heartbeat sent meanwhile) and the time until the file was stored.

`make bench-snapshot` (ORDERS=n, default 15,000; RUNS=n, default 3).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from schemas.codec import encode
from schemas.samples import placed_orders
from services.approval import domain as approval_core
from services.common.forked import can_fork
from services.common.journal import MemoryJournal
from services.common.partitions import PartitionedCore
from services.common.records import Record
from services.common.snapshots import FileSnapshots, Snapshot

INBOX = "h200.approval.inbox"


async def _no_history(topic: str, partition: int, until: int, start: int = 0) -> AsyncIterator[Record]:
    held: tuple[Record, ...] = ()  # a new partition: nothing before it
    for record in held:
        yield record


async def held_state(orders: int) -> object:
    """Approval's state after `orders` orders of twelve buyers with no policy: each is held."""
    runner = PartitionedCore(approval_core, _no_history, 1_000_000, journal=MemoryJournal())
    for offset, envelope in enumerate(placed_orders(0, orders, buyers=12, name="bench-order")):
        await runner.handle(Record(INBOX, 0, offset, b"k", encode(envelope)))
    return runner.state_of(INBOX, 0)


async def measure(state: object, orders: int, fork: bool, runs: int) -> tuple[list[float], list[float]]:
    held, stored = [], []
    with tempfile.TemporaryDirectory() as directory:
        store = FileSnapshots(Path(directory), fork=fork)
        for run in range(runs):
            began = time.perf_counter()
            written = store.capture(Snapshot(INBOX, 0, orders + run, 0, "bench", "0" * 64, state))
            held.append(time.perf_counter() - began)
            await written
            stored.append(time.perf_counter() - began)
    return held, stored


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def spread(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:,.1f}" for v in (min(values), statistics.median(values), max(values)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=15_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    say(f"building approval's state of {args.orders:,} held orders ...")
    state = await held_state(args.orders)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"  peak RSS {rss:,.0f} MB")
    ways = [("on the loop (peer)", False)] + ([("forked child", True)] if can_fork() else [])
    say(f"{'snapshot':20s} {'loop held ms min/med/max':>28s} {'stored after ms min/med/max':>32s}")
    for name, fork in ways:
        held, stored = await measure(state, args.orders, fork, args.runs)
        say(f"{name:20s} {spread(held):>28s} {spread(stored):>32s}")
    if not can_fork():
        say("(no forked child on this platform: snapshots are pickled on the loop)")


if __name__ == "__main__":
    asyncio.run(main())
