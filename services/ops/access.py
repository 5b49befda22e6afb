"""Kafka principals on a cluster: their secrets generated once, their SCRAM users and ACLs applied idempotently.

The ACLs are schemas.principals.grants(), derived from the topic catalogue; `apply` also removes any ACL of our
principals the catalogue no longer grants, so what the broker enforces is what the catalogue says.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from schemas.principals import ADMIN, PRINCIPALS, Grant, buyer_grants, buyer_principal, grants

CONTROLLER = "controller"
"""The brokers' own login to the KRaft controller listener (SASL PLAIN; a super user like the admin)."""
ITERATIONS = 8192


@dataclass
class AccessReport:
    users: list[str] = field(default_factory=list)
    added: list[Grant] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def ensure_secrets(directory: Path, names: Iterable[str] = (ADMIN, CONTROLLER, *PRINCIPALS)) -> list[str]:
    """Write a random password for each principal that has none yet (mode 0600); the names of those written."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    written = []
    for name in names:
        path = directory / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(24) + "\n")  # hex: safe inside JAAS and --add-scram option syntax
        written.append(name)
    return written


REDIS_USERS = ("admin", "projector", "reader")


def secret_variable(name: str, system: str = "KAFKA") -> str:
    """The environment variable that may carry a principal's password instead of its file (the compose stack)."""
    return f"H200_{system}_SECRET_{name.upper()}"


def read_secret(directory: Path, name: str) -> str:
    given = os.environ.get(secret_variable(name))
    if given:
        return given
    return (directory / name).read_text(encoding="utf-8").strip()


def _acl(grant: Grant) -> ACL:
    kind = ResourceType.TOPIC if grant.resource_type == "topic" else ResourceType.GROUP
    return ACL(
        principal=f"User:{grant.principal}",
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(kind, grant.resource, ACLResourcePatternType.LITERAL),
    )


def _key(acl: ACL) -> tuple[str, str, str, str, str, str]:
    pattern = acl.resource_pattern
    return (
        acl.principal,
        pattern.resource_type.name,
        pattern.resource_name,
        pattern.pattern_type.name,
        acl.operation.name,
        acl.permission_type.name,
    )


def apply_access(
    admin: KafkaAdminClient,
    directory: Path,
    principals: Iterable[str] = PRINCIPALS,
    wanted: Iterable[Grant] = (),
    buyers: tuple[str, ...] = (),
) -> AccessReport:
    """Upsert each principal's SCRAM-SHA-512 password from `directory`, then make its ACLs exactly `wanted` (by
    default what the catalogue grants, and each buyer system's grants on its own submission topic)."""
    names = (*principals, *(buyer_principal(buyer) for buyer in buyers))
    ensure_secrets(directory, names)
    desired = tuple(wanted) or tuple(g for g in (*grants(), *buyer_grants(buyers)) if g.principal in names)
    report = AccessReport()
    upserts = [
        UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, read_secret(directory, name), ITERATIONS)
        for name in names
    ]
    failures = {user: error for user, error in admin.alter_user_scram_credentials(upserts).items() if error}
    if failures:
        raise RuntimeError(f"the broker refused SCRAM credentials for {failures}: apply them as the admin principal")
    report.users = list(names)
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    present, error = admin.describe_acls(everything)
    if error.errno:
        raise RuntimeError(f"the broker would not list its ACLs ({error}): apply them as the admin principal")
    ours = {f"User:{name}" for name in names}
    want = {_key(_acl(g)): g for g in desired}
    have = {_key(acl): acl for acl in present if acl.principal in ours}
    stale = [acl for key, acl in have.items() if key not in want]
    for acl in stale:
        admin.delete_acls(
            [ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type, acl.resource_pattern)]
        )
        report.removed.append(" ".join(_key(acl)))
    missing = [g for key, g in want.items() if key not in have]
    if missing:
        result = admin.create_acls([_acl(g) for g in missing])
        if result["failed"]:
            raise RuntimeError(f"the broker refused ACLs: {result['failed']}")
        report.added = missing
    return report
