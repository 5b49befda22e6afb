"""The system a drill runs: its brokers and Redis (brokers.py), the four services, the projector and the clock as
processes under the supervisor with restarts on (services.ops.supervisor), and the admin's clients that read how
far each reader has got (services.ops.settle).

Every client here logs in as the admin, every process as its own principal (SCRAM; ACLs from the catalogue), with
passwords generated into the drill's own run directory; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from services.common.kafka_auth import kafka_python_options
from services.ops.settle import ALL_TOPICS, SERVICE_INPUTS, Lag, _ends, lag_behind, positions
from services.ops.supervisor import SERVICES, RestartPolicy, Supervisor
from services.ops.topics import Replication, ensure_topics
from services.projector.store import ReadModelStore, current_store

from .brokers import Brokers, RedisServer

ALL_READERS = (*SERVICE_INPUTS, "projector")
SESSION_S = 6.0
"""Each worker's session timeout: the broker's minimum (group.min.session.timeout.ms), so a paused worker is
declared dead soon, as the end-to-end tier does."""
Ends = dict[TopicPartition, int]


def secrets_env(run_dir: Path) -> dict[str, str]:
    """The drill's own password files (kafka.sh and redis.sh generate them) and the admin as who the drill is."""
    return {
        "H200_KAFKA_SECRETS_DIR": str(run_dir / "secrets/kafka"),
        "H200_REDIS_SECRETS_DIR": str(run_dir / "secrets/redis"),
        "H200_API_SECRETS_DIR": str(run_dir / "secrets/api"),
        "H200_KAFKA_USERNAME": "admin",
    }


@dataclass
class Stage:
    mode: str
    run_dir: Path
    brokers: Brokers
    redis: RedisServer
    supervisor: Supervisor = field(init=False)
    _admin: KafkaAdminClient | None = None
    _consumer: KafkaConsumer | None = None
    _redis_client: redis.Redis | None = None

    @classmethod
    def create(cls, mode: str, run_dir: Path, kafka_port: int, redis_port: int) -> Stage:
        nodes = 3 if mode == "cluster" else 1
        env = dict(os.environ)
        brokers = Brokers.create(run_dir / "kafka", kafka_port, nodes, env)
        return cls(mode, run_dir, brokers, RedisServer.create(run_dir / "redis", redis_port, env))

    @property
    def replication(self) -> Replication:
        return Replication(3, 2) if self.mode == "cluster" else Replication(1, 1)

    def service_env(self) -> dict[str, str]:
        fast = {
            f"H200_{service.upper()}_{name}": value
            for service in SERVICES
            for name, value in (("SESSION_TIMEOUT_S", str(SESSION_S)), ("HEARTBEAT_INTERVAL_S", "1"))
        }
        return {
            **os.environ,
            **fast,
            "H200_BOOTSTRAP_SERVERS": self.brokers.bootstrap,
            "H200_REDIS_URL": f"redis://admin@127.0.0.1:{self.redis.port}/0",
            "H200_REPLICATION_FACTOR": str(self.replication.factor),
            "H200_MIN_INSYNC_REPLICAS": str(self.replication.min_insync),
            # Every tick is copied into each inbox and answered by markers; on three brokers sharing two busy cores,
            # allocation fell behind a tick a second (563 records after 7 minutes) and never settled: one in 2 s.
            "H200_CLOCK_INTERVAL_S": os.environ.get("H200_CLOCK_INTERVAL_S", "2" if self.mode == "cluster" else "1"),
        }

    def start(self) -> None:
        self.brokers.start()
        self.redis.start()
        with self.admin_session() as admin:
            report = ensure_topics(admin, replication=self.replication)
        assert not report.problems, report.problems
        self.supervisor = Supervisor(self.run_dir / "logs", env=self.service_env(), restart=RestartPolicy())
        self.supervisor.start_all()
        self.supervisor.keep_running()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.supervisor.stop_all()
        for client in (self._admin, self._consumer, self._redis_client):
            with contextlib.suppress(Exception):
                client.close()  # type: ignore[union-attr]
        for part in (self.redis, self.brokers):
            with contextlib.suppress(Exception):
                part.stop()

    # --- the admin's view ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def admin_session(self):  # type: ignore[no-untyped-def]
        admin = KafkaAdminClient(
            **kafka_python_options(), bootstrap_servers=self.brokers.bootstrap, request_timeout_ms=30_000
        )
        try:
            yield admin
        finally:
            admin.close()

    def redis_client(self) -> redis.Redis:
        if self._redis_client is None:
            password = Path(os.environ["H200_REDIS_SECRETS_DIR"], "admin").read_text().strip()
            self._redis_client = redis.Redis(
                host="127.0.0.1",
                port=self.redis.port,
                username="admin",
                password=password,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=2,
            )
        return self._redis_client

    def store(self) -> ReadModelStore:
        """Resolved at each use: a rebuild may move the read models to another namespace."""
        return current_store(self.redis_client())

    def _clients(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None or self._consumer is None:
            options = {**kafka_python_options(), "bootstrap_servers": self.brokers.bootstrap}
            self._admin = KafkaAdminClient(**options, request_timeout_ms=10_000)
            self._consumer = KafkaConsumer(**options, group_id=None, enable_auto_commit=False)
        return self._admin, self._consumer

    def ends(self) -> Ends:
        return dict(_ends(self._clients()[1], ALL_TOPICS))

    def lag_behind(self, ends: Ends) -> Lag | None:
        """Each reader's lag behind `ends`; None while a broker or Redis does not answer."""
        try:
            return lag_behind(positions(self._clients()[0], self.store()), ends)
        except (KafkaError, redis.RedisError, OSError):
            self._forget_clients()
            return None

    def _forget_clients(self) -> None:
        """kafka-python's admin client keeps asking a coordinator that was killed (the first cluster drill waited
        240 s on it): after a failure the next question goes to new clients, which find the cluster afresh."""
        for client in (self._admin, self._consumer):
            with contextlib.suppress(Exception):
                client.close()  # type: ignore[union-attr]
        self._admin = self._consumer = None

    def lag(self) -> Lag | None:
        try:
            return self.lag_behind(self.ends())
        except (KafkaError, OSError):
            self._forget_clients()
            return None

    def wait_for_groups(self, timeout_s: float = 180.0) -> None:
        """Until every service's group is stable with one member owning partitions: the system is up."""
        deadline = time.monotonic() + timeout_s
        admin = self._clients()[0]
        waiting = list(SERVICE_INPUTS)
        while waiting:
            with contextlib.suppress(KafkaError):
                described = admin.describe_groups(waiting)
                waiting = [g for g in waiting if described[g].get("group_state") != "Stable"]
            if time.monotonic() > deadline:
                raise AssertionError(f"groups not stable in {timeout_s:.0f} s: {waiting}")
            time.sleep(0.5)
