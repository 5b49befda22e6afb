"""`h200`: the operator's command line. Every command has --help.

Exit status: 0 done (or nothing to do), 1 refused or a check failed, 2 an error the operator can fix (arguments,
an unreachable broker or Redis, an unusable file), 3 a message sent whose answer did not come in time. A closed
pipe (`h200 ledger | head`) ends any command quietly with status 0: the reader chose to stop reading.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import suppress

import redis
from kafka.errors import AuthorizationError

from schemas.codec import encode
from schemas.samples import sample_envelopes
from schemas.topics import CATALOGUE
from services.common.kafka_auth import KafkaCredentialsError
from services.common.settings import ClusterSettings, redis_url_with_password
from services.ops.access_commands import add_access_commands
from services.ops.arguments import add_bootstrap, add_redis
from services.ops.dead_letter_commands import add_dead_letter_commands
from services.ops.following import MissingTopicError
from services.ops.kafka_clients import BrokerUnavailableError, admin_client
from services.ops.publish import InputFileError
from services.ops.reads import add_read_commands
from services.ops.samples import SCRATCH_PREFIX, create_scratch_topics, live_topic, scratch_topic, send_and_read_back
from services.ops.settings import OpsSettings
from services.ops.topics import ensure_topics
from services.ops.writes import add_write_commands
from services.replay.parsers import add_replay_commands
from services.replay.records import ReplayError

OPERATOR_ERRORS = (
    BrokerUnavailableError,
    InputFileError,
    ReplayError,
    MissingTopicError,
    argparse.ArgumentTypeError,
    KafkaCredentialsError,
)


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


def _samples(args: argparse.Namespace, settings: OpsSettings) -> int:
    envelopes = sample_envelopes()
    if args.into == "print":
        for envelope in envelopes:
            print(encode(envelope).decode())
        print(
            f"wrote nothing: {len(envelopes)} samples printed, one per message kind (--scratch sends them to "
            f"{SCRATCH_PREFIX}* topics and reads each back)",
            file=sys.stderr,
        )
        return 0
    bootstrap = settings.bootstrap_servers
    destination = scratch_topic if args.into == "scratch" else live_topic
    topics = sorted({destination(envelope) for envelope in envelopes})
    if args.into == "scratch":
        report = create_scratch_topics(bootstrap, topics, settings.request_timeout_s)
        if report.problems:
            print("\n".join(f"PROBLEM: {problem}" for problem in report.problems), file=sys.stderr)
            return 1
    else:
        print(
            f"WARNING: writing {len(envelopes)} fake messages (sample policies, orders, a ChipsAllocated line, ...) "
            f"into the live topics {', '.join(topics)} on {bootstrap}: the services act on them and the topics "
            "keep them forever",
            file=sys.stderr,
        )
    echoes = send_and_read_back(bootstrap, envelopes, destination, settings.request_timeout_s)
    for echo in echoes:
        verdict = "ok" if echo.matches else "MISMATCH"
        print(f"  {echo.type:<26} -> {echo.topic}[{echo.partition}]@{echo.offset:<6} read back: {verdict}")
    failed = [echo.type for echo in echoes if not echo.matches]
    print(f"{len(echoes) - len(failed)} of {len(echoes)} message kinds sent and read back intact")
    print(f"wrote {len(echoes)} samples into {', '.join(topics)} on {bootstrap}")
    return 1 if failed else 0


def _demo(_: argparse.Namespace, __: OpsSettings) -> int:
    from services.ops.demo import main as demo_main

    return demo_main()


# --- rebuild (services/projector/rebuild.py) ---------------------------------------------------------------


def _rebuild(args: argparse.Namespace, settings: OpsSettings) -> int:
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
    add_redis(rebuild)
    rebuild.add_argument("--no-switch", action="store_true", help="report parity only; drop the rebuilt namespace")
    rebuild.add_argument("--keep-old", action="store_true", help="keep the old namespace's keys after the switch")
    rebuild.add_argument("--force", action="store_true", help="switch even if parity fails (a fixed projection)")
    add_bootstrap(rebuild)
    rebuild.set_defaults(run=_rebuild)


def _add_samples_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    samples = commands.add_parser(
        "samples",
        help="one sample of every message kind: printed (default), or sent to scratch topics and read back",
        description="By default prints the samples as JSON lines and writes nothing. --scratch sends each to "
        f"{SCRATCH_PREFIX}<topic> (created with one partition, kept an hour, read by no service) and reads it "
        "back. --into-live-topics sends them to the catalogue's own topics, where the services act on them and "
        "they stay forever: only on a cluster you mean to fill with fakes.",
    )
    where = samples.add_mutually_exclusive_group()
    where.add_argument("--scratch", dest="into", action="store_const", const="scratch", help="to scratch topics")
    where.add_argument(
        "--into-live-topics", dest="into", action="store_const", const="live", help="to the live catalogue topics"
    )
    samples.set_defaults(into="print", run=_samples)
    add_bootstrap(samples)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="h200", description="Operate the h200-orderbook system.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the clients do")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("catalogue", help="print the topic catalogue").set_defaults(run=_catalogue)
    topics = commands.add_parser("topics", help="administer the topics of the catalogue")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    create = topic_commands.add_parser("create", help="create missing topics and restore their settings (repeatable)")
    add_bootstrap(create)
    create.set_defaults(run=_topics_create)
    _add_samples_command(commands)
    commands.add_parser(
        "demo", help="run the article's scenario through the four services (starts its own Kafka and Redis)"
    ).set_defaults(run=_demo)
    add_write_commands(commands)
    add_read_commands(commands)
    add_replay_commands(commands)
    _add_rebuild_command(commands)
    add_dead_letter_commands(commands)
    add_access_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> OpsSettings:
    """The environment's settings, with --bootstrap and --redis-url of this call in their place when given."""
    settings = OpsSettings()
    given = {"bootstrap_servers": getattr(args, "bootstrap", None), "redis_url": getattr(args, "redis_url", None)}
    if given["redis_url"]:
        given["redis_url"] = redis_url_with_password(given["redis_url"], settings.redis_secrets_dir)
    return settings.model_copy(update={k: v for k, v in given.items() if v})


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    # kafka-python logs every refused connection as an error; the command reports the outcome itself.
    logging.getLogger("kafka").setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    try:
        return int(args.run(args, _settings(args)))
    except OPERATOR_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AuthorizationError as exc:
        who = ClusterSettings().kafka_username
        print(
            f"error: the broker refused principal {who!r} ({exc}); `h200 access principals` shows what each may "
            "read and write: set H200_KAFKA_USERNAME to one that may",
            file=sys.stderr,
        )
        return 1
    except redis.ConnectionError as exc:
        print(
            f"error: Redis does not answer ({exc}); start it with `make redis-up`, or give --redis-url or "
            "H200_REDIS_URL",
            file=sys.stderr,
        )
        return 2


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # inside the try: a pipe closed early fails here, not in the interpreter's exit
    except BrokenPipeError:
        # The reader is gone (`h200 ledger | head`). As the Python docs advise for SIGPIPE, point stdout at devnull
        # so the flush at exit does not fail again, and end quietly: the reader chose to stop reading.
        with suppress(OSError, ValueError):  # stdout without a file descriptor (captured in tests): nothing to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
