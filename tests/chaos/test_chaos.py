"""The short fault drill of `make test`: on one broker and one Redis of its own, a service is SIGKILLed, another is
paused beyond its session timeout, Redis is flushed and then wiped, and the broker is SIGKILLed, in seeded order,
while orders, batches and shipments flow; nothing may be lost or done twice, every invariant must hold and the read
model must equal the log replayed (`make chaos` runs every fault, on the three-broker cluster too).

It runs the drill as `python -m tests.chaos` does, in a process of its own: the drill signals process groups and
sets its own logins, which must not leak into this session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHORT = ("SIGKILL service", "SIGSTOP service", "Redis FLUSHALL", "Redis wiped", "SIGKILL broker")
SEED = os.environ.get("H200_CHAOS_SEED", "11")


def free_port(span: int = 1) -> int:
    """A port free on 127.0.0.1 with the `span` - 1 after it and the one 100 above (the controller's) free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        wanted = [*range(first, first + span), first + 100]
        if wanted[-1] > 65535:
            continue
        try:
            for port in wanted:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free ports")


def test_faults_in_seeded_order_lose_nothing_repeat_nothing_and_every_part_heals(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tests.chaos",
        "--mode",
        "single",
        "--seed",
        SEED,
        "--only",
        *SHORT,
        "--run-dir",
        str(tmp_path),
        "--kafka-port",
        str(free_port()),
        "--redis-port",
        str(free_port()),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    print(done.stdout[-6000:])
    assert done.returncode == 0, f"the drill failed (seed {SEED}):\n{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert "0 lost, 0 twice, every invariant holds" in done.stdout
