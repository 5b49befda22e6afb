"""One drill: the system started, then a round per fault (traffic starts, the fault hits while it flows, is held,
healed), each round timed until the fault's readers have read what the log held when it hit, and until the whole
system is settled again. Then the clock is stopped, lag must reach 0, and the findings are checked.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer

from services.common.kafka_auth import kafka_python_options
from services.ops.settle import wait_until_settled

from .faults import Fault, schedule
from .findings import Findings, examine, read_model_now
from .market import Market, Traffic
from .stage import SESSION_S, Stage

CAUGHT_UP_TIMEOUT_S = 240.0
SETTLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Recovery:
    """What one fault did: when it hit (seconds into the drill), how long it was held, and after how many
    seconds from the hit its readers had read everything the log held then, and the system was settled."""

    fault: str
    target: str
    at_s: float
    held_s: float
    caught_up_s: float
    settled_s: float
    records_then: int
    read_model: list[str]
    """Where the read model differed from the log once settled after the fault (empty: it equals the replay)."""


@dataclass(frozen=True)
class Report:
    mode: str
    seed: int
    recoveries: list[Recovery]
    findings: Findings
    lag_zero_s: float
    total_s: float


def run_drill(
    mode: str, seed: int, rounds: int, run_dir: Path, kafka_port: int, redis_port: int, only: tuple[str, ...] = ()
) -> Report:
    shutil.rmtree(run_dir / "kafka", ignore_errors=True)
    shutil.rmtree(run_dir / "redis", ignore_errors=True)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    began = time.monotonic()
    stage = Stage.create(mode, run_dir, kafka_port, redis_port)
    try:
        stage.start()
        stage.wait_for_groups()
        market = Market(seed)
        Traffic(stage.brokers.bootstrap, market.opening(), chunk=50, pause_s=0).run_checked()
        settle(stage)
        faults = schedule(mode, seed, rounds, SESSION_S, only)
        recoveries = []
        for number, fault in enumerate(faults):
            recoveries.append(play_round(stage, market, fault, number, len(faults), began))
            print(_line(recoveries[-1]), flush=True)
        lag_zero_s = stop_the_clock(stage)
        findings = examine(stage, market)
        return Report(mode, seed, recoveries, findings, lag_zero_s, time.monotonic() - began)
    except BaseException:
        print(stage_tails(stage), flush=True)
        raise
    finally:
        stage.stop()


def play_round(stage: Stage, market: Market, fault: Fault, number: int, rounds: int, began: float) -> Recovery:
    traffic = Traffic(stage.brokers.bootstrap, market.round(number, rounds, allocated_lines(stage)))
    traffic.start()
    while traffic.share_sent < 0.3 and traffic.is_alive():  # the fault hits while the round's work flows
        time.sleep(0.1)
    ends = stage.ends()
    hit_at = time.monotonic()
    target, heal = fault.hit(stage)
    time.sleep(fault.hold_s)
    heal()
    held_s = time.monotonic() - hit_at
    readers = fault.readers(stage, target)
    caught_up_s = wait_caught_up(stage, ends, readers, hit_at)
    traffic.finish()
    settle(stage)
    settled_s = time.monotonic() - hit_at
    return Recovery(
        fault.name, target, hit_at - began, held_s, caught_up_s, settled_s, sum(ends.values()), read_model_now(stage)
    )


def wait_caught_up(stage: Stage, ends: dict, readers: tuple[str, ...], since: float) -> float:  # type: ignore[type-arg]
    deadline = time.monotonic() + CAUGHT_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        lag = stage.lag_behind(ends)
        if lag is not None and all(lag.by_reader.get(r, 0) == 0 for r in readers):
            return time.monotonic() - since
        time.sleep(0.25)
    raise AssertionError(
        f"{', '.join(readers)} did not read the log as it stood at the fault within "
        f"{CAUGHT_UP_TIMEOUT_S:.0f} s: {stage.lag_behind(ends)}"
    )


def settle(stage: Stage) -> None:
    with stage.admin_session() as admin:
        consumer = KafkaConsumer(**kafka_python_options(), bootstrap_servers=stage.brokers.bootstrap)
        try:
            wait_until_settled(admin, consumer, stage.store(), timeout_s=SETTLE_TIMEOUT_S)
        finally:
            consumer.close()


def stop_the_clock(stage: Stage) -> float:
    """With the clock still, nothing writes: every reader must come to lag 0 exactly. Seconds until it did."""
    clock = stage.supervisor.processes.pop("clock")  # out of the supervisor's hands first, or it restarts it
    clock.stop()
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        lag = stage.lag()
        if lag is not None and lag.total == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"lag did not come back to 0 with the clock stopped: {stage.lag()}")


def allocated_lines(stage: Stage) -> list[str]:
    """Allocation ids of the live ledger lines as the read model shows them now (shipped in the next round)."""
    try:
        return [line["allocation_id"] for line in stage.store().ledger() if line.get("status") == "allocated"]
    except Exception:
        return []  # Redis away: this round ships nothing new


def stage_tails(stage: Stage) -> str:
    try:
        processes = stage.supervisor.processes.values()
    except AttributeError:
        return ""
    return "\n".join(f"--- {p.name} ({p.log_path}):\n{p.tail(30)}" for p in processes)


def _line(r: Recovery) -> str:
    return (
        f"  {r.fault:<22} {r.target:<45} at {r.at_s:6.1f} s  held {r.held_s:5.1f} s  caught up {r.caught_up_s:5.1f} s"
        f"  settled {r.settled_s:5.1f} s  read model {'= log' if not r.read_model else 'WRONG: ' + r.read_model[0]}"
    )
