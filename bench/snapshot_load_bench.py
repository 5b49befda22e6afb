"""A snapshot's load, in memory: the peak RSS a worker reaches as it loads the snapshot of a partition whose state
has seen IDS ids (approval's `applied` after a long inbox), streamed from its file (`snapshots.load_file`, what a
worker does) beside the file read whole and then unpickled (`snapshots.loads`, the peer). Each load runs in a fresh
process, so each peak is its own.

What a restart may hold at its peak is what a container's memory limit must allow: the recovery benchmark's peak
RSS grew 64 bytes an inbox record from 1M to 5M records, for ids kept at 16.

`make bench-snapshot-load` (IDS=n, default 5,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from services.approval import domain as approval_core
from services.common.snapshots import FileSnapshots, Snapshot, load_file, loads
from services.domain_kit.seen_ids import SeenIds

INBOX = "h200.approval.inbox"
WAYS = {"streamed from the file": "stream", "read whole (peer)": "whole"}


def peak_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: a child started by a large parent inherits its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark reads peak memory as Linux reports it")


def write_snapshot(directory: Path, ids: int) -> Path:
    """Approval's initial state with `ids` ids applied, held as a live worker holds them (a run it merges into)."""
    spread = 0x9E3779B97F4A7C15  # a step coprime with 2**128: distinct ids spread over the whole space
    run = bytearray(b"".join(sorted(uuid.UUID(int=(n * spread) % (1 << 128)).bytes for n in range(ids))))
    state = approval_core.initial_state()
    state.applied = SeenIds.from_run(run)
    store = FileSnapshots(directory, fork=False)
    asyncio.run(_stored(store, Snapshot(INBOX, 0, ids, 0, "bench", "0" * 64, state)))
    return store.path(INBOX, 0, ids)


async def _stored(store: FileSnapshots, snapshot: Snapshot) -> None:
    await store.capture(snapshot)


def load_once(path: Path, way: str) -> dict[str, float]:
    """In this (fresh) process: the peak before and after loading, and the ids loaded."""
    before = peak_mb()
    snapshot = load_file(path) if way == "stream" else loads(path.read_bytes(), str(path))
    return {"before": before, "loaded": peak_mb(), "ids": len(snapshot.state.applied)}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=5_000_000)
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)  # the child: load this file, print JSON
    parser.add_argument("--way", choices=sorted(WAYS.values()), default="stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        say(json.dumps(load_once(args.load, args.way)))
        return
    with tempfile.TemporaryDirectory() as directory:
        say(f"writing a snapshot of approval's state with {args.ids:,} ids applied ...")
        path = write_snapshot(Path(directory), args.ids)
        size = path.stat().st_size / 1e6
        say(f"  {size:,.1f} MB on disk ({size * 1e6 / max(args.ids, 1):.1f} bytes an id)")
        say(f"{'load':24s} {'baseline MB':>12s} {'peak loaded MB':>15s} {'above baseline (x file)':>24s}")
        for name, way in WAYS.items():
            child = [sys.executable, "-m", "bench.snapshot_load_bench", "--load", str(path), "--way", way]
            figures = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
            if figures["ids"] != args.ids:
                raise SystemExit(f"the {way} load gave {figures['ids']:,} ids, not the {args.ids:,} written")
            above = figures["loaded"] - figures["before"]
            peaks = f"{figures['before']:>12,.0f} {figures['loaded']:>15,.0f}"
            say(f"{name:24s} {peaks} {above:>17,.0f} ({above / size:.1f}x)")


if __name__ == "__main__":
    main()
