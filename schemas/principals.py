"""Who may do what on Kafka: the principals and their ACLs, derived from the topic catalogue so they cannot drift.

A service may read its inputs (the topics naming it a consumer), write its outputs (the topics naming it a
producer) and use its own consumer group, nothing else. The catalogue's outside parties are split by the kind of
message they send: policies are the authority's, submissions the upstream systems' (and the HTTP API's, a
gateway for them), batches and shipment steps the operator's (ops) and logistics'. The auditor reads every topic
and writes none. The admin is a super user of the broker and is given no ACL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas import fulfilment, supply
from schemas.base import Message
from schemas.topics import (
    CATALOGUE,
    INTAKE_COMMANDS,
    MANAGED,
    POLICY_MESSAGES,
    SERVICES,
    Topic,
    outcome_topic,
    submission_topic,
)

ADMIN = "admin"
AUDITOR = "auditor"
UPSTREAM = "upstream"
SERVICE_PRINCIPALS: tuple[str, ...] = (*SERVICES, "clock", "api")
"""One principal per process kind of the system; each faust worker's group is h200-<service>."""
FAUST_SERVICES: tuple[str, ...] = ("intake", "approval", "allocation", "fulfilment")

OUTSIDE_WRITERS: dict[type[Message], tuple[str, ...]] = {
    **{message: ("authority",) for message in POLICY_MESSAGES},
    **{message: (UPSTREAM, "api") for message in INTAKE_COMMANDS},
    supply.BatchManufactured: ("ops",),
    fulfilment.RecordFulfilmentStep: ("ops", "logistics"),
}
"""Who sends each message the catalogue lets a party outside the services publish."""

READS_BACK: dict[str, tuple[str, ...]] = {
    "clock": ("h200.clock",),  # the last tick, so a restarted clock never ticks backwards
    "authority": ("h200.policy",),  # `h200 allocation-rule` reads the pool's revisions before it writes one
    "ops": ("h200.fulfilment",),  # `h200 fulfil` prints fulfilment's answer to each step
    # the read model counts what each service dead-lettered (services.projector.letters)
    "projector": tuple(topic.name for topic in CATALOGUE if topic.dead_letter and topic.name != "h200.dlq.projector"),
    # the HTTP API lists, shows and re-drives dead letters for the auditor and the operator (services.api.letters);
    # before re-driving one it looks for the copy a re-drive sent earlier on the topic it writes
    "api": (*(topic.name for topic in CATALOGUE if topic.dead_letter), "h200.intake.commands"),
}
"""What a writer reads back of what it or its peers wrote, beyond the catalogue's consumers."""

PRINCIPALS: tuple[str, ...] = (
    *SERVICE_PRINCIPALS,
    "authority",
    "ops",
    "logistics",
    UPSTREAM,
    AUDITOR,
)
"""Every principal given ACLs (the admin, a super user, is not among them)."""

BULK_READ_GROUP = "h200-replay"
"""The group id of the one client that reads whole topics (services.replay.bulk_read); it never joins it."""
BULK_READERS = (AUDITOR, "api")
"""Who reads topics with it: the auditor (replay, verify, export) and the HTTP API (dead letters)."""

Operation = Literal["READ", "WRITE"]


@dataclass(frozen=True, order=True)
class Grant:
    """Allow `principal` to `operation` the topic or consumer group `resource` (literal names only)."""

    principal: str
    resource_type: Literal["topic", "group"]
    resource: str
    operation: Operation


def writers(topic: Topic) -> frozenset[str]:
    services = {role for role in topic.producers if role in SERVICE_PRINCIPALS}
    if all(role in SERVICE_PRINCIPALS for role in topic.producers):
        return frozenset(services)
    outside = {who for message in topic.messages for who in OUTSIDE_WRITERS.get(message, ())}
    return frozenset(services | outside)


def readers(topic: Topic) -> frozenset[str]:
    named = {role for role in topic.consumers if role in PRINCIPALS}
    back = {who for who, names in READS_BACK.items() if topic.name in names}
    return frozenset(named | back | {AUDITOR})


def grants() -> tuple[Grant, ...]:
    """Every ACL of the system, sorted: topics read and written (a service's journal by that service alone, and
    the auditor), and each faust worker's own group."""
    found: set[Grant] = set()
    for topic in MANAGED:
        found |= {Grant(who, "topic", topic.name, "WRITE") for who in writers(topic)}
        found |= {Grant(who, "topic", topic.name, "READ") for who in readers(topic)}
    found |= {Grant(service, "group", f"h200-{service}", "READ") for service in FAUST_SERVICES}
    # The projector's positions live in Redis; it copies them to its group so that Kafka's tools show its lag.
    found.add(Grant("projector", "group", "h200-projector", "READ"))
    # librdkafka asks for the coordinator of its group even for a consumer that only assigns partitions and commits
    # nothing (services.replay.bulk_read): without READ on that group every read of a record is refused
    found |= {Grant(who, "group", BULK_READ_GROUP, "READ") for who in BULK_READERS}
    return tuple(sorted(found))


def grants_of(principal: str, buyers: tuple[str, ...] = ()) -> tuple[Grant, ...]:
    return tuple(grant for grant in (*grants(), *buyer_grants(buyers)) if grant.principal == principal)


def buyer_principal(buyer_id: str) -> str:
    return f"{UPSTREAM}-{buyer_id}"


def buyer_grants(buyers: tuple[str, ...]) -> tuple[Grant, ...]:
    """Each buyer's system writes its own submission topic and reads its own outcome topic, nothing else; intake
    reads the one and writes the other; the auditor reads both."""
    found = set()
    for buyer in buyers:
        name = submission_topic(buyer).name
        found |= {Grant(buyer_principal(buyer), "topic", name, "WRITE"), Grant("intake", "topic", name, "READ")}
        found.add(Grant(AUDITOR, "topic", name, "READ"))
        answers = outcome_topic(buyer).name
        found |= {Grant(buyer_principal(buyer), "topic", answers, "READ"), Grant("intake", "topic", answers, "WRITE")}
        found.add(Grant(AUDITOR, "topic", answers, "READ"))
    return tuple(sorted(found))
