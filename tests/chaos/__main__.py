"""python -m tests.chaos [--mode single|cluster|both] [--seed N] [--rounds N] [--only FAULT ...]

Runs the fault drill (`make chaos`): the services as processes on brokers and a Redis of the drill's own, a seeded
flow of orders, batches, shipments and a revocation, faults injected in seeded order; prints a line per fault,
then the table and the findings. Exit 0 when nothing was lost, nothing done twice and every check holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .brokers import REPO
from .drill import Report, run_drill
from .stage import secrets_env

PORTS = {"single": (31092, 31379), "cluster": (31292, 31380)}
"""Client port of the first broker and Redis's port per mode (controllers listen 100 above the brokers)."""


def table(report: Report) -> str:
    head = f"{'fault':<22} {'hit':<45} {'at s':>6} {'held s':>7} {'caught up s':>12} {'settled s':>10} {'log then':>9}"
    head += "  read model"
    rows = [
        f"{r.fault:<22} {r.target:<45} {r.at_s:6.1f} {r.held_s:7.1f} {r.caught_up_s:12.1f} {r.settled_s:10.1f}"
        f" {r.records_then:9,}  {'= log' if not r.read_model else f'WRONG ({len(r.read_model)} differences)'}"
        for r in report.recoveries
    ]
    f = report.findings
    summary = [
        f"records checked: {f.records:,} ({f.events:,} events, {f.repeats:,} written twice under one id and applied "
        f"once); {f.orders} orders, {f.decisions} first decisions, {f.lines} live ledger lines, "
        f"{f.shipment_reports} shipment reports",
        f"lag back to 0 {report.lag_zero_s:.1f} s after the clock stopped; drill took {report.total_s:.0f} s",
        "findings: "
        + (
            "0 lost, 0 twice, every invariant holds, read model = replay of the log"
            if f.ok
            else "FAILED\n  " + "\n  ".join(f.problems)
        ),
    ]
    return "\n".join([f"== {report.mode} (seed {report.seed})", head, "-" * len(head), *rows, *summary])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("single", "cluster", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the mode's faults")
    parser.add_argument("--only", nargs="*", default=(), help="only these faults (names as printed)")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run/chaos")
    parser.add_argument("--kafka-port", type=int, help="first broker's client port (default per mode)")
    parser.add_argument("--redis-port", type=int)
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    os.environ.update(secrets_env(run_dir))
    os.environ.pop("H200_KAFKA_PASSWORD", None)
    failed = False
    for mode in ("single", "cluster") if args.mode == "both" else (args.mode,):
        kafka_port, redis_port = PORTS[mode]
        print(f"\n== fault drill on {mode} (seed {args.seed}, {args.rounds} round(s)): faults as they hit", flush=True)
        report = run_drill(
            mode,
            args.seed,
            args.rounds,
            run_dir / mode,
            args.kafka_port or kafka_port,
            args.redis_port or redis_port,
            tuple(args.only),
        )
        print("\n" + table(report), flush=True)
        failed |= not report.findings.ok or any(r.read_model for r in report.recoveries)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
