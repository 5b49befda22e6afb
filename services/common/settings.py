"""Typed settings, read once: the cluster's (prefix H200_) and each service's own (prefix H200_<SERVICE>_)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.codec import MAX_MESSAGE_BYTES


def redis_url_with_password(url: str, secrets_dir: Path) -> str:
    """`url` with its user's password from `secrets_dir` when it names a user but no password (else unchanged)."""
    parts = urlsplit(url)
    if not parts.username or parts.password is not None:
        return url
    secret = secrets_dir / unquote(parts.username)
    if not secret.is_file():
        return url  # Redis then refuses the login and the client says so
    password = quote(secret.read_text(encoding="utf-8").strip(), safe="")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


class ClusterSettings(BaseSettings):
    """Where Kafka and Redis are: shared by every process of the system."""

    model_config = SettingsConfigDict(env_prefix="H200_", extra="ignore", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_message_bytes: int = Field(MAX_MESSAGE_BYTES, gt=0)
    # The catalogue's topics are created with this many replicas and refuse a write (acks=all) that fewer than
    # min_insync_replicas of them hold: 1 and 1 on one broker, 3 and 2 on the three-broker cluster.
    replication_factor: int = Field(1, ge=1)
    min_insync_replicas: int = Field(1, ge=1)
    # Who this process is to Kafka (docs/security.md). The broker refuses a client that does not authenticate; the
    # principal's ACLs decide what it may read and write. Without H200_KAFKA_PASSWORD the password is read from
    # <kafka_secrets_dir>/<kafka_username>, where `h200 access secrets` writes one per principal.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"] = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_username: str | None = Field(None, min_length=1)
    kafka_password: SecretStr | None = None
    kafka_secrets_dir: Path = Path(".run/secrets/kafka")
    # Redis has no anonymous user: H200_REDIS_URL names one (redis://reader@host:port/0); without a password in the
    # URL it is read from <redis_secrets_dir>/<user> (admin, projector, reader; docs/security.md).
    redis_secrets_dir: Path = Path(".run/secrets/redis")
    # The HTTP API's bearer tokens: <api_secrets_dir>/buyers/<buyer> per buyer system, and <api_secrets_dir>/auditor.
    api_secrets_dir: Path = Path(".run/secrets/api")
    # The buyers whose systems have their own principal (upstream-<buyer>) and submission topic
    # (h200.submissions.<buyer>); intake reads those topics. JSON: H200_BUYER_SYSTEMS='["tencent","bytedance"]'.
    buyer_systems: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], ...] = ()
    # H200_LOG_FORMAT: the workers' logs as one JSON object a line (compose) or faust's text (services.common.logs).
    log_format: Literal["json", "text"] = "text"

    @model_validator(mode="after")
    def _redis_login(self) -> Self:
        object.__setattr__(self, "redis_url", redis_url_with_password(self.redis_url, self.redis_secrets_dir))
        return self

    @model_validator(mode="after")
    def _replicas_can_be_in_sync(self) -> Self:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"H200_MIN_INSYNC_REPLICAS={self.min_insync_replicas} exceeds H200_REPLICATION_FACTOR="
                f"{self.replication_factor}: every write would be refused"
            )
        return self


class WorkerSettings(BaseSettings):
    """One worker process of a service; read with `WorkerSettings.for_service(name)`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    datadir: Path = Path(".run/workers")
    web_port: int = Field(0, ge=0, le=65535, description="0 disables the worker's HTTP endpoint")
    # A killed worker's partitions wait this long before another worker takes them (faust's default is 60 s).
    session_timeout_s: float = Field(10.0, gt=0)
    # Static membership (KIP-345): a worker restarted under the same id within session_timeout_s gets its partitions
    # back at once, with no rebalance; one that does not come back keeps them unread until the session expires,
    # even after a clean stop. It must name a slot (e.g. allocation-1), never a process: unset, membership is dynamic.
    group_instance_id: str | None = Field(None, min_length=1)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    # A partition's state is written to <datadir>/<service>/snapshots every this many records it handles, so a
    # rebuild folds only what came after (0: never; every rebuild then folds the journal from the start).
    snapshot_every: int = Field(5_000, ge=0)
    # ... but no more often than keeps their writing to this share of the worker's time (a snapshot costs as much as
    # the state is large: 1 s for 15,000 held orders); 0: every snapshot_every records, whatever they cost.
    snapshot_share: float = Field(0.05, ge=0, lt=1)
    # A snapshot is pickled and written by a forked child (Linux), so the loop waits only for the fork; false
    # pickles it on the loop. The child's pages are copies on write: while it runs, memory may grow by up to the
    # size of the state it writes (the pages the worker changes meanwhile, and those the pickler's counts touch).
    snapshot_fork: bool = True
    commit_interval_s: float = Field(1.0, gt=0)
    # The cycle collector's thresholds (gc.set_threshold). Python's (700, 10, 10) run a full collection, which walks
    # every object a partition's state holds, every ~70,000 allocations: 37% of an approval worker's time with
    # 15,000 held orders in one partition. Reference counting frees a state's objects (it has no cycles); the
    # collector is there for the cycles asyncio and the clients leave, which these thresholds still reclaim.
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 100)
    # The Kafka clients' metadata is refreshed at least this often, so a stale partition leader heals by itself.
    metadata_max_age_s: float = Field(30.0, gt=0)
    # An agent takes what has arrived in batches of up to batch_max records, waiting at most batch_within_s for a
    # batch to fill: one journal write and one round of sends per batch instead of per record (#9).
    batch_max: int = Field(500, ge=1)
    batch_within_s: float = Field(0.005, gt=0)
    # Publishing waits out a failure that passes: first send_retry_s, doubling up to send_retry_max_s; an
    # attempt with no acknowledgement after send_timeout_s counts as failed.
    send_retry_s: float = Field(0.1, gt=0)
    send_retry_max_s: float = Field(30.0, gt=0)
    send_timeout_s: float = Field(60.0, gt=0)
    # A worker that commits nothing for stall_after_s while records wait on a partition it holds exits to be
    # restarted (services.common.stall_watch: faust can come out of a rebalance and never fetch again); 0: never.
    stall_after_s: float = Field(45.0, ge=0)
    # A wake-up of the event loop this late is logged as the loop having been blocked (services.common.loop_watch);
    # every lateness is counted in h200_event_loop_blocked_seconds whatever this is.
    loop_warn_after_s: float = Field(1.0, gt=0)

    @classmethod
    def for_service(cls, service: str) -> WorkerSettings:
        return cls(_env_prefix=f"H200_{service.upper()}_")
