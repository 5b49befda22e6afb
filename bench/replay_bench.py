"""`make bench-replay`: our replay against Kafka's own consumer on the same log of a million events.

Starts an isolated broker (infra/kafka/kafka.sh, own run directory and ports, stopped and purged at the end
whatever happens), writes the log (bench/eventgen.py), then in the same run:
  1. our replay as `h200 replay` runs it (services.replay: read_topics, build_log, fold_ledger), without the
     crc32c package (kafka-python then checks CRC-32C in pure Python) and as shipped, with speed-ups that keep
     every check (a C CRC-32C, cached envelope models, validation straight from the bytes);
  2. org.apache.kafka.tools.ConsumerPerformance from the same Kafka 4.4 jars on the same topics;
then prints both rates and their ratio, and what limits ours (stages timed apart, cProfile of a sample).
Figures, not a timed test.  Usage: python -m bench.replay_bench [--events N] [--sample N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaProducer

from bench import stages
from bench.eventgen import check, generate
from schemas.topics import EVENT_TOPICS
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import admin_client
from services.ops.topics import ensure_topics
from services.replay.kafka_io import record_counts

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "infra/kafka/kafka.sh"


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker(run_dir: Path) -> Iterator[str]:
    """A broker of our own for this run; stopped and its data deleted on the way out, however we leave."""
    import subprocess

    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_RUN_DIR": str(run_dir),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(_free_port()),
    }
    subprocess.run(["bash", str(KAFKA_SH), "stop", "--purge"], env=env, check=False, capture_output=True)
    subprocess.run(["bash", str(KAFKA_SH), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "stop", "--purge"], env=env, check=False)


def produce(bootstrap: str, events: int) -> tuple[int, int]:
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
    for record in generate(events):
        producer.send(record.topic, key=record.key, value=record.value)
        count += 1
        size += len(record.key) + len(record.value)
    producer.flush()
    producer.close()
    return count, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=100_000, help="events profiled and timed stage by stage")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run/bench/kafka", help="the broker's directory")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally` that stops the broker
    say(f"bench-replay: {args.events:,} events; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    say(f"  generator check: {check():,} generated records decode with schemas.codec.decode, ids unique")
    with broker(args.run_dir) as bootstrap:
        with admin_client(bootstrap) as admin:
            ensure_topics(admin)
        started = time.perf_counter()
        count, size = produce(bootstrap, args.events)
        elapsed = time.perf_counter() - started
        say(f"  wrote {count:,} records ({size / 2**20:,.0f} MB) in {elapsed:.1f} s: {count / elapsed:,.0f} records/s")
        counts = record_counts(bootstrap, EVENT_TOPICS)
        say("  topics: " + ", ".join(f"{topic} {n:,}" for topic, n in counts.items() if n))
        total = sum(counts.values())
        stages.report(bootstrap, total, counts, min(args.sample, total), say)
    say(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
