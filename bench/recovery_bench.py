"""Recovery of a worker killed with a long inbox behind it: three ways side by side, in one run, on one broker.

The approval inbox is filled with about N records of a workload (bench/workloads.py: `lifecycle`, the default,
orders approved and closed as a long-running system sees them; `held`, orders only, all held and open), an
approval worker works through all of them, and is then killed with SIGKILL and started again three times:
  snapshot + tail   what a restart does (the latest snapshot, then the journal's tail)
  journal fold      the snapshots deleted: every record folded from the journal with `evolve`
  decide again      the journal topic emptied too: every record decided again, as rebuilds did before #9
After each start, one new order per inbox partition is published; the figures are the seconds from the start to
the first of them decided and committed (the next decision) and to every partition's (lag 0), so they include the
process start and the group join, which the three share. The worker's peak RSS is printed with each.

`make bench-recovery RECORDS=n WORKLOAD=held|lifecycle` (default 20,000, lifecycle; a snapshot every 1,000
records of a partition). The broker is our
own (infra/kafka/kafka.sh, its own ports and run directory), stopped and deleted at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from bench import workloads
from bench.replay_bench import broker
from bench.stages import peak_rss_mb
from bench.workloads import INBOX, PARTITIONS
from schemas.topics import journal_topic
from services.common.kafka_auth import kafka_python_options
from services.ops.topics import ensure_topics

GROUP = "h200-approval"
WAYS = ("snapshot + tail", "journal fold", "decide again")


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fill(workload: str, records: int) -> tuple[Iterable[tuple[int, bytes]], int, int]:
    """About `records` inbox records of the workload (made as they are sent), how many exactly, and the number of
    the next order."""
    if workload == "held":
        return workloads.held(0, records), records, records
    policies = workloads.clearing_policies()
    orders = max((records - len(policies) + workloads.CLOSE_AFTER) // 2, 1)
    total = len(policies) + workloads.lifecycle_records(orders)
    return itertools.chain(policies, workloads.lifecycle(0, orders)), total, orders


def publish(bootstrap: str, placed: Iterable[tuple[int, bytes]]) -> None:
    producer = KafkaProducer(
        **kafka_python_options(), bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 20
    )
    for partition, value in placed:
        producer.send(INBOX, value=value, key=b"bench", partition=partition)
    producer.flush()
    producer.close()


def committed(admin: KafkaAdminClient) -> int:
    # kafka-python 3 names it list_group_offsets and answers {group: {partition: offset}}.
    try:
        found = admin.list_group_offsets(GROUP).get(GROUP, {})
    except KafkaError as error:
        if not error.retriable:
            raise
        return 0  # a broker just started is still electing or loading the group's coordinator: asked again
    return sum(max(meta.offset, 0) for tp, meta in found.items() if tp.topic == INBOX)


def start_worker(bootstrap: str, run_dir: Path, log: Path, snapshot_every: int) -> subprocess.Popen[bytes]:
    env = {
        "H200_APPROVAL_SNAPSHOT_EVERY": str(snapshot_every),
        **os.environ,
        "H200_BOOTSTRAP_SERVERS": bootstrap,
        "H200_APPROVAL_WORKER_ID": "approval-bench",
        # A restarted slot rejoins under its own id, as the supervisor and compose start workers (KIP-345).
        "H200_APPROVAL_GROUP_INSTANCE_ID": "approval-bench",
        "H200_APPROVAL_DATADIR": str(run_dir / "workers"),
        "H200_APPROVAL_COMMIT_INTERVAL_S": "0.2",
        "H200_KAFKA_USERNAME": os.environ["H200_KAFKA_USERNAME"],
        "PYTHONUNBUFFERED": "1",
    }
    level = os.environ.get("H200_BENCH_WORKER_LOG_LEVEL", "warn")  # info shows the phases of a restart
    command = [sys.executable, "-m", "services.approval", "worker", "-l", level, "--without-web"]
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_committed(admin: KafkaAdminClient, target: int, worker: subprocess.Popen[bytes], what: str) -> None:
    last, began = -1, time.monotonic()
    while (now := committed(admin)) < target:
        if worker.poll() is not None:
            raise SystemExit(f"the approval worker exited ({worker.returncode}) while {what}: see its log")
        if now != last and time.monotonic() - began > 5:
            say(f"  {what}: {now:,} of {target:,} committed")
            began, last = time.monotonic(), now
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument(
        "--workload", choices=("lifecycle", "held"), default="lifecycle", help="bench/workloads.py says what each is"
    )
    parser.add_argument("--snapshot-every", type=int, default=1_000, help="records per partition between snapshots")
    parser.add_argument("--run-dir", type=Path, default=Path(".run/bench/recovery"))
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=WAYS,
        default=list(WAYS),
        help="the restarts to time, in this order (at 5M records the two slow ones take most of an hour)",
    )
    args = parser.parse_args(argv)
    shutil.rmtree(args.run_dir / "workers", ignore_errors=True)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    log = args.run_dir / "approval.log"
    # The bench owns its broker and logs in to it as its admin, worker included (no ACLs to set up).
    os.environ.setdefault("H200_KAFKA_USERNAME", "admin")
    with broker(args.run_dir / "kafka", 0, 0) as bootstrap:
        admin = KafkaAdminClient(**kafka_python_options(), bootstrap_servers=bootstrap, request_timeout_ms=30_000)
        ensure_topics(admin)
        filled, count, next_order = fill(args.workload, args.records)
        say(f"publishing {count:,} records ({args.workload}) into {INBOX} ...")
        publish(bootstrap, filled)
        worker = start_worker(bootstrap, args.run_dir, log, args.snapshot_every)
        began = time.monotonic()
        wait_committed(admin, count, worker, "deciding the inbox")
        live_s = time.monotonic() - began
        say(f"decided {count:,} records live in {live_s:.1f} s ({count / live_s:,.0f} records/s)")
        rows, total = [], count
        for way in [way for way in WAYS if way in args.ways]:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            if way in ("journal fold", "decide again"):
                shutil.rmtree(args.run_dir / "workers" / "approval" / "snapshots", ignore_errors=True)
            if way == "decide again":
                admin.delete_topics([journal_topic("approval")])
                time.sleep(2)
                ensure_topics(admin)
            worker = start_worker(bootstrap, args.run_dir, log, args.snapshot_every)
            began = time.monotonic()
            fresh, next_order = workloads.one_per_partition(args.workload, next_order)
            publish(bootstrap, fresh)
            wait_committed(admin, total + 1, worker, f"recovering ({way})")
            first_s = time.monotonic() - began
            total += PARTITIONS
            wait_committed(admin, total, worker, f"recovering ({way})")
            rows.append((way, first_s, time.monotonic() - began, peak_rss_mb(worker.pid)))
        os.killpg(worker.pid, signal.SIGKILL)
        admin.close()
    say()
    say(
        f"recovery of an approval worker with {count:,} records ({args.workload}) in its inbox ({PARTITIONS} "
        f"partitions, "
        f"a snapshot every {args.snapshot_every:,} records of a partition)"
    )
    say(f"{'rebuild':<18}{'s to next decision':>20}{'s to lag 0':>12}{'peak RSS MB':>14}")
    for way, first_s, seconds, rss in rows:
        say(f"{way:<18}{first_s:>20.1f}{seconds:>12.1f}{rss:>14.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
