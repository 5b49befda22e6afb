"""Starts the services as separate processes, each with its own log, and stops them: for the demo and tests.

`start_all` starts the clock too (services.clock): business time moves while the system runs, as in production.

With a RestartPolicy (the demo), `keep_running()` restarts a process that exits, after a back-off that doubles
from 1 s to 30 s and starts again at 1 s once a process has run for a minute; each restart is logged with the
exit code, and none is made once `stop_all()` was called. Without one (the tests), an exit is for
`check_alive()` to report.

A service whose H200_<SERVICE>_WEB_PORT is set above 0 answers /metrics, /health and /ready on 127.0.0.1 at that
port (instance n at the port + n - 1); the projector does at H200_PROJECTOR_METRICS_PORT. `web_ports(first)`
gives every process a port from `first` on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from services.common.retry import Backoff

SERVICES = ("intake", "approval", "allocation", "fulfilment")
PORTS_PER_SERVICE = 10
"""Room for that many workers of a service in the ports of `web_ports`."""


def as_principal(env: dict[str, str], principal: str) -> dict[str, str]:
    """`env` for a process that logs in to Kafka as `principal`, with its password from H200_KAFKA_SECRETS_DIR, and
    to Redis as its own user if it uses Redis (the caller's own logins, e.g. the admin's, are not passed on)."""
    own = {key: value for key, value in env.items() if key not in ("H200_KAFKA_PASSWORD", "H200_REDIS_URL")}
    login = {"H200_KAFKA_USERNAME": principal}
    redis_user = REDIS_USERS.get(principal)
    if redis_user and env.get("H200_REDIS_URL"):  # a process that uses no Redis is given no Redis login either
        login["H200_REDIS_URL"] = redis_url_as(env["H200_REDIS_URL"], redis_user)
    return {**own, **login}


REDIS_USERS = {"projector": "projector", "api": "reader"}
"""The Redis user of each process that reads or writes Redis: the projector writes the read models, the API reads."""


def redis_url_as(url: str, user: str) -> str:
    """`url` for Redis user `user`, without a password: settings read it from H200_REDIS_SECRETS_DIR."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def web_ports(first: int) -> dict[str, str]:
    """The environment that gives each service the ports from `first + 10 i` on, and the projector `first + 40`."""
    ports = {f"H200_{s.upper()}_WEB_PORT": str(first + PORTS_PER_SERVICE * i) for i, s in enumerate(SERVICES)}
    return {**ports, "H200_PROJECTOR_METRICS_PORT": str(first + PORTS_PER_SERVICE * len(SERVICES))}


log = logging.getLogger("h200.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    first_s: float = 1.0
    max_s: float = 30.0
    reset_after_s: float = 60.0
    """A process that ran this long before it exited is restarted after `first_s` again."""

    def delay(self, restarts: int) -> float:
        """The wait before restart number `restarts + 1` of a run of quick exits."""
        return Backoff(self.first_s, self.max_s).delay(restarts + 1)


@dataclass
class Restarts:
    """One process's run of restarts: when it was started, how many quick exits in a row, when it is due."""

    started_at: float
    count: int = 0
    due_at: float | None = None


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    web_port: int = 0
    """Where it answers /metrics, /health and /ready on 127.0.0.1; 0: nowhere."""

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.web_port}" if self.web_port else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive and self.popen is not None:
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.popen.wait(10)

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code runs."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: dict[str, Process] = field(default_factory=dict)
    restart: RestartPolicy | None = None
    clock: Callable[[], float] = time.monotonic
    restarts: dict[str, Restarts] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _keeper: threading.Thread | None = None

    def service(self, service: str, instance: int = 1) -> Process:
        name, prefix = f"{service}-{instance}", f"H200_{service.upper()}_"
        first_port = int(self.env.get(f"{prefix}WEB_PORT") or 0)
        port = first_port + instance - 1 if first_port > 0 else 0
        env = {
            **as_principal(self.env, service),
            f"{prefix}WORKER_ID": name,
            # Static membership (KIP-345) under the slot's name: a slot restarted after a crash gets its partitions
            # back at once instead of waiting out the dead process's session (7.6 s of a 14.6 s restart, #9).
            f"{prefix}GROUP_INSTANCE_ID": name,
            f"{prefix}DATADIR": str(self.log_dir / "workers"),
            f"{prefix}WEB_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
        # faust's command line starts the web server unless told not to, whatever the app's settings say.
        web = "--with-web" if port else "--without-web"
        command = [sys.executable, "-m", f"services.{service}", "worker", "-l", "info", web]
        process = Process(name, command, self.log_dir / f"{name}.log", env, web_port=port)
        self.processes[name] = process
        return process

    def projector(self) -> Process:
        env = {**as_principal(self.env, "projector"), "PYTHONUNBUFFERED": "1"}
        port = int(env.get("H200_PROJECTOR_METRICS_PORT") or 0)
        command = [sys.executable, "-m", "services.projector"]
        process = Process("projector", command, self.log_dir / "projector.log", env, web_port=port)
        self.processes["projector"] = process
        return process

    def business_clock(self) -> Process:
        """The clock process (services.clock): ticks business time every H200_CLOCK_INTERVAL_S seconds."""
        env = {**as_principal(self.env, "clock"), "PYTHONUNBUFFERED": "1"}
        process = Process("clock", [sys.executable, "-m", "services.clock"], self.log_dir / "clock.log", env)
        self.processes["clock"] = process
        return process

    def http_api(self) -> Process:
        """The HTTP API (services.api) on H200_API_PORT, reading the projector's namespace."""
        env = {**as_principal(self.env, "api"), "PYTHONUNBUFFERED": "1"}
        env.setdefault("H200_NAMESPACE", env.get("H200_PROJECTOR_NAMESPACE", "h200"))
        port = int(env.get("H200_API_PORT") or 0)
        process = Process("api", [sys.executable, "-m", "services.api"], self.log_dir / "api.log", env, web_port=port)
        self.processes["api"] = process
        return process

    def start_all(self, instances: dict[str, int] | None = None, clock: bool = True) -> None:
        """The services, the projector, (unless `clock` is False) the clock, and the HTTP API when H200_API_PORT is
        set; stop_all stops the clock first."""
        for service in SERVICES:
            for instance in range(1, (instances or {}).get(service, 1) + 1):
                self.service(service, instance).start()
        self.projector().start()
        if clock:
            self.business_clock().start()
        if int(self.env.get("H200_API_PORT") or 0):
            self.http_api().start()

    def supervise_once(self) -> None:
        """Schedule the restart of each process found exited, and restart those due (unless stopping)."""
        assert self.restart is not None
        now = self.clock()
        for name, process in list(self.processes.items()):
            if self.stopping.is_set():
                return
            state = self.restarts.setdefault(name, Restarts(started_at=now))
            if process.popen is None or process.alive:
                continue
            if state.due_at is None:
                if now - state.started_at >= self.restart.reset_after_s:
                    state.count = 0
                delay = self.restart.delay(state.count)
                state.due_at = now + delay
                log.warning(
                    "%s exited with code %s after %.0f s; restarting it in %.0f s",
                    name,
                    process.popen.returncode,
                    now - state.started_at,
                    delay,
                )
            elif now >= state.due_at:
                state.count += 1
                log.warning("restarting %s (restart %s in a row)", name, state.count)
                process.start()
                state.started_at, state.due_at = now, None

    def keep_running(self, interval_s: float = 0.5) -> None:
        """Restart exited processes in a background thread until stop_all()."""
        if self.restart is None:
            self.restart = RestartPolicy()

        def loop() -> None:
            while not self.stopping.is_set():
                self.supervise_once()
                self.stopping.wait(interval_s)

        self._keeper = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._keeper.start()

    def check_alive(self) -> None:
        if self.restart is not None:
            return  # an exited process is restarted, not reported
        dead = [p for p in self.processes.values() if p.popen is not None and not p.alive]
        if dead:
            details = "\n".join(
                f"--- {p.name} exited {p.popen.returncode if p.popen else '?'}:\n{p.tail()}" for p in dead
            )
            raise RuntimeError(f"service process(es) died: {', '.join(p.name for p in dead)}\n{details}")

    def stop_all(self) -> None:
        self.stopping.set()
        if self._keeper is not None:
            self._keeper.join(10)
        for process in reversed(list(self.processes.values())):
            process.stop()

    def wait_started(self, seconds: float = 1.0) -> None:
        time.sleep(seconds)
        self.check_alive()
