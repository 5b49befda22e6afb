"""The same log gives the same decisions and the same ledger whatever the wall clock and time zone of the machine
(issue 8, done means): the replay tests' story is decided by the four real cores and folded into its ledger in
processes whose clocks are years apart and whose local time zones differ. Time is data: a core or the ledger that
read the machine's clock, or its zone, would make the hashes differ."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUN = textwrap.dedent(
    """
    import datetime, hashlib, sys, time

    shift = datetime.timedelta(days=float(sys.argv[1]))
    real = datetime.datetime


    class Shifted(real):
        # What every `from datetime import datetime` in this process gets: the machine's clock moved by `shift`.
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + shift

        @classmethod
        def utcnow(cls):
            return real.utcnow() + shift

        @classmethod
        def today(cls):
            return real.today() + shift


    datetime.datetime = Shifted
    wall, wall_ns = time.time, time.time_ns
    time.time = lambda: wall() + shift.total_seconds()
    time.time_ns = lambda: wall_ns() + int(shift.total_seconds() * 1e9)

    from builders_replay import story
    from schemas.codec import encode
    from services.replay.ledger import fold_ledger

    log = story().log()
    decisions = hashlib.sha256(b"".join(encode(envelope) for envelope in log.events)).hexdigest()
    print(len(log.events), decisions, fold_ledger(log.events).ledger_hash, datetime.datetime.now().year)
    """
)


def _replay(shift_days: float, zone: str) -> list[str]:
    env = {**os.environ, "TZ": zone, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "unit")])}
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(shift_days)], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_replay_gives_the_same_decisions_and_ledger_whatever_the_machine_s_clock_and_time_zone() -> None:
    here = _replay(0, "UTC")
    later, earlier = _replay(3653, "Asia/Shanghai"), _replay(-400, "America/Los_Angeles")
    # The shift took: the processes' clocks really were years apart.
    assert int(later[3]) >= int(here[3]) + 9 and int(earlier[3]) <= int(here[3]) - 1
    assert int(here[0]) >= 30, "the story decided too little to prove anything"
    assert later[:3] == here[:3] == earlier[:3]
