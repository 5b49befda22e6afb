"""The system as the simulator runs it, read from the code that ships: each service's core, inbox and routes
from its app module, partitions and keys from the catalogue. Nothing here is a copy of a route or a key, so a
route or message type added to an app or to the catalogue is simulated without a change here.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from schemas.topics import BY_NAME, CATALOGUE, EVENT_TOPICS, Topic
from services.common.worker import Route
from services.ops.supervisor import SERVICES


@dataclass(frozen=True, eq=False)
class Consumer:
    """One agent on one partition: a service's deciding agent on its inbox, or one of its routers on a source.
    Compared by identity: there is one of each per topology (and hashing a Route's types on every step was a
    third of the simulator's time)."""

    index: int
    """Its place in pipeline order: how the scheduler sorts and the trace names it."""
    service: str
    topic: str
    partition: int
    route: Route | None = None
    """None for the deciding agent."""

    @property
    def name(self) -> str:
        role = "decide" if self.route is None else "route"
        return f"{self.service}.{role}[{self.topic}:{self.partition}]"


@dataclass(frozen=True)
class Service:
    name: str
    core: ModuleType
    inbox: Topic
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Topology:
    services: tuple[Service, ...]
    consumers: tuple[Consumer, ...]
    """Deciders and routers of every service, in pipeline order: the drain and the scheduler walk this order."""
    event_topics: tuple[str, ...]

    def service(self, name: str) -> Service:
        return next(service for service in self.services if service.name == name)

    def inbox_of(self, name: str) -> Topic:
        return self.service(name).inbox

    def consumers_of(self, name: str) -> tuple[Consumer, ...]:
        return tuple(consumer for consumer in self.consumers if consumer.service == name)

    def consumer(self, service: str, topic: str, partition: int) -> Consumer:
        return next(c for c in self.consumers if (c.service, c.topic, c.partition) == (service, topic, partition))


def partition_of(key: str, topic: Topic) -> int:
    """A stable partitioner (Kafka's murmur2 would do as well): the same key always lands on the same partition."""
    return zlib.crc32(key.encode()) % topic.partitions


@cache
def load() -> Topology:
    """Import each service's app for its INBOX and ROUTES (nothing connects at import) and its pure core."""
    services = []
    for name in SERVICES:
        app = importlib.import_module(f"services.{name}.app")
        core = importlib.import_module(f"services.{name}.domain")
        services.append(Service(name, core, BY_NAME[app.INBOX], tuple(app.ROUTES)))
    agents: list[tuple[str, str, int, Route | None]] = []
    for service in services:
        for route in service.routes:
            agents += [(service.name, route.source, p, route) for p in range(BY_NAME[route.source].partitions)]
        agents += [(service.name, service.inbox.name, p, None) for p in range(service.inbox.partitions)]
    consumers = tuple(Consumer(index, *agent) for index, agent in enumerate(agents))
    return Topology(tuple(services), consumers, EVENT_TOPICS)


def simulated_topics() -> tuple[Topic, ...]:
    """Every topic but the dead-letter ones (a dead letter is recorded by the simulator as a violation)."""
    return tuple(topic for topic in CATALOGUE if not topic.dead_letter)
