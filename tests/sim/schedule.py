"""A seeded run: the authorities' baseline, then at each step one random action (an input from the world, a
delivery to one consumer, a commit, a crash, a producer retry), then everything delivered. Delay is simply
not being chosen for a while: any interleaving the random choice can draw is a schedule Kafka allows.
"""

from __future__ import annotations

from random import Random

from schemas.routing import home_topic
from schemas.topics import CATALOGUE

from .actions import Commit, Crash, Deliver, Duplicate, Inject
from .inputs import Inputs
from .simulation import Result, Simulation
from .topology import Topology

DEFAULT_STEPS = 100
BASELINE_SETTLED = 0.85
"""How often the world starts with its baseline policies in force everywhere (else they race the first orders)."""
OTHER_PARTITIONER = 0.3
"""How often an upstream client's partitioner, not our key, picks the partition (where the catalogue allows it)."""
WEIGHTS = {"inject": 16, "deliver": 68, "commit": 9, "crash": 2, "crash_mid_send": 1, "duplicate": 4}


def run_seed(seed: int, steps: int = DEFAULT_STEPS, verbose: bool = False) -> Result:
    simulation = Simulation(verbose)
    rng = Random(seed)
    inputs = Inputs(seed, Random(rng.getrandbits(64)))
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    free = any_partition(simulation.cluster.topology)
    for envelope in inputs.baseline():
        simulation.apply(Inject(envelope))
    if rng.random() < BASELINE_SETTLED:
        simulation.settle()
    for _ in range(steps):
        if simulation.violation is not None:
            return simulation.finish()
        kind = rng.choices(kinds, weights)[0]
        simulation.apply(_action(kind, rng, simulation, inputs, free))
    simulation.settle()
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
    if kind == "inject" or not waiting:
        facts = simulation.oracle.facts
        lines = [line.payload for line in facts.lines.values()]
        steps = {line.payload.allocation_id: [s for s, *_ in line.steps] for line in facts.lines.values()}
        envelope = inputs.next(lines, steps)
        topic = home_topic(envelope.payload)
        if topic.name in free and rng.random() < OTHER_PARTITIONER:
            return Inject(envelope, rng.randrange(topic.partitions))
        return Inject(envelope)
    consumer = rng.choice(waiting)
    if kind == "crash_mid_send" and consumer.route is None:
        return Deliver(consumer, publish=rng.randrange(2))
    return Deliver(consumer)


def any_partition(topology: Topology) -> frozenset[str]:
    """Topics upstream clients write with their own partitioners, and that a router (never a decider) reads:
    there the partition carries no meaning, so the simulator lets it be anything."""
    inboxes = {service.inbox.name for service in topology.services}
    return frozenset(t.name for t in CATALOGUE if "upstream" in t.producers and t.name not in inboxes)
