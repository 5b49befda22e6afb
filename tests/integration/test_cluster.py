"""The three-broker cluster (infra/kafka/kafka.sh cluster-start): the catalogue is replicated three times with two
in sync, and a SIGKILLed partition leader loses nothing acknowledged, while producing resumes on the new leader.

It starts its own cluster of three JVMs and kills two of them, which takes a few minutes on a small machine: it runs
with `make cluster-test` (H200_CLUSTER_TEST=1), not in `make test`. Ports: H200_TEST_CLUSTER_PORT and
H200_TEST_CLUSTER_CONTROLLER_PORT (three consecutive ports each), else free ones.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError, NotEnoughReplicasError

from schemas.topics import CATALOGUE, Topic
from services.common.kafka_auth import kafka_python_options
from services.ops.kafka_clients import producer
from services.ops.topics import Replication, ensure_topics

pytestmark = pytest.mark.skipif(
    os.environ.get("H200_CLUSTER_TEST") != "1",
    reason="starts and kills a three-broker cluster (minutes): run it with `make cluster-test`",
)

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "infra/kafka/kafka.sh"
NODES = 3
T = TypeVar("T")


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive ports that are free on 127.0.0.1 right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no consecutive free ports found")


@dataclass
class LocalCluster:
    env: dict[str, str]
    directory: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(NODES))

    def kafka_sh(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            ["bash", str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"kafka.sh {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def pid(self, node: int) -> int:
        return int((self.directory / f"node-{node}" / "kafka.pid").read_text().split()[0])

    def kill(self, node: int) -> None:
        os.kill(self.pid(node), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    port = int(os.environ.get("H200_TEST_CLUSTER_PORT") or consecutive_free_ports(NODES))
    controller_port = int(os.environ.get("H200_TEST_CLUSTER_CONTROLLER_PORT") or consecutive_free_ports(NODES))
    directory = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "KAFKA_NODES": str(NODES),
        "KAFKA_CLUSTER_PORT": str(port),
        "KAFKA_CLUSTER_CONTROLLER_PORT": str(controller_port),
        "KAFKA_CLUSTER_DIR": str(directory),
        "KAFKA_CLUSTER_HEAP_OPTS": os.environ.get("KAFKA_CLUSTER_HEAP_OPTS", "-Xms128m -Xmx512m"),
        "KAFKA_PYTHON": sys.executable,
        "KAFKA_STOP_TIMEOUT": "10",
    }
    local = LocalCluster(env, directory, port)
    try:
        local.kafka_sh("cluster-start", "--timeout", "240")
        yield local
    finally:
        subprocess.run(["bash", str(KAFKA_SH), "cluster-stop", "--purge"], env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def admin(cluster: LocalCluster) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(
        **kafka_python_options(),
        bootstrap_servers=cluster.bootstrap,
        client_id="h200-test-cluster",
        request_timeout_ms=30000,
    )
    try:
        yield client
    finally:
        client.close()


def private(topics: tuple[Topic, ...], partitions: int | None = None) -> tuple[Topic, ...]:
    suffix = uuid.uuid4().hex[:8]
    return tuple(
        replace(topic, name=f"{topic.name}.{suffix}", partitions=partitions or topic.partitions) for topic in topics
    )


def partition_state(admin: KafkaAdminClient, name: str, partition: int = 0) -> dict[str, Any]:
    [described] = admin.describe_topics([name])
    return next(p for p in described["partitions"] if p["partition_index"] == partition)


def min_isr(admin: KafkaAdminClient, name: str) -> str:
    found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    return str(found["topic"][name]["min.insync.replicas"]["value"])


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except KafkaError as error:  # a broker is gone or being elected: ask again
            last = error
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s (last error: {last!r})")


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value of partition 0 up to its current end."""
    consumer = KafkaConsumer(
        **kafka_python_options(),
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []
        deadline = time.monotonic() + 120
        while consumer.position(tp) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value for record in records)
        return values
    finally:
        consumer.close()


def unacknowledged_probe(bootstrap: str, topic: str, value: bytes) -> BaseException:
    """Send one record without retries and return why it was not acknowledged (fail if it was)."""
    probe = KafkaProducer(
        **kafka_python_options(),
        bootstrap_servers=bootstrap,
        acks="all",
        retries=0,
        request_timeout_ms=10_000,
        max_block_ms=20_000,
    )
    try:
        probe.send(topic, value).get(timeout=60)
    except KafkaError as error:
        return error
    finally:
        probe.close(timeout=5)
    pytest.fail(f"{value!r} was acknowledged without enough replicas in sync")


def test_the_catalogue_is_created_with_three_replicas_two_in_sync(
    cluster: LocalCluster, admin: KafkaAdminClient
) -> None:
    catalogue = private(CATALOGUE[:3])
    report = ensure_topics(admin, catalogue, Replication(3, 2))
    assert report.problems == [] and report.created == [t.name for t in catalogue]
    for topic in catalogue:
        [described] = admin.describe_topics([topic.name])
        assert {len(p["replica_nodes"]) for p in described["partitions"]} == {3}
        assert min_isr(admin, topic.name) == "2"
    single = ensure_topics(admin, catalogue, Replication(1, 1))
    assert (
        len(single.problems) == 3
        and "has 3 replicas per partition, H200_REPLICATION_FACTOR says 1" in (single.problems[0])
    )


def send_all(out: KafkaProducer, topic: str, values: list[bytes]) -> list[bytes]:
    """Send, then wait for every acknowledgement (the producer retries through an election by itself)."""
    futures = [out.send(topic, value) for value in values]
    for future in futures:
        future.get(timeout=120)
    return values


def test_a_killed_leader_loses_nothing_acknowledged_and_producing_resumes(
    cluster: LocalCluster, admin: KafkaAdminClient
) -> None:
    [topic] = private(CATALOGUE[:1], partitions=1)
    assert ensure_topics(admin, (topic,), Replication(3, 2)).problems == []
    with producer(cluster.bootstrap, request_timeout_ms=10_000) as out:
        acknowledged = send_all(out, topic.name, [f"before-{i}".encode() for i in range(200)])
        leader = partition_state(admin, topic.name)["leader_id"]
        cluster.kill(leader)
        killed_at = time.monotonic()
        acknowledged += send_all(out, topic.name, [b"after-0"])
        resumed_after = time.monotonic() - killed_at
        acknowledged += send_all(out, topic.name, [f"after-{i}".encode() for i in range(1, 200)])

    def isr_of_two() -> dict[str, Any] | None:
        state = partition_state(admin, topic.name)
        return state if len(state["isr_nodes"]) == 2 else None

    state = eventually(isr_of_two, 60, "the killed leader did not leave the ISR")
    assert state["leader_id"] != leader and leader not in state["isr_nodes"]
    print(
        f"\nleader {leader} SIGKILLed: acknowledged again {resumed_after:.1f} s later, leader now {state['leader_id']}"
    )

    # One broker down, two in sync: a topic that wants three in sync refuses the write.
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name, configs={"min.insync.replicas": "3"})])
    eventually(lambda: min_isr(admin, topic.name) == "3", 30, "min.insync.replicas=3 was not applied")

    def refused_for_replicas() -> BaseException | None:
        error = unacknowledged_probe(cluster.bootstrap, topic.name, b"probe-min-isr-3")
        return error if isinstance(error, NotEnoughReplicasError) else None

    refused = eventually(refused_for_replicas, 60, "a write with 2 in sync of min.insync.replicas=3 was not refused")
    print(f"one broker down, min.insync.replicas=3: the write is refused ({type(refused).__name__})")
    assert ensure_topics(admin, (topic,), Replication(3, 2)).reconfigured == [f"{topic.name} (min.insync.replicas)"]
    with producer(cluster.bootstrap, request_timeout_ms=10_000) as out:
        # The leader has applied min.insync.replicas=2 again before the next kill: else that kill could take the
        # controller majority before the leader learnt of the change, and the leader would still refuse for min ISR 3.
        acknowledged += send_all(out, topic.name, [b"restored"])

    # Two of three down: no majority of the controller quorum is left to shrink the ISR, so the leader waits for the
    # dead follower and the write is not acknowledged (it times out).
    follower = next(node for node in state["isr_nodes"] if node != state["leader_id"])
    cluster.kill(follower)
    refused = unacknowledged_probe(cluster.bootstrap, topic.name, b"probe-two-down")
    print(f"two of three brokers down: the write is not acknowledged ({type(refused).__name__}: {refused})")

    started = time.monotonic()
    cluster.kafka_sh("cluster-start", "--timeout", "240")  # starts the two killed nodes again
    with producer(cluster.bootstrap, request_timeout_ms=10_000) as out:
        acknowledged += send_all(out, topic.name, [f"healed-{i}".encode() for i in range(100)])
    print(f"three brokers again and acknowledging {time.monotonic() - started:.1f} s after the restart began")

    counts = Counter(read_all(cluster.bootstrap, topic.name))
    lost = [value for value in acknowledged if counts[value] == 0]
    twice = [value for value in acknowledged if counts[value] > 1]
    assert (len(acknowledged), lost, twice) == (501, [], [])
    print(f"{len(acknowledged)} acknowledged records read back: 0 lost, 0 twice")
