"""The Kafka brokers and the Redis server of a drill, as local processes of its own (infra/kafka/kafka.sh and
infra/redis/redis.sh with the drill's ports and run directory), and the signals a fault sends them.

Processes rather than containers: a fault is a signal to a pid the drill owns (SIGKILL, SIGSTOP, SIGCONT), and a
broker is brought back the way an operator does it, with the same script that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.ops.kafka_clients import admin_client

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "infra/kafka/kafka.sh"
REDIS_SH = REPO / "infra/redis/redis.sh"
START_TIMEOUT_S = 240


def _run(script: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # a killed child of ours stays a zombie until reaped; kafka.sh and redis.sh start them under setsid, so
        # they are not our children and vanish at once
        time.sleep(0.1)
    raise RuntimeError(f"pid {pid} still runs {timeout_s:.0f} s after SIGKILL")


@dataclass
class Brokers:
    """One node (`nodes` 1, started with kafka.sh start) or a cluster (kafka.sh cluster-start); node ids 1..n."""

    run_dir: Path
    port: int
    nodes: int
    env: dict[str, str]

    @classmethod
    def create(cls, run_dir: Path, port: int, nodes: int, env: dict[str, str]) -> Brokers:
        own = {
            **env,
            "KAFKA_PYTHON": str(REPO / ".venv/bin/python"),
            "KAFKA_STOP_TIMEOUT": "10",
        }
        if nodes == 1:
            own |= {"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 100), "KAFKA_RUN_DIR": str(run_dir)}
        else:
            own |= {
                "KAFKA_NODES": str(nodes),
                "KAFKA_CLUSTER_PORT": str(port),
                "KAFKA_CLUSTER_CONTROLLER_PORT": str(port + 100),
                "KAFKA_CLUSTER_DIR": str(run_dir),
                "KAFKA_CLUSTER_HEAP_OPTS": env.get("KAFKA_CLUSTER_HEAP_OPTS", "-Xms128m -Xmx384m"),
            }
        return cls(run_dir, port, nodes, own)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.nodes))

    def node_dir(self, node: int) -> Path:
        return self.run_dir if self.nodes == 1 else self.run_dir / f"node-{node}"

    def start(self) -> None:
        """Start every node not running (after a kill: only that one), and wait until all serve."""
        if self.nodes == 1:
            _run(KAFKA_SH, self.env, "start", "--timeout", str(START_TIMEOUT_S))
        else:
            _run(KAFKA_SH, self.env, "cluster-start", "--timeout", str(START_TIMEOUT_S))

    def stop(self) -> None:
        for node in range(1, self.nodes + 1):
            self.signal(node, signal.SIGCONT)  # a paused broker cannot stop
        _run(KAFKA_SH, self.env, "stop" if self.nodes == 1 else "cluster-stop")

    def pid(self, node: int) -> int | None:
        return _pid(self.node_dir(node) / "kafka.pid")

    def signal(self, node: int, signum: int) -> None:
        pid = self.pid(node)
        if pid is not None:
            os.kill(pid, signum)

    def kill(self, node: int) -> None:
        pid = self.pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)

    def partition_leader(self, topic: str, partition: int) -> int:
        with admin_client(self.bootstrap) as admin:
            [described] = admin.describe_topics([topic])
        return int(next(p for p in described["partitions"] if p["partition_index"] == partition)["leader_id"])

    def active_controller(self) -> int:
        """The KRaft quorum's leader: each node records in quorum-state the leader of the latest epoch it knows."""
        best = (-1, 1)
        for node in range(1, self.nodes + 1):
            path = self.node_dir(node) / "data/__cluster_metadata-0/quorum-state"
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if state.get("leaderId", -1) >= 1 and state.get("leaderEpoch", -1) > best[0]:
                best = (int(state["leaderEpoch"]), int(state["leaderId"]))
        return best[1]


@dataclass
class RedisServer:
    run_dir: Path
    port: int
    env: dict[str, str]

    @classmethod
    def create(cls, run_dir: Path, port: int, env: dict[str, str]) -> RedisServer:
        return cls(run_dir, port, {**env, "REDIS_PORT": str(port), "REDIS_RUN_DIR": str(run_dir)})

    def start(self) -> None:
        _run(REDIS_SH, self.env, "start")

    def stop(self) -> None:
        pid = _pid(self.run_dir / "redis.pid")
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        _run(REDIS_SH, self.env, "stop")

    def kill(self) -> None:
        pid = _pid(self.run_dir / "redis.pid")
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)

    def wipe(self) -> None:
        """Its data on disk gone, as a machine replaced or a volume lost: the server comes back empty."""
        shutil.rmtree(self.run_dir / "appendonlydir", ignore_errors=True)
        (self.run_dir / "dump.rdb").unlink(missing_ok=True)
