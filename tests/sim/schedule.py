"""A seeded run: the clock's first tick (settled: the clock runs before the first order), the authorities'
baseline, then at each step one random action (an input from the world, a tick of the clock, a delivery to one
consumer some milliseconds later, a commit, a crash, a producer retry), then everything delivered while the
clock runs on. Delay is simply not being chosen for a while: any interleaving the random choice can draw is a
schedule Kafka allows; business time moves with the inputs and ticks (minutes to hours) and the deliveries.
"""

from __future__ import annotations

import os
from datetime import timedelta
from random import Random

from schemas.routing import home_topic
from schemas.topics import CATALOGUE

from . import deploy
from .actions import Commit, Crash, Deliver, Duplicate, Inject
from .clock import tick
from .cluster import at_ms
from .inputs import Inputs
from .simulation import Result, Simulation
from .topology import Topology, load

DEFAULT_STEPS = 100
BASELINE_SETTLED = 0.85
"""How often the world starts with its baseline policies in force everywhere (else they race the first orders)."""
OTHER_PARTITIONER = 0.3
"""How often an upstream client's partitioner, not our key, picks the partition (where the catalogue allows it)."""
WEIGHTS = {"inject": 16, "tick": 2, "deliver": 68, "commit": 9, "crash": 2, "crash_mid_send": 1, "duplicate": 4}
TICK_EVERY_MIN = (5, 30, 120, 360)
"""Business minutes between a tick and the world's time before it."""
LATENCY_MS = (0, 0, 0, 1, 20, 500, 5000)
"""How long after the previous action a record is delivered (the broker's clock moves on meanwhile)."""
REFOLD_EVERY = max(1, int(os.environ.get("H200_SIM_REFOLD_EVERY", "1")))
"""Every how many seeds a run ends by refolding each inbox with its core (the determinism check, nearly the cost of the
run itself): each seed by default; `make test` refolds one seed in 10 so that CI runs 10,000 seeds (a core that
decides otherwise on a refold does so in many seeds, and --seed N always refolds)."""


def run_seed(seed: int, steps: int = DEFAULT_STEPS, verbose: bool = False, refold: bool | None = None) -> Result:
    topology = deploy.for_seed(seed, load())
    simulation = Simulation(verbose, refold=seed % REFOLD_EVERY == 0 if refold is None else refold, topology=topology)
    rng = Random(seed)
    inputs = Inputs(seed, Random(rng.getrandbits(64)))
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    free = any_partition(simulation.cluster.topology)
    simulation.apply(Inject(tick(inputs.clock)))
    simulation.settle()
    for envelope in inputs.baseline():
        simulation.apply(Inject(envelope))
    if rng.random() < BASELINE_SETTLED:
        simulation.settle()
    for _ in range(steps):
        if simulation.violation is not None:
            return simulation.finish()
        kind = rng.choices(kinds, weights)[0]
        simulation.apply(_action(kind, rng, simulation, inputs, free))
    simulation.run_out()
    return simulation.finish()


def _action(kind: str, rng: Random, simulation: Simulation, inputs: Inputs, free: frozenset[str]) -> object:
    cluster = simulation.cluster
    consumers = cluster.topology.consumers
    if kind == "commit":
        behind = [c for c in consumers if cluster.committed[c] < cluster.position[c]]
        if behind:
            return Commit(rng.choice(behind))
    if kind == "crash":
        return Crash(rng.choice(cluster.topology.services).name)
    if kind == "duplicate":
        written = [(topic, p, len(log)) for topic, logs in cluster.logs.items() for p, log in enumerate(logs) if log]
        if written:
            topic, partition, length = rng.choice(written)
            return Duplicate(topic, partition, rng.randrange(max(0, length - 3), length))
    waiting = simulation.pending()
    # The world's time is never behind the broker's (deliveries move the broker's clock on).
    inputs.clock = max(inputs.clock, at_ms(cluster.now_ms))
    if kind == "tick":
        inputs.clock += timedelta(minutes=rng.choice(TICK_EVERY_MIN))
        return Inject(tick(inputs.clock))
    if kind == "inject" or not waiting:
        facts = simulation.oracle.facts
        lines = [line.payload for line in facts.lines.values()]
        steps = {line.payload.allocation_id: [s for s, *_ in line.steps] for line in facts.lines.values()}
        envelope = inputs.next(lines, steps)
        topic = home_topic(envelope.payload)
        if topic.name in free and rng.random() < OTHER_PARTITIONER:
            return Inject(envelope, rng.randrange(topic.partitions), at=inputs.clock)
        return Inject(envelope, at=inputs.clock)
    consumer = rng.choice(waiting)
    after_ms = rng.choice(LATENCY_MS)
    if kind == "crash_mid_send" and consumer.route is None:
        return Deliver(consumer, publish=rng.randrange(2), after_ms=after_ms)
    return Deliver(consumer, after_ms=after_ms)


def any_partition(topology: Topology) -> frozenset[str]:
    """Topics upstream clients write with their own partitioners, and that a router (never a decider) reads:
    there the partition carries no meaning, so the simulator lets it be anything."""
    inboxes = {service.inbox.name for service in topology.services}
    return frozenset(t.name for t in CATALOGUE if "upstream" in t.producers and t.name not in inboxes)
