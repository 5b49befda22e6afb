"""python -m tests.sim --seed N           replay one seed verbosely, then shrink it if it fails
python -m tests.sim --seeds 10000 [--start S] [--steps K] [--jobs J]   search, with progress
python -m tests.sim --scenario NAME     play a named scenario (see tests/sim/scenarios.py) verbosely
"""

from __future__ import annotations

import argparse
import sys

from .schedule import DEFAULT_STEPS, run_seed
from .search import print_progress, report, search


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="replay this seed verbosely and shrink it if it fails")
    parser.add_argument("--seeds", type=int, help="search this many seeds")
    parser.add_argument("--start", type=int, default=0, help="first seed of the search")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="random steps per run (then it settles)")
    parser.add_argument("--jobs", type=int, help="processes (default: one per core)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds to spend shrinking a failure")
    parser.add_argument("--scenario", help="play a named scenario")
    parser.add_argument("--digests", action="store_true", help="with --seeds: print each run's digest, one process")
    args = parser.parse_args(argv)
    if args.scenario:
        from .scenarios import SCENARIOS, play

        if args.scenario not in SCENARIOS:
            parser.error(f"scenarios: {', '.join(SCENARIOS)}")
        result = play(args.scenario, verbose=True)
        print(result.violation or "no violation")
        return 1 if result.violation else 0
    if args.seed is not None:
        result = run_seed(args.seed, args.steps, verbose=True, refold=True)
        print(result.violation or f"seed {args.seed}: no violation")
        if result.violation is None:
            return 0
        print("\nshrinking...", flush=True)
        print(report(args.seed, args.steps, args.budget, verbose=True))
        return 1
    if args.seeds is None:
        parser.error("give --seed, --seeds or --scenario")
    if args.digests:
        for seed in range(args.start, args.start + args.seeds):
            print(seed, run_seed(seed, args.steps).digest())
        return 0
    summary = search(args.seeds, args.start, args.steps, args.jobs, progress=print_progress)
    print(file=sys.stderr)
    print(f"{summary.seeds:,} seeds in {summary.seconds:.1f} s ({summary.seeds / summary.seconds:,.0f} seeds/s)")
    for check, failure in summary.first_by_check().items():
        count = sum(1 for f in summary.failures if f.check == check)
        print(f"\n=== {check}: {count} seed(s), first {failure.seed}")
        print(report(failure.seed, args.steps, args.budget))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
