"""The replay commands' arguments, added to `h200` by services.ops.cli. Every command has --help."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.topics import CATALOGUE
from services.replay import commands
from services.replay.selection import parse_moment
from services.replay.whatif import RULES

Commands = Any
"""argparse's sub-parsers action (its class is private in typeshed)."""

SOURCE_HELP = "read this export (from `h200 export`) instead of the cluster: no Kafka needed"


def _moment(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes: give 1 or more")
    return int(text)


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no file {text!r}: give the path of an export written by `h200 export`")
    return path


def _cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $H200_BOOTSTRAP_SERVERS)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar with events per second on stderr (default: when stderr is a terminal)",
    )


def _source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-file", type=_existing_file, metavar="FILE", help=SOURCE_HELP)
    _cluster(parser)


def _add_replay(commands_: Commands) -> None:
    replay = commands_.add_parser(
        "replay",
        help="who got which H200 batches, how many and when: the ledger folded from the event log",
        description="Reads the event topics from the beginning (committed records only) or an export file, folds "
        "them into the ledger and prints it. ledger_hash covers the whole ledger at the moment, whatever the "
        "filters: the same log gives the same hash on every replay.",
    )
    _source(replay)
    replay.add_argument(
        "--as-of",
        type=_moment,
        metavar="TIME",
        help="the ledger as decided by TIME, each fact cut on its own time (at or before TIME): a line on its "
        "allocated_at, its release on released_at, its shipment steps on their at, approvals on decided_at, orders "
        "on placed_at, batches on ready_at; not on when a record or its cause arrived",
    )
    replay.add_argument("--buyer", help="only this buyer's lines (e.g. bytedance)")
    replay.add_argument("--batch", help="only lines of this batch (e.g. TSMC-B01)")
    replay.add_argument("--order", help="only lines of this order: its id, or the buyer's reference (BD-2026-001)")
    replay.add_argument("--format", choices=["table", "csv", "json"], default="table", help="default: table")
    replay.add_argument(
        "--checkpoints",
        type=Path,
        metavar="DIR",
        help="ledger checkpoints: start from the newest one in DIR whose events were all decided by --as-of (or "
        "the newest, without it) and read only the log since; after a replay without --as-of, write one there. "
        "The ledger and its hash are those of a whole read (services/replay/checkpoints.py)",
    )
    replay.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        metavar="N",
        help="processes that read and fold the log, each a run of its partitions (default 1): faster with cores "
        "to spare, at the cost of each process's memory; only for the whole ledger from the cluster (no filters, "
        "checkpoints or table)",
    )
    replay.set_defaults(run=commands.run_replay)


def _add_export_import(commands_: Commands) -> None:
    export = commands_.add_parser(
        "export",
        help="write the log to a JSON-lines file (one record per line, a header first)",
        description="Every record of the chosen topics, partition by partition in offset order, with its "
        "partition, offset, key, timestamp and envelope. An auditor can replay and verify the file with no Kafka.",
    )
    export.add_argument("--to", type=Path, required=True, metavar="FILE", help="the file to write (replaced)")
    export.add_argument(
        "--topics",
        nargs="+",
        choices=[topic.name for topic in CATALOGUE],
        metavar="TOPIC",
        help="only these topics (default: every topic of the catalogue)",
    )
    _cluster(export)
    export.set_defaults(run=commands.run_export)
    import_ = commands_.add_parser(
        "import",
        help="write an export into an empty cluster: same partitions, keys, order and timestamps",
        description="Creates the catalogue's topics, refuses a cluster whose topics already hold records (unless "
        "--force), then writes every record of the file to its original partition in file order.",
    )
    import_.add_argument("file", type=_existing_file, metavar="FILE", help="an export written by `h200 export`")
    import_.add_argument("--force", action="store_true", help="append even if the topics already hold records")
    _cluster(import_)
    import_.set_defaults(run=commands.run_import)


def _add_checks(commands_: Commands) -> None:
    check = commands_.add_parser(
        "verify",
        help="check every invariant of the domain over the log, the decision trail, determinism and the live "
        "read model",
        description="Exits 1 if anything is violated; each violation names the events involved. Besides the "
        "invariants of domain.md (chips that shipped count as gone from their batch, licences and quotas count "
        "the chips that left, one order per buyer and upstream ref), every fact must come from a producer the "
        "catalogue allows for it, and every record must decode. The live read model is compared when reading the "
        "cluster, or with --redis-url when reading a file.",
    )
    _source(check)
    check.add_argument("--redis-url", help="the read model's Redis (default with Kafka: $H200_REDIS_URL)")
    check.add_argument(
        "--namespace",
        default="h200",
        help="read-model namespace in Redis, its alias followed after a rebuild (default: h200)",
    )
    check.add_argument("--no-live", action="store_true", help="do not compare with the live read model")
    check.add_argument(
        "--chain-head",
        metavar="HASH",
        help="with --from-file: the chain head `h200 export` printed; the file's chain must end there",
    )
    check.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
    check.set_defaults(run=commands.run_verify)
    determinism = commands_.add_parser(
        "determinism",
        help="refold allocation's recorded inputs with its core and compare with its recorded decisions",
        description="Reads h200.allocation.inbox (inputs in recorded order) and h200.allocations; exits 1 and "
        "shows the first divergence (the input, the expected and the recorded decision) if they differ.",
    )
    _source(determinism)
    determinism.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
    determinism.set_defaults(run=commands.run_determinism)
    what_if = commands_.add_parser(
        "what-if",
        help="rerun allocation over the recorded inputs with another rule; shows the difference per buyer",
        description="The rule is in force from each pool's first input; recorded rule changes are rewritten to "
        "it. Nothing is written to Kafka.",
    )
    _source(what_if)
    what_if.add_argument("--rule", required=True, choices=RULES, help="the allocation rule to try")
    what_if.add_argument("--pool", action="append", metavar="POOL", help="only this pool (repeatable; default: all)")
    what_if.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
    what_if.set_defaults(run=commands.run_what_if)


def add_replay_commands(commands_: Commands) -> None:
    _add_replay(commands_)
    _add_export_import(commands_)
    _add_checks(commands_)
