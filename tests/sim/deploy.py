"""A deploy of approval half done: some of its partitions still write version 1 markers (counted by every
allocation partition, copied to each), the others lane-only ones. Allocation must keep first-approved-first-served
and hand nothing out after an end while both kinds arrive, and switch to the lane rule only forward (docs/time.md).
A third of the seeds run with such a deploy, chosen from the seed by a stream of its own, so that the schedule of
every seed (and every pinned regression seed) stays what it was."""

from __future__ import annotations

from dataclasses import replace
from random import Random
from typing import Any

from schemas.base import Message
from schemas.clock import ApprovalsPassed
from schemas.envelope import Envelope
from schemas.topics import BY_NAME

from .topology import Topology

SHARE = 1 / 3
"""Of the seeds, how many run approval half deployed."""


class EveryLaneMarkers:
    """Approval's core as it was before version 2 markers, on the source partitions in `old`: the same decisions,
    its markers not lane-only. Everything else is the real core's."""

    def __init__(self, core: Any, old: frozenset[int]) -> None:
        self._core = core
        self.old = old
        self.NAME = core.NAME
        self.VERSION = f"every-lane-markers-on-{sorted(old)}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def decide(self, state: Any, message: Envelope[Any]) -> list[Message]:
        events: list[Message] = self._core.decide(state, message)
        arrival = message.arrival
        if arrival is None or arrival.partition not in self.old:
            return events
        return [
            event.model_copy(update={"lane_only": False}) if isinstance(event, ApprovalsPassed) else event
            for event in events
        ]


def for_seed(seed: int, topology: Topology) -> Topology:
    """The topology a seed runs: for a third of the seeds, approval with some partitions on the old markers."""
    rng = Random(f"deploy/{seed}")
    if rng.random() >= SHARE:
        return topology
    sources = BY_NAME["h200.approval.inbox"].partitions
    old = frozenset(partition for partition in range(sources) if rng.random() < 0.5) or frozenset({0})
    return half_deployed(topology, old)


def half_deployed(topology: Topology, old: frozenset[int]) -> Topology:
    approval = topology.service("approval")
    services = tuple(
        replace(service, core=EveryLaneMarkers(approval.core, old)) if service is approval else service
        for service in topology.services
    )
    return replace(topology, services=services)
