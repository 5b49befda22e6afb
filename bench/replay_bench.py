"""`make bench-replay`: our replay against Kafka's own consumer on the same log, side by side in one run.

Starts an isolated broker (infra/kafka/kafka.sh, own run directory and ports, stopped and purged at the end
whatever happens), writes the log (bench/eventgen.py), then in the same run:
  1. `h200 replay --format json` as an operator runs it, in a process of its own (its peak RSS is its own), RUNS
     times: events/s, peak RSS, ledger_hash (the same every run);
  2. org.apache.kafka.tools.ConsumerPerformance from the same Kafka 4.4 jars on the same topics, RUNS times;
then prints both rates, their ratio and our peak RSS (min / median / max of the runs); then `h200 verify` of
the same log once (bench/verify_run.py: events/s, peak RSS, what it found); then what limits ours:
each stage timed on its own and a py-spy profile of one more replay; last, ledger checkpoints: a whole replay that
writes one, 1% more events written, and a replay from the checkpoint beside a whole one of the longer log (the
same ledger_hash). Figures, not a timed test.

    python -m bench.replay_bench [--events N] [--runs 3] [--port P --controller-port Q] [--no-profile]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaProducer

from bench import stages
from bench.eventgen import STORY, check, generate, stories
from bench.verify_run import verify_report
from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import admin_client
from services.ops.topics import ensure_topics
from services.replay.bulk_read import record_counts

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "infra/kafka/kafka.sh"


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker(run_dir: Path, port: int, controller_port: int) -> Iterator[str]:
    """A broker of our own for this run; stopped and its data deleted on the way out, however we leave."""
    env = {
        **os.environ,
        "KAFKA_RUN_DIR": str(run_dir),
        "KAFKA_PORT": str(port or _free_port()),
        "KAFKA_CONTROLLER_PORT": str(controller_port or _free_port()),
    }
    subprocess.run(["bash", str(KAFKA_SH), "stop", "--purge"], env=env, check=False, capture_output=True)
    subprocess.run(["bash", str(KAFKA_SH), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{env['KAFKA_PORT']}"
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "stop", "--purge"], env=env, check=False)


def produce(bootstrap: str, events: int, first: int = 0) -> tuple[int, int]:
    """Write the log; returns (records, bytes of keys and values)."""
    producer = KafkaProducer(
        **kafka_python_options(),
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=50,
        batch_size=1 << 20,
        max_request_size=8 << 20,
        compression_type=None,
    )
    count = size = 0
    for record in generate(events, first):
        producer.send(record.topic, key=record.key, value=record.value)
        count += 1
        size += len(record.key) + len(record.value)
    producer.flush()
    producer.close()
    return count, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--sample", type=int, default=100_000, help="events timed stage by stage")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run/bench/kafka", help="the broker's directory")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_KAFKA_PORT", "0")), help="0: any")
    parser.add_argument(
        "--controller-port", type=int, default=int(os.environ.get("BENCH_KAFKA_CONTROLLER_PORT", "0")), help="0: any"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of one more replay")
    args = parser.parse_args(argv)
    os.environ.setdefault("H200_KAFKA_USERNAME", "admin")  # the bench itself and its replays: topics, writing, reading
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` that stops the broker
    say(f"bench-replay: {args.events:,} events; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    say(f"  generator check: {check():,} generated records decode with schemas.codec.decode, ids unique")
    with broker(args.run_dir, args.port, args.controller_port) as bootstrap:
        with admin_client(bootstrap) as admin:
            ensure_topics(admin)
        started = time.perf_counter()
        count, size = produce(bootstrap, args.events)
        elapsed = time.perf_counter() - started
        say(f"  wrote {count:,} records ({size / 2**20:,.0f} MB) in {elapsed:.1f} s: {count / elapsed:,.0f} records/s")
        counts = record_counts(bootstrap, EVENT_TOPICS)
        say("  topics: " + ", ".join(f"{topic} {n:,}" for topic, n in counts.items() if n))
        total = sum(counts.values())
        replayed = stages.report(bootstrap, total, args.runs, say)
        verify_report(bootstrap, replayed, say)
        stages.stages_report(bootstrap, counts, min(args.sample, total), say)
        if not args.no_profile:
            stages.profile_report(bootstrap, say)
        tail = max(args.events // 100, STORY)
        stages.checkpoint_report(
            bootstrap, args.run_dir.parent / "ledger-checkpoints", lambda: produce(bootstrap, tail, stories(count)), say
        )
    say(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
