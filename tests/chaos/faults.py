"""The faults a drill injects, each with how it is healed: what a crash, a hung process or a lost disk does to a part
of the system, and what an operator (or the part itself) does about it.

A fault names the readers that must catch up for it to count as recovered: the victim's own consumer group, the
projector for Redis, every reader for a broker (every client talks to it).
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from dataclasses import dataclass

from services.ops.supervisor import SERVICES

from .stage import ALL_READERS, Stage

BROKER_SESSION_S = 9.0
"""broker.session.timeout.ms of infra/kafka/server.properties: a paused broker is fenced after this long."""
PAUSE_BEYOND_S = 5.0
"""How much longer than the timeout that would declare it dead a process stays paused."""
WATCHED_PARTITIONS = (("h200.orders", 0), ("h200.allocation.inbox", 0), ("h200.approval.inbox", 0))
"""Partitions whose leader a broker fault hits: each carries every order of some buyers or of the pool."""


@dataclass
class Fault:
    name: str
    hit: Callable[[Stage], tuple[str, Callable[[], None]]]
    """Injects the fault; returns what it hit and how to heal it (called after `hold_s`)."""
    readers: Callable[[Stage, str], tuple[str, ...]]
    hold_s: float


def _everyone(_: Stage, __: str) -> tuple[str, ...]:
    return ALL_READERS


def _projector(_: Stage, __: str) -> tuple[str, ...]:
    return ("projector",)


def _own_group(_: Stage, target: str) -> tuple[str, ...]:
    name = target.split()[0]
    if name == "projector":
        return ("projector",)
    service = name.rpartition("-")[0]
    return (f"h200-{service}",) if service in SERVICES else ALL_READERS  # the clock is read by every service


def broker_killed(node_of: Callable[[Stage], tuple[int, str]]) -> Callable[[Stage], tuple[str, Callable[[], None]]]:
    def hit(stage: Stage) -> tuple[str, Callable[[], None]]:
        node, why = node_of(stage)
        stage.brokers.kill(node)
        return f"node {node} ({why})", stage.brokers.start

    return hit


def broker_paused(node_of: Callable[[Stage], tuple[int, str]]) -> Callable[[Stage], tuple[str, Callable[[], None]]]:
    def hit(stage: Stage) -> tuple[str, Callable[[], None]]:
        node, why = node_of(stage)
        stage.brokers.signal(node, signal.SIGSTOP)
        return f"node {node} ({why})", lambda: stage.brokers.signal(node, signal.SIGCONT)

    return hit


def leader_of(rng: random.Random) -> Callable[[Stage], tuple[int, str]]:
    topic, partition = rng.choice(WATCHED_PARTITIONS)
    return lambda stage: (stage.brokers.partition_leader(topic, partition), f"leader of {topic}[{partition}]")


def controller(stage: Stage) -> tuple[int, str]:
    return stage.brokers.active_controller(), "active controller"


def the_node(_: Stage) -> tuple[int, str]:
    return 1, "the only broker"


def service_killed(name: str) -> Callable[[Stage], tuple[str, Callable[[], None]]]:
    def hit(stage: Stage) -> tuple[str, Callable[[], None]]:
        stage.supervisor.processes[name].kill()
        return f"{name} (restarted by the supervisor)", lambda: None

    return hit


def service_paused(name: str) -> Callable[[Stage], tuple[str, Callable[[], None]]]:
    def hit(stage: Stage) -> tuple[str, Callable[[], None]]:
        process = stage.supervisor.processes[name]
        process.signal(signal.SIGSTOP)
        return name, lambda: process.signal(signal.SIGCONT)

    return hit


def redis_killed(wipe: bool) -> Callable[[Stage], tuple[str, Callable[[], None]]]:
    def hit(stage: Stage) -> tuple[str, Callable[[], None]]:
        stage.redis.kill()
        if wipe:
            stage.redis.wipe()
        return ("redis, data deleted" if wipe else "redis, data kept"), stage.redis.start

    return hit


def redis_flushed(stage: Stage) -> tuple[str, Callable[[], None]]:
    stage.redis_client().flushall()
    return "redis FLUSHALL", lambda: None


def catalogue(mode: str, rng: random.Random, session_s: float) -> list[Fault]:
    """Every fault of a mode once, victims drawn from `rng`: the brokers' on the cluster, Redis's on one node."""
    victim = rng.choice((*SERVICES, "projector", "clock"))
    paused = rng.choice(SERVICES)
    common = [
        Fault("SIGKILL service", service_killed(_process(victim)), _own_group, 0.0),
        Fault("SIGSTOP service", service_paused(_process(paused)), _own_group, session_s + PAUSE_BEYOND_S),
        Fault("Redis FLUSHALL", redis_flushed, _projector, 0.0),
    ]
    if mode == "cluster":
        return [
            *common,
            Fault("SIGKILL leader broker", broker_killed(leader_of(rng)), _everyone, rng.uniform(3, 8)),
            Fault("SIGSTOP leader broker", broker_paused(leader_of(rng)), _everyone, BROKER_SESSION_S + PAUSE_BEYOND_S),
            Fault("SIGKILL controller", broker_killed(controller), _everyone, rng.uniform(3, 8)),
            Fault("SIGSTOP controller", broker_paused(controller), _everyone, BROKER_SESSION_S + PAUSE_BEYOND_S),
            Fault("Redis SIGKILL", redis_killed(wipe=False), _projector, rng.uniform(2, 6)),
        ]
    return [
        *common,
        Fault("Redis SIGKILL", redis_killed(wipe=False), _projector, rng.uniform(2, 6)),
        Fault("Redis wiped", redis_killed(wipe=True), _projector, rng.uniform(2, 6)),
        Fault("SIGKILL broker", broker_killed(the_node), _everyone, rng.uniform(2, 5)),
        Fault("SIGSTOP broker", broker_paused(the_node), _everyone, BROKER_SESSION_S),
    ]


def schedule(mode: str, seed: int, rounds: int, session_s: float, only: tuple[str, ...] = ()) -> list[Fault]:
    """`rounds` passes over the mode's faults (or those named in `only`), each pass in its own seeded order."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    for _ in range(rounds):
        chosen = [f for f in catalogue(mode, rng, session_s) if not only or f.name in only]
        rng.shuffle(chosen)
        faults += chosen
    return faults


def _process(name: str) -> str:
    return name if name in ("projector", "clock") else f"{name}-1"
