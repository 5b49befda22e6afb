"""`h200`: the operator's command line. Every command has --help."""

from __future__ import annotations

import argparse
import logging
import sys

from schemas.topics import CATALOGUE
from services.ops.kafka_clients import BrokerUnavailableError, admin_client
from services.ops.samples import send_and_read_back
from services.ops.settings import OpsSettings
from services.ops.topics import ensure_topics


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
    except BrokerUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
