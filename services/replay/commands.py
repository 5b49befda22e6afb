"""What the replay commands of `h200` do (services.replay.parsers declares them). Wiring only: read the log from
Kafka or an export file, call the pure parts, print; errors the operator can fix are ReplayError."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import redis

from schemas.topics import CATALOGUE, EVENT_TOPICS
from services.ops.settings import OpsSettings
from services.projector.store import current_store
from services.replay import reports
from services.replay.determinism import check_determinism
from services.replay.eventlog import EventLog, build_log
from services.replay.exportfile import exported_topics, make_header, read_export, read_header, write_export
from services.replay.kafka_io import create_catalogue, keeping_arrivals, read_topics, record_counts, write_records
from services.replay.ledger import fold_ledger
from services.replay.live import live_ledger, projector_behind
from services.replay.progress import progress_stream
from services.replay.records import CLOCK, INBOX, ReplayError, in_catalogue_order
from services.replay.render import ledger_csv, ledger_json, ledger_table
from services.replay.selection import Selection, known_things
from services.replay.verify import verify
from services.replay.whatif import what_if


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _bootstrap(args: argparse.Namespace, settings: OpsSettings) -> str:
    return str(args.bootstrap or settings.bootstrap_servers)


def load_log(
    args: argparse.Namespace, settings: OpsSettings, topics: Sequence[str], needed: Sequence[str] = ()
) -> EventLog:
    """The log of `topics`, from the export file if one is given, else from the cluster."""
    stream = progress_stream(args.progress)
    if args.from_file is None:
        bootstrap = _bootstrap(args, settings)
        chosen = in_catalogue_order(tuple(topics))
        return build_log(read_topics(bootstrap, chosen, stream), chosen, f"kafka {bootstrap}")
    path: Path = args.from_file
    present = exported_topics(path)
    missing = [topic for topic in needed if topic not in present]
    if missing:
        raise ReplayError(f"{path} holds no {', '.join(missing)}: export it with `h200 export --to FILE` (all topics)")
    chosen = in_catalogue_order([topic for topic in topics if topic in present])
    return build_log(read_export(path, chosen, stream), chosen, f"file {path}")


def note_unreadable(log: EventLog, shown: int = 10) -> None:
    """Name on stderr the records left out because they cannot be read, so stdout stays the ledger itself."""
    if not log.rejected:
        return
    lines = [f"note: {len(log.rejected):,} record(s) of {log.source} cannot be read and are left out:"]
    lines += [f"  {problem[:300]}" for problem in log.rejected[:shown]]
    if len(log.rejected) > shown:
        lines.append(f"  ... and {len(log.rejected) - shown:,} more (`h200 verify` lists them)")
    sys.stderr.write("\n".join(lines) + "\n")


# --- runs --------------------------------------------------------------------------------------------------


def run_replay(args: argparse.Namespace, settings: OpsSettings) -> int:
    log = load_log(args, settings, EVENT_TOPICS)
    note_unreadable(log)
    known = known_things(log.events)
    selection = Selection(args.buyer, args.batch, args.order).resolve(known)
    ledger = fold_ledger(log.events, args.as_of)
    if args.format == "json":
        emit(ledger_json(ledger, selection, len(log.events)))
    elif args.format == "csv":
        emit(ledger_csv(ledger, selection))
    else:
        emit(ledger_table(ledger, selection, log, known.refs))
    return 0


def run_export(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap = _bootstrap(args, settings)
    topics = in_catalogue_order(args.topics or [topic.name for topic in CATALOGUE])
    header = make_header(f"kafka://{bootstrap}", topics)
    count = write_export(args.to, header, read_topics(bootstrap, topics, progress_stream(args.progress)))
    emit(f"exported {count:,} records of {len(topics)} topics from {bootstrap} to {args.to}")
    return 0


def run_import(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap = _bootstrap(args, settings)
    topics = in_catalogue_order(list(read_header(args.file).get("topics", {})))
    records = sum(1 for _ in read_export(args.file))  # every line checked before anything is written
    create_catalogue(bootstrap)
    busy = {topic: count for topic, count in record_counts(bootstrap, topics).items() if count}
    if busy and not args.force:
        held = ", ".join(f"{topic} ({count:,})" for topic, count in busy.items())
        raise ReplayError(
            f"the cluster at {bootstrap} already holds records in {held}: import into an empty cluster, "
            "or give --force to append to what is there"
        )
    with keeping_arrivals(bootstrap):
        sent = write_records(bootstrap, read_export(args.file), progress_stream(args.progress))
    emit(f"imported {sent:,} of {records:,} records into {len(topics)} topics on {bootstrap}")
    return 0 if sent == records else 1


def run_verify(args: argparse.Namespace, settings: OpsSettings) -> int:
    log = load_log(args, settings, (*EVENT_TOPICS, CLOCK, INBOX))
    live, behind, namespace = None, 0, args.namespace
    if not args.no_live and (args.from_file is None or args.redis_url):
        url = args.redis_url or settings.redis_url
        # After a `rebuild` the read models live under the namespace the alias names: follow it, as readers do.
        with redis.Redis.from_url(url, decode_responses=True) as client:
            store = current_store(client, args.namespace)
            live, behind, namespace = live_ledger(store), projector_behind(store, log.ends), store.ns
    report = verify(log, live, namespace, behind)
    emit(reports.verify_json(report) if args.format == "json" else reports.verify_text(report, log.source))
    return 0 if report.ok else 1


def run_determinism(args: argparse.Namespace, settings: OpsSettings) -> int:
    log = load_log(args, settings, ("h200.allocations", INBOX), needed=(INBOX, "h200.allocations"))
    note_unreadable(log)
    report = check_determinism(log)
    if args.format == "json":
        emit(json.dumps(reports.determinism_json(report), indent=2))
    else:
        emit(reports.determinism_text(report, log.source))
    return 0 if not report.divergences else 1


def run_what_if(args: argparse.Namespace, settings: OpsSettings) -> int:
    log = load_log(args, settings, ("h200.allocations", INBOX), needed=(INBOX, "h200.allocations"))
    note_unreadable(log)
    report = what_if(log, args.rule, set(args.pool) if args.pool else None)
    emit(reports.what_if_json(report) if args.format == "json" else reports.what_if_text(report, log.source))
    return 0
