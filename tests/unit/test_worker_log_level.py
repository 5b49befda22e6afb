"""A worker started at `-l warn` keeps its root logger at WARNING: faust's progress spinner would set it to DEBUG,
so that every debug line of faust and aiokafka is formatted and then dropped (services.common.faust_app.QuietWorker).
The probe runs in a process of its own (faust's set-up replaces the root logger's handlers): it builds approval's
worker as its composition root does, sets up its logging as `worker -l warn` does, and reports the levels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import logging
from services.approval.app import create_app
worker = create_app().Worker(loglevel="warn", redirect_stdouts=False)
worker._setup_logging()  # what `worker -l warn` does first: faust's logging set-up and its root-logger hook
names = ("", "faust.topics", "aiokafka.producer.producer")
print("LEVELS", *[logging.getLogger(name).getEffectiveLevel() for name in names], flush=True)
"""


def test_a_worker_at_warn_keeps_its_loggers_at_warning(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "H200_KAFKA_USERNAME": "approval",
        "H200_KAFKA_PASSWORD": "unused",
        "H200_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "H200_APPROVAL_DATADIR": str(tmp_path),
        "H200_LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    reported = [line for line in done.stdout.splitlines() if "LEVELS" in line]
    assert reported, f"the worker did not report its levels:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert reported[0].split("LEVELS", 1)[1].split() == ["30", "30", "30"]
