"""The system under test: the four services, the projector and the clock as processes on one broker and one Redis.

`System` starts them with services.ops.supervisor, publishes as ops does, waits on recorded positions
(services.ops.settle) and reads the log back as the auditor does (services.ops.audit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from schemas import builders as scenario
from schemas.base import Message
from schemas.codec import encode
from schemas.envelope import Envelope
from schemas.routing import home_topic
from schemas.topics import BY_NAME
from services.common.kafka_auth import kafka_python_options
from services.common.settings import ClusterSettings
from services.ops import audit
from services.ops.kafka_clients import producer
from services.ops.publish import envelope_for, publish
from services.ops.settle import SERVICE_INPUTS, Lag, measure_lag, wait_until_settled
from services.ops.supervisor import SERVICES, Process, Supervisor
from services.ops.topics import ensure_topics
from services.projector.store import ReadModelStore

StartSystem = Callable[..., "System"]
"""The e2e fixture `start_system(instances=None, env=None) -> System`."""
GROUPS = {service: f"h200-{service}" for service in SERVICES}
STOP_TIMEOUT_S = 15.0


class System:
    def __init__(
        self, bootstrap: str, redis_url: str, log_dir: Path, namespace: str, env: dict[str, str] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.namespace = namespace
        self.log_dir = log_dir
        self.supervisor = Supervisor(
            log_dir,
            env={
                **os.environ,
                "H200_BOOTSTRAP_SERVERS": bootstrap,
                "H200_REDIS_URL": redis_url,
                "H200_PROJECTOR_NAMESPACE": namespace,
                **(env or {}),
            },
        )
        self.admin = KafkaAdminClient(
            **kafka_python_options(), bootstrap_servers=bootstrap, client_id="h200-e2e-admin", request_timeout_ms=30_000
        )
        self.consumer = KafkaConsumer(
            **kafka_python_options(), bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.store = ReadModelStore(self.redis, namespace)
        self.moments: dict[str, datetime] = {}
        """Wall times a test noted between its steps (e.g. for `h200 replay --as-of`)."""
        report = ensure_topics(self.admin)
        assert not report.problems, report.problems

    # --- processes -------------------------------------------------------------------------------------

    def start(self, instances: dict[str, int] | None = None, clock: bool = True) -> None:
        # The scenarios' claims are counted from a T0 long past: intake accepts them only inside a wide window.
        self.publish([scenario.submission_window()])
        self.supervisor.start_all(instances, clock)

    def process(self, name: str) -> Process:
        return self.supervisor.processes[name]

    def restart(self, name: str) -> Process:
        """A new process under the same name (worker id, log file) as the one that died."""
        if name == "projector":
            process = self.supervisor.projector()
        elif name == "clock":
            process = self.supervisor.business_clock()
        else:
            service, _, instance = name.rpartition("-")
            process = self.supervisor.service(service, int(instance))
        process.start()
        return process

    def stop(self) -> None:
        """SIGTERM to every process at once, then SIGKILL to those still running after the timeout."""
        processes = [p for p in self.supervisor.processes.values() if p.alive]
        for process in processes:
            process.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            assert process.popen is not None
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        for client in (self.consumer, self.admin, self.redis):
            with contextlib.suppress(Exception):
                client.close()

    def tails(self, lines: int = 25) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path}):\n{p.tail(lines)}" for p in self.supervisor.processes.values())

    # --- traffic ---------------------------------------------------------------------------------------

    def publish(self, payloads: Iterable[Message], producer: str = "ops") -> list[Envelope[Message]]:
        # As ops: verify holds each fact to the producers the catalogue allows (policies and batches are ops')
        return publish(self.bootstrap, payloads, producer)

    def raw_producer(self) -> KafkaProducer:
        return KafkaProducer(
            **kafka_python_options(), bootstrap_servers=self.bootstrap, acks="all", max_request_size=2_000_000
        )

    # --- waiting on recorded positions -----------------------------------------------------------------

    def lag(self) -> Lag:
        return measure_lag(self.admin, self.consumer, self.store)

    def settle(self, timeout_s: float = 120.0) -> Lag:
        """Until every group and the projector have read every topic to its end; fails if a process died."""

        def alive(_: Lag) -> None:
            self.supervisor.check_alive()

        try:
            return wait_until_settled(self.admin, self.consumer, self.store, timeout_s=timeout_s, progress=alive)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.tails()}") from None

    def committed(self, service: str) -> int:
        """Records of its inputs the service's group has committed, over all partitions."""
        group = GROUPS[service]
        found = self.admin.list_group_offsets(group).get(group, {})
        return sum(max(meta.offset, 0) for tp, meta in found.items() if tp.topic in SERVICE_INPUTS[group])

    def wait_until(self, what: str, condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.supervisor.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout_s:.0f} s: {what}\n{self.tails()}")
            time.sleep(0.1)

    def wait_for_members(self, service: str, count: int, timeout_s: float = 90.0) -> None:
        """Until the service's group is stable with `count` members that each own at least one partition."""

        def ready() -> bool:
            try:
                group = self.admin.describe_groups([GROUPS[service]])[GROUPS[service]]
            except KafkaError:
                return False
            members = group.get("members", [])
            owning = [m for m in members if _assigned_partitions(m)]
            return group.get("group_state") == "Stable" and len(members) == count and len(owning) == count

        self.wait_until(f"{count} members sharing the partitions of {GROUPS[service]}", ready, timeout_s)

    def assignments(self, service: str) -> dict[str, list[tuple[str, int]]]:
        group = self.admin.describe_groups([GROUPS[service]])[GROUPS[service]]
        return {m["member_id"]: _assigned_partitions(m) for m in group.get("members", [])}

    def wait_for_projector(self, topics: Sequence[str], timeout_s: float = 60.0) -> None:
        """Until the projector's recorded positions reach the ends of `topics` (e.g. the dead-letter topics)."""
        partitions = [TopicPartition(t, p) for t in topics for p in range(BY_NAME[t].partitions)]

        def caught_up() -> bool:
            ends = self.consumer.end_offsets(partitions)
            positions = self.store.positions()
            return all(positions.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items())

        self.wait_until(f"the projector read {', '.join(topics)} to the end", caught_up, timeout_s)

    # --- reading back ----------------------------------------------------------------------------------

    def log(self) -> audit.Log:
        return audit.read_log(self.bootstrap)

    def records(self, topic: str, partitions: int | None = None, as_principal: str | None = None) -> list[Any]:
        """Every raw record of a topic (all partitions: the catalogue's count, or `partitions` for a topic outside
        it), oldest first per partition; read as the tests' principal or as `as_principal`."""
        count = BY_NAME[topic].partitions if partitions is None else partitions
        wanted = [TopicPartition(topic, p) for p in range(count)]
        login = kafka_python_options(ClusterSettings(kafka_username=as_principal) if as_principal else None)
        reader = KafkaConsumer(**login, bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            ends = reader.end_offsets(wanted)
            found: list[Any] = []
            for tp in wanted:
                reader.assign([tp])
                reader.seek_to_beginning(tp)
                while reader.position(tp) < ends[tp]:
                    for batch in reader.poll(timeout_ms=1000).values():
                        found.extend(batch)
            return found
        finally:
            reader.close()


class Stream(threading.Thread):
    """Publishes messages in the background, `chunk` at a time with a pause between chunks: traffic that is
    still arriving while a process is killed."""

    def __init__(self, bootstrap: str, payloads: Sequence[Message], chunk: int, pause_s: float) -> None:
        super().__init__(name="e2e-stream", daemon=True)
        self.bootstrap = bootstrap
        self.payloads = list(payloads)
        self.chunk = chunk
        self.pause_s = pause_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with producer(self.bootstrap) as client:
                for start in range(0, len(self.payloads), self.chunk):
                    for payload in self.payloads[start : start + self.chunk]:
                        envelope = envelope_for(payload, "ops")
                        client.send(home_topic(payload).name, key=envelope.key.encode(), value=encode(envelope))
                    client.flush(timeout=30)
                    self.sent = min(start + self.chunk, len(self.payloads))
                    time.sleep(self.pause_s)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout_s: float = 60.0) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), f"the stream did not finish in {timeout_s:.0f} s ({self.sent} sent)"
        if self.error is not None:
            raise self.error
        assert self.sent == len(self.payloads)


def _assigned_partitions(member: dict[str, Any]) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a member as kafka-python's describe_groups decodes its assignment."""
    assignment = member.get("member_assignment") or {}
    return [(entry["topic"], p) for entry in assignment.get("assigned_partitions", []) for p in entry["partitions"]]
