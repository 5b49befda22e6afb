"""`h200 access`: generate the principals' secrets, apply their SCRAM users and ACLs, show what each may do."""

from __future__ import annotations

import argparse
import json
import shlex

from schemas.principals import ADMIN, PRINCIPALS, buyer_principal, grants_of
from schemas.topics import buyer_topics
from services.api.callers import AUDITOR, AUDITOR_VARIABLE, BUYERS, BUYERS_VARIABLE, OPS, OPS_VARIABLE
from services.common.settings import ClusterSettings
from services.ops.access import CONTROLLER, REDIS_USERS, apply_access, ensure_secrets, read_secret, secret_variable
from services.ops.arguments import add_bootstrap
from services.ops.kafka_clients import admin_client
from services.ops.settings import OpsSettings
from services.ops.topics import ensure_topics


def _secrets(args: argparse.Namespace, __: OpsSettings) -> int:
    cluster = ClusterSettings()
    kafka, redis, api = cluster.kafka_secrets_dir, cluster.redis_secrets_dir, cluster.api_secrets_dir
    written = [f"kafka {name}" for name in ensure_secrets(kafka)]
    written += [f"redis {name}" for name in ensure_secrets(redis, REDIS_USERS)]
    written += [f"api token {name}" for name in ensure_secrets(api, (AUDITOR, OPS))]
    written += [f"api token of buyer {name}" for name in ensure_secrets(api / BUYERS, cluster.buyer_systems)]
    if args.export:
        # For `eval "$(h200 access secrets --export)"` before docker-compose, which hands each container its own.
        for name in (ADMIN, CONTROLLER, *PRINCIPALS):
            print(f"export {secret_variable(name)}={read_secret(kafka, name)}")
        for name in REDIS_USERS:
            print(f"export {secret_variable(name, 'REDIS')}={(redis / name).read_text(encoding='utf-8').strip()}")
        print(f"export {AUDITOR_VARIABLE}={(api / AUDITOR).read_text(encoding='utf-8').strip()}")
        print(f"export {OPS_VARIABLE}={(api / OPS).read_text(encoding='utf-8').strip()}")
        buyers = {b: (api / BUYERS / b).read_text(encoding="utf-8").strip() for b in cluster.buyer_systems}
        print(f"export {BUYERS_VARIABLE}={shlex.quote(json.dumps(buyers))}")
        return 0
    if written:
        print(f"wrote a new secret for {', '.join(written)} into {kafka}/, {redis}/ and {api}/ (mode 0600)")
    else:
        print(
            f"every Kafka principal, Redis user and API caller has a secret in {kafka}/, {redis}/ and {api}/; "
            "nothing written"
        )
    return 0


def _apply(_: argparse.Namespace, settings: OpsSettings) -> int:
    cluster = ClusterSettings()
    if cluster.kafka_username != ADMIN:
        print(f"error: users and ACLs are applied as {ADMIN!r} (H200_KAFKA_USERNAME={cluster.kafka_username})")
        return 2
    buyers = cluster.buyer_systems
    with admin_client(settings.bootstrap_servers, settings.request_timeout_s) as admin:
        topics = ensure_topics(admin, buyer_topics(buyers))
        report = apply_access(admin, cluster.kafka_secrets_dir, buyers=buyers)
    if buyers:
        print(
            f"buyer systems {', '.join(buyers)}: submission and outcome topics {len(topics.created)} created, "
            f"{len(topics.existing)} already there"
        )
    print(f"SCRAM-SHA-512 passwords set for {', '.join(report.users)} (from {cluster.kafka_secrets_dir}/)")
    print(f"ACLs: {len(report.added)} added, {len(report.removed)} removed (not granted by the catalogue)")
    for removed in report.removed:
        print(f"  removed {removed}")
    return 0


def _principals(_: argparse.Namespace, __: OpsSettings) -> int:
    buyers = ClusterSettings().buyer_systems
    for principal in (*PRINCIPALS, *(buyer_principal(buyer) for buyer in buyers)):
        granted = grants_of(principal, buyers)
        for operation in ("WRITE", "READ"):
            names = [g.resource for g in granted if g.operation == operation]
            print(f"{principal:<11} {operation.lower():<5} {', '.join(names) or '-'}")
    print(f"{ADMIN:<11} super user (topics, ACLs, users); the brokers log in to their controllers as 'controller'")
    return 0


def add_access_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    access = commands.add_parser("access", help="Kafka principals: secrets, SCRAM users and ACLs")
    actions = access.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    secrets = actions.add_parser(
        "secrets",
        help="write a random password for each Kafka principal and Redis user without one "
        "(H200_KAFKA_SECRETS_DIR, H200_REDIS_SECRETS_DIR)",
    )
    secrets.add_argument(
        "--export", action="store_true", help="then print them as shell exports (for docker-compose); keep it private"
    )
    secrets.set_defaults(run=_secrets)
    apply = actions.add_parser(
        "apply", help="as admin: set each principal's SCRAM password and make its ACLs what the catalogue grants"
    )
    add_bootstrap(apply)
    apply.set_defaults(run=_apply)
    actions.add_parser("principals", help="what each principal may read and write; writes nothing").set_defaults(
        run=_principals
    )
