"""`h200`: the operator's command line. Every command has --help."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import redis

from schemas.envelope import order_id_for
from schemas.fulfilment import RecordFulfilmentStep
from schemas.policy import AllocationPolicySet
from schemas.supply import BatchManufactured
from schemas.topics import CATALOGUE
from services.ops.kafka_clients import BrokerUnavailableError, admin_client
from services.ops.publish import InputFileError, load_file, publish, summarise
from services.ops.samples import send_and_read_back
from services.ops.settings import OpsSettings
from services.ops.topics import ensure_topics
from services.ops.views import ledger_view, order_view, totals_view
from services.projector.store import ReadModelStore, current_store
from services.replay.parsers import add_replay_commands
from services.replay.records import ReplayError


def _catalogue(_: argparse.Namespace, __: OpsSettings) -> int:
    print(f"{'topic':<26} {'key':<24} {'parts':>5}  messages")
    for topic in CATALOGUE:
        names = ", ".join(m.schema_name() for m in topic.messages) or "original bytes + dlq.* headers"
        print(f"{topic.name:<26} {topic.key:<24} {topic.partitions:>5}  {names}")
    return 0


def _topics_create(_: argparse.Namespace, settings: OpsSettings) -> int:
    with admin_client(settings.bootstrap_servers, settings.request_timeout_s) as admin:
        report = ensure_topics(admin)
    print(f"topics on {settings.bootstrap_servers}: {len(report.created)} created, {len(report.existing)} existed")
    for name in report.reconfigured:
        print(f"  reconfigured {name}")
    for problem in report.problems:
        print(f"  PROBLEM: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


def _samples(_: argparse.Namespace, settings: OpsSettings) -> int:
    echoes = send_and_read_back(settings.bootstrap_servers, settings.request_timeout_s)
    for echo in echoes:
        verdict = "ok" if echo.matches else "MISMATCH"
        print(f"  {echo.type:<26} -> {echo.topic}[{echo.partition}]@{echo.offset:<6} read back: {verdict}")
    failed = [echo.type for echo in echoes if not echo.matches]
    print(f"{len(echoes) - len(failed)} of {len(echoes)} message kinds sent and read back intact")
    return 1 if failed else 0


def _when(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-02-01T09:00:00+00:00)") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add +00:00 or Z")
    return moment


def _report_sent(sent: list, settings: OpsSettings) -> int:  # type: ignore[type-arg]
    print(f"published {summarise(sent)} to {settings.bootstrap_servers}")
    return 0


def _publish(args: argparse.Namespace, settings: OpsSettings) -> int:
    return _report_sent(publish(settings.bootstrap_servers, load_file(args.file), args.producer), settings)


def _supply(args: argparse.Namespace, settings: OpsSettings) -> int:
    batch = BatchManufactured(
        batch_id=args.batch, pool_id=args.pool, quantity=args.quantity, site=args.site, ready_at=_when(args.ready_at)
    )
    return _report_sent(publish(settings.bootstrap_servers, [batch]), settings)


def _rule(args: argparse.Namespace, settings: OpsSettings) -> int:
    rule = AllocationPolicySet(
        policy_id=f"allocation/{args.pool}",
        revision=args.revision,
        effective_at=_when(args.at),
        issued_by=args.issued_by,
        pool_id=args.pool,
        rule=args.rule,
    )
    return _report_sent(publish(settings.bootstrap_servers, [rule]), settings)


def _fulfil(args: argparse.Namespace, settings: OpsSettings) -> int:
    step = RecordFulfilmentStep(allocation_id=args.allocation, step=args.step, at=_when(args.at), note=args.note)
    return _report_sent(publish(settings.bootstrap_servers, [step], "logistics"), settings)


@contextmanager
def _store(settings: OpsSettings, namespace: str) -> Iterator[ReadModelStore]:
    """The read models under `namespace` now: the alias `<namespace>:current` followed if a rebuild set it."""
    with redis.Redis.from_url(settings.redis_url, decode_responses=True) as client:
        yield current_store(client, namespace)


def _show(args: argparse.Namespace, settings: OpsSettings) -> int:
    order_id = str(args.order) if args.order else str(order_id_for(args.buyer, args.ref))
    with _store(settings, args.namespace) as store:
        print(order_view(store, order_id))
        return 0 if store.order(order_id) else 1


def _ledger(args: argparse.Namespace, settings: OpsSettings) -> int:
    with _store(settings, args.namespace) as store:
        print(ledger_view(store))
        print()
        print(totals_view(store))
    return 0


def _demo(_: argparse.Namespace, __: OpsSettings) -> int:
    from services.ops.demo import main as demo_main

    return demo_main()


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _add_read_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    show = commands.add_parser("show", help="an order's status and decision trail (from the read model)")
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--order", type=UUID, help="order id")
    which.add_argument("--buyer", help="buyer id, with --ref")
    show.add_argument("--ref", help="the buyer's own order reference")
    show.add_argument("--namespace", default="h200", help="read-model namespace in Redis")
    show.set_defaults(run=_show)
    ledger = commands.add_parser("ledger", help="who got which batches, how many and when (from the read model)")
    ledger.add_argument("--namespace", default="h200", help="read-model namespace in Redis")
    ledger.set_defaults(run=_ledger)


def _add_write_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pub = commands.add_parser(
        "publish", help="publish messages from a file: JSON array, JSON lines (each with `type`), or a CSV of orders"
    )
    pub.add_argument("file", type=Path)
    pub.add_argument("--producer", default="ops", help="producer name written into the envelopes")
    pub.set_defaults(run=_publish)
    supply = commands.add_parser("supply", help="announce a manufactured batch")
    supply.add_argument("--batch", required=True)
    supply.add_argument("--quantity", required=True, type=_positive)
    supply.add_argument("--site", required=True)
    supply.add_argument("--pool", default="h200")
    supply.add_argument("--ready-at", help="ISO 8601 time (default: now)")
    supply.set_defaults(run=_supply)
    rule = commands.add_parser("allocation-rule", help="choose a pool's allocation rule (a versioned policy event)")
    rule.add_argument("--pool", default="h200")
    rule.add_argument("--rule", required=True, choices=["first_approved_first_served", "pro_rata"])
    rule.add_argument("--revision", required=True, type=_positive, help="must be greater than the current one")
    rule.add_argument("--at", help="effective time, ISO 8601 (default: now)")
    rule.add_argument("--issued-by", default="h200 operations")
    rule.set_defaults(run=_rule)
    fulfil = commands.add_parser("fulfil", help="record a shipment step of an allocation")
    fulfil.add_argument("--allocation", required=True, type=UUID)
    fulfil.add_argument(
        "--step",
        required=True,
        choices=["packed", "shipped", "customs_cleared", "delivered", "held", "released", "lost", "refused"],
    )
    fulfil.add_argument("--at", help="ISO 8601 time (default: now)")
    fulfil.add_argument("--note")
    fulfil.set_defaults(run=_fulfil)


# --- rebuild (services/projector/rebuild.py) ---------------------------------------------------------------


def _rebuild(args: argparse.Namespace, settings: OpsSettings) -> int:
    from services.common.settings import ClusterSettings
    from services.projector.rebuild import run_rebuild

    options = {"switch": not args.no_switch, "keep_old": args.keep_old, "force": args.force}
    with redis.Redis.from_url(settings.redis_url, decode_responses=True) as client:
        return run_rebuild(
            settings.bootstrap_servers, client, args.namespace, ClusterSettings().max_message_bytes, **options
        )


def _add_rebuild_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild the Redis read models from the log into a fresh namespace, compare, then switch over",
        description="Projects the event log into <namespace>@<n> while the live projector keeps running, compares "
        "it with the live read models at the same log positions (ledger, buyers, batches, orders, trails), then "
        "points the alias <namespace>:current at it; readers and the live projector follow the alias. Exits 1 "
        "if parity fails (nothing switched unless --force).",
    )
    rebuild.add_argument("--namespace", default="h200", help="the read models' alias (default: h200)")
    rebuild.add_argument("--no-switch", action="store_true", help="report parity only; drop the rebuilt namespace")
    rebuild.add_argument("--keep-old", action="store_true", help="keep the old namespace's keys after the switch")
    rebuild.add_argument("--force", action="store_true", help="switch even if parity fails (a fixed projection)")
    rebuild.set_defaults(run=_rebuild)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="h200", description="Operate the h200-orderbook system.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the clients do")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("catalogue", help="print the topic catalogue").set_defaults(run=_catalogue)
    topics = commands.add_parser("topics", help="administer the topics of the catalogue")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    topic_commands.add_parser(
        "create", help="create missing topics and restore their settings (safe to run again)"
    ).set_defaults(run=_topics_create)
    commands.add_parser("samples", help="send one sample of every message kind and read each back").set_defaults(
        run=_samples
    )
    commands.add_parser(
        "demo", help="run the article's scenario through the four services (needs Kafka and Redis: see `make demo`)"
    ).set_defaults(run=_demo)
    _add_write_commands(commands)
    _add_read_commands(commands)
    add_replay_commands(commands)
    _add_rebuild_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    # kafka-python logs every refused connection as an error; the command reports the outcome itself.
    logging.getLogger("kafka").setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    try:
        return int(args.run(args, OpsSettings()))
    except (BrokerUnavailableError, InputFileError, ReplayError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except redis.ConnectionError as exc:
        print(
            f"error: Redis does not answer ({exc}); start it with `make redis-up` or set H200_REDIS_URL",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
