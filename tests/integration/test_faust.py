"""A faust-streaming worker (subprocess) consumes one topic and produces to another on the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from services.common.kafka_auth import kafka_python_options

APP = Path(__file__).with_name("faust_echo_app.py")
RESULT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError as exc:
        return f"<no log: {exc}>"


def test_faust_agent_consumes_and_produces(
    kafka_bootstrap: str, make_topic: Callable[..., str], kafka_admin: KafkaAdminClient, tmp_path: Path
) -> None:
    source = make_topic("faust-in")
    sink = make_topic("faust-out")
    app_id = f"h200-test-faust-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "H200_FAUST_BOOTSTRAP": kafka_bootstrap,
        "H200_FAUST_APP_ID": app_id,
        "H200_FAUST_DATADIR": str(tmp_path / "data"),
        "H200_FAUST_IN_TOPIC": source,
        "H200_FAUST_OUT_TOPIC": sink,
        "PYTHONUNBUFFERED": "1",
    }
    messages = [(f"k{i}".encode(), f"order-{i}-buy".encode()) for i in range(20)]

    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, str(APP), "worker", "--without-web", "-l", "warn"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        producer = KafkaProducer(
            **kafka_python_options(), bootstrap_servers=kafka_bootstrap, acks="all", client_id="h200-test-faust-in"
        )
        try:
            for k, v in messages:
                producer.send(source, key=k, value=v)
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=10)

        consumer = KafkaConsumer(
            **kafka_python_options(),
            bootstrap_servers=kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="h200-test-faust-out",
        )
        received: list[tuple[bytes, bytes]] = []
        try:
            tp = TopicPartition(sink, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + RESULT_TIMEOUT_S
            while len(received) < len(messages):
                assert worker.poll() is None, f"faust worker exited with {worker.returncode}:\n{_tail(log_path)}"
                assert time.monotonic() < deadline, (
                    f"got {len(received)}/{len(messages)} results in {RESULT_TIMEOUT_S}s; worker log:\n"
                    f"{_tail(log_path)}"
                )
                for batch in consumer.poll(timeout_ms=500).values():
                    received.extend((r.key, r.value) for r in batch)
        finally:
            consumer.close()

        assert received == [(k, v.upper()) for k, v in messages]
        # `faust worker` defaults to --with-web, overriding web_enabled=False (and binds 0.0.0.0:6066)
        assert "| web " not in log_path.read_text(errors="replace"), _tail(log_path)
        # faust created its internal topic through the admin API although the broker has auto-create off
        topics = set(kafka_admin.list_topics())
        assert f"{app_id}-__assignor-__leader" in topics, sorted(t for t in topics if t.startswith(app_id))
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
                raise AssertionError(f"faust worker ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{_tail(log_path)}") from exc
    assert worker.returncode == 0, f"worker exit code {worker.returncode}:\n{_tail(log_path)}"
