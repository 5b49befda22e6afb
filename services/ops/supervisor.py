"""Starts the services as separate processes, each with its own log, and stops them: for the demo and tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("intake", "approval", "allocation", "fulfilment")


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

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

    def service(self, service: str, instance: int = 1) -> Process:
        name = f"{service}-{instance}"
        env = {
            **self.env,
            f"H200_{service.upper()}_WORKER_ID": name,
            f"H200_{service.upper()}_DATADIR": str(self.log_dir / "workers"),
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", f"services.{service}", "worker", "-l", "info", "--without-web"]
        process = Process(name, command, self.log_dir / f"{name}.log", env)
        self.processes[name] = process
        return process

    def projector(self) -> Process:
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        process = Process(
            "projector", [sys.executable, "-m", "services.projector"], self.log_dir / "projector.log", env
        )
        self.processes["projector"] = process
        return process

    def start_all(self, instances: dict[str, int] | None = None) -> None:
        for service in SERVICES:
            for instance in range(1, (instances or {}).get(service, 1) + 1):
                self.service(service, instance).start()
        self.projector().start()

    def check_alive(self) -> None:
        dead = [p for p in self.processes.values() if p.popen is not None and not p.alive]
        if dead:
            details = "\n".join(
                f"--- {p.name} exited {p.popen.returncode if p.popen else '?'}:\n{p.tail()}" for p in dead
            )
            raise RuntimeError(f"service process(es) died: {', '.join(p.name for p in dead)}\n{details}")

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def wait_started(self, seconds: float = 1.0) -> None:
        time.sleep(seconds)
        self.check_alive()
