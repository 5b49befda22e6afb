"""The read models survive a restart of Redis as infra/redis/redis.sh runs it (AOF, ACL users, no anonymous user):
what the projector's script wrote is all there again, and its positions agree with it.

Found by the fault drill (tests/chaos): Redis 7.0 replays its AOF as the default user and re-checks each MULTI/EXEC
against that user's permissions; with `user default off` and none, every transaction, so every projector write of
more than one command, was dropped on load while single writes (a position, the generation marker) came back, and
the read model looked current and was not (redis/redis#14541).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from session_logins import redis_login_url

from services.projector.store import Pending, ReadModelStore

REDIS_SH = Path(__file__).resolve().parents[2] / "infra/redis/redis.sh"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "REDIS_PORT": str(port), "REDIS_RUN_DIR": str(tmp_path / "redis")}
    subprocess.run(["bash", str(REDIS_SH), "start"], env=env, check=True, capture_output=True, timeout=60)
    try:
        yield port, env
    finally:
        subprocess.run(["bash", str(REDIS_SH), "stop"], env=env, capture_output=True, timeout=60)


def restart(env: dict[str, str], kill: bool) -> None:
    if kill:  # a crash: the AOF as fsynced (every second), nothing flushed at shutdown
        pid = int(Path(env["REDIS_RUN_DIR"], "redis.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    else:
        subprocess.run(["bash", str(REDIS_SH), "stop"], env=env, check=True, capture_output=True, timeout=60)
    subprocess.run(["bash", str(REDIS_SH), "start"], env=env, check=True, capture_output=True, timeout=60)


def batch(first: int, count: int) -> list[Pending]:
    return [
        Pending("h200.orders", 0, offset, f"event-{offset}", [["HINCRBY", "rs:buyer:b1", "orders", "1"]])
        for offset in range(first, first + count)
    ]


@pytest.mark.parametrize("kill", [False, True], ids=["stopped", "killed"])
def test_what_the_projector_wrote_is_there_after_redis_restarts(server: tuple[int, dict[str, str]], kill: bool) -> None:
    port, env = server
    client = redis.Redis.from_url(redis_login_url(port, "projector"), decode_responses=True)
    store = ReadModelStore(client, "rs")
    assert store.apply(batch(0, 50)) == 50
    generation = store.generation
    if kill:
        time.sleep(1.5)  # appendfsync everysec: what is asked here is the replay of the AOF, not its fsync window
    restart(env, kill)
    client = redis.Redis.from_url(redis_login_url(port, "projector"), decode_responses=True)
    store = ReadModelStore(client, "rs")
    assert store.positions() == {("h200.orders", 0): 50}
    assert client.hget("rs:buyer:b1", "orders") == "50"
    assert store.adopt_generation() == generation
    client.close()


def test_no_client_acts_as_the_default_user(server: tuple[int, dict[str, str]]) -> None:
    port, _ = server
    for url in (f"redis://127.0.0.1:{port}/0", f"redis://default:@127.0.0.1:{port}/0"):
        anonymous = redis.Redis.from_url(url, socket_timeout=5)
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            anonymous.get("rs:buyer:b1")
        anonymous.close()
