"""Hand-over after a crash: a worker (make_faust_app, the services' settings) SIGKILLed and started again under
the same H200_<SERVICE>_GROUP_INSTANCE_ID gets its partitions back at once (static membership, KIP-345); without
one, the group waits for the dead member's session to expire first.

A long session (30 s) keeps the two cases apart on a loaded machine. Two worker crashes, about a minute and a
half: it runs with `make cluster-test` (H200_CLUSTER_TEST=1), not in `make test`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.kafka_auth import kafka_python_options

pytestmark = pytest.mark.skipif(
    os.environ.get("H200_CLUSTER_TEST") != "1",
    reason="kills and restarts faust workers against a 30 s session (minutes): run it with `make cluster-test`",
)

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("cluster_member_app.py")
SESSION_S = 30.0


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(APP), "worker", "--without-web", "-l", "warn"],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Copies:
    """Reads the worker's output topic from its start."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            **kafka_python_options(), bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.tp = TopicPartition(topic, 0)
        self.consumer.assign([self.tp])
        self.consumer.seek_to_beginning(self.tp)
        self.seen: set[bytes] = set()

    def wait_for(self, value: bytes, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + timeout
        while value not in self.seen:
            assert process.poll() is None, f"the worker exited:\n{log.read_text(errors='replace')[-3000:]}"
            assert time.monotonic() < deadline, f"no copy of {value!r} in {timeout:.0f} s:\n{log.read_text()[-3000:]}"
            for records in self.consumer.poll(timeout_ms=200).values():
                self.seen.update(record.value for record in records)

    def close(self) -> None:
        self.consumer.close()


def crash_and_restart(bootstrap: str, make_topic: Callable[..., str], tmp_path: Path, instance_id: str | None) -> float:
    """Seconds from the SIGKILL of a worker that owns the partition to its successor's first copied record."""
    source, sink = make_topic("handover-in"), make_topic("handover-out")
    service = f"handover{uuid.uuid4().hex[:8]}"  # its own consumer group, h200-<service>
    prefix = f"H200_{service.upper()}_"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(prefix)},
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "H200_BOOTSTRAP_SERVERS": bootstrap,
        "H200_MEMBER_SERVICE": service,
        "H200_MEMBER_IN": source,
        "H200_MEMBER_OUT": sink,
        f"{prefix}WORKER_ID": "w-1",
        f"{prefix}DATADIR": str(tmp_path / "workers"),
        f"{prefix}SESSION_TIMEOUT_S": str(SESSION_S),
    }
    if instance_id:
        env[f"{prefix}GROUP_INSTANCE_ID"] = instance_id
    log = tmp_path / f"worker-{instance_id or 'dynamic'}.log"
    producer = KafkaProducer(**kafka_python_options(), bootstrap_servers=bootstrap, acks="all")
    copies = Copies(bootstrap, sink)
    try:
        with worker(env, log) as first:
            producer.send(source, b"before").get(timeout=30)
            copies.wait_for(b"before", 120, first, log)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = time.monotonic()
        with worker(env, log) as second:
            producer.send(source, b"after").get(timeout=30)
            copies.wait_for(b"after", SESSION_S * 4, second, log)
            return time.monotonic() - killed_at
    finally:
        producer.close(timeout=5)
        copies.close()


def test_a_worker_restarted_under_its_instance_id_resumes_before_its_session_expires(
    kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    static = crash_and_restart(kafka_bootstrap, make_topic, tmp_path, "handover-1")
    dynamic = crash_and_restart(kafka_bootstrap, make_topic, tmp_path, None)
    print(
        f"\nSIGKILL to the next record copied: {static:.1f} s static, {dynamic:.1f} s dynamic (session {SESSION_S} s)"
    )
    assert static < SESSION_S <= dynamic + 1
