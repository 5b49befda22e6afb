"""What the replay commands of `h200` do (services.replay.parsers declares them). Wiring only: read the log from
Kafka or an export file, call the pure parts, print; errors the operator can fix are ReplayError."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import redis

from schemas.topics import CATALOGUE, EVENT_TOPICS
from services.ops.settings import OpsSettings
from services.projector.store import current_store
from services.replay import reports
from services.replay.chain import ChainReport
from services.replay.checkpoints import CheckpointDir, LedgerCheckpoint, Tracker
from services.replay.decisions import DECIDED, Fetch, RecordedDecisions
from services.replay.determinism import Determinism
from services.replay.eventlog import Located
from services.replay.exportfile import (
    check_export_chain,
    exported_topics,
    make_header,
    read_export,
    read_header,
    write_export,
)
from services.replay.id_types import IdTypes
from services.replay.kafka_io import (
    create_catalogue,
    keeping_arrivals,
    read_at,
    read_topics,
    record_counts,
    records_at,
    write_records,
)
from services.replay.ledger import LedgerFold
from services.replay.live import live_ledger, projector_behind
from services.replay.parallel import fold_in_parallel
from services.replay.progress import progress_stream
from services.replay.reading import Reading, read_events
from services.replay.records import CLOCK, INBOX, LogRecord, ReplayError, Spot, in_catalogue_order
from services.replay.render import ledger_csv_pieces, ledger_json_pieces, ledger_table
from services.replay.selection import KnownThings, Selection
from services.replay.verify import Verification
from services.replay.whatif import FirstPolicies, WhatIf


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _bootstrap(args: argparse.Namespace, settings: OpsSettings) -> str:
    return str(args.bootstrap or settings.bootstrap_servers)


def open_log(
    args: argparse.Namespace,
    settings: OpsSettings,
    topics: Sequence[str],
    needed: Sequence[str] = (),
    starts: Mapping[tuple[str, int], int] | None = None,
) -> tuple[Iterator[LogRecord], Reading]:
    """The records of `topics`, from the export file if one is given, else from the cluster (from `starts`, a
    checkpoint's ends, where given), as they are read; and the Reading that counts them."""
    stream = progress_stream(args.progress)
    if args.from_file is None:
        bootstrap = _bootstrap(args, settings)
        chosen = in_catalogue_order(tuple(topics))
        return read_topics(bootstrap, chosen, stream, starts), Reading(chosen, f"kafka {bootstrap}")
    path: Path = args.from_file
    present = exported_topics(path)
    missing = [topic for topic in needed if topic not in present]
    if missing:
        raise ReplayError(f"{path} holds no {', '.join(missing)}: export it with `h200 export --to FILE` (all topics)")
    chosen = in_catalogue_order([topic for topic in topics if topic in present])
    return read_export(path, chosen, stream), Reading(chosen, f"file {path}")


def note_unreadable(log: Reading, shown: int = 10) -> None:
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
    """Folds the ledger while reading: nothing of the log is held but what the ledger and the filters need. With
    --checkpoints, starts from the newest usable ledger checkpoint and writes one after a whole replay."""
    selection = Selection(args.buyer, args.batch, args.order)
    table = args.format == "table"
    store = CheckpointDir(args.checkpoints) if args.checkpoints is not None else None
    if store is not None and args.from_file is not None:
        raise ReplayError("--checkpoints starts from offsets on the cluster; an export file is read whole: drop it")
    start = _checkpoint_to_start_from(store, args, settings) if store is not None else None
    known = KnownThings() if table or selection.active or store is not None else None
    if known is None and args.from_file is None and args.jobs > 1:
        # Only the fold is kept: several processes may read it (services/replay/parallel.py).
        topics = in_catalogue_order(EVENT_TOPICS)
        folded = fold_in_parallel(
            _bootstrap(args, settings), topics, args.as_of, args.jobs, progress_stream(args.progress)
        )
        if folded is not None:
            fold, reading, processes = folded
            sys.stderr.write(f"note: the log was read and folded by {processes} processes (--jobs)\n")
            note_unreadable(reading)
            return _print_ledger(args, fold, reading, selection, KnownThings())
    records, reading = open_log(args, settings, EVENT_TOPICS, starts=start.ends if start else None)
    fold = LedgerFold(args.as_of)
    if start is not None:
        start.reading.source = reading.source
        reading, known, fold = start.reading, start.known, start.fold
        fold.as_of = args.as_of  # every event it holds was decided by then (CheckpointDir.usable)
    elif table or store is not None:
        reading.types = IdTypes()
    tracker = Tracker()
    for read in read_events(tracker.records(records) if store is not None else records, reading):
        fold.add(read.envelope)
        if known is not None:
            known.add(read.envelope)
        if store is not None:
            tracker.saw(read)
    note_unreadable(reading)
    if store is not None and args.as_of is None and known is not None:
        try:
            path = store.save(tracker.checkpoint(fold, reading, known, start))
            sys.stderr.write(f"wrote ledger checkpoint {path} ({reading.events:,} events)\n")
        except OSError as error:  # the ledger is still printed: only the next replay's head start is lost
            sys.stderr.write(f"note: no ledger checkpoint written to {store.directory}: {error}\n")
    return _print_ledger(args, fold, reading, selection, known if known is not None else KnownThings())


def _print_ledger(
    args: argparse.Namespace, fold: LedgerFold, reading: Reading, selection: Selection, known: KnownThings
) -> int:
    things = known.known()
    selection = selection.resolve(things)
    ledger = fold.ledger()
    if args.format == "json":
        sys.stdout.writelines(ledger_json_pieces(ledger, selection, reading.events))
        sys.stdout.write("\n")
    elif args.format == "csv":
        sys.stdout.writelines(ledger_csv_pieces(ledger, selection))
    else:
        emit(ledger_table(ledger, selection, reading, things.refs))
    return 0


def _checkpoint_to_start_from(
    store: CheckpointDir, args: argparse.Namespace, settings: OpsSettings
) -> LedgerCheckpoint | None:
    bootstrap = _bootstrap(args, settings)

    def anchors_of(ends: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], bytes | None]:
        found = records_at(bootstrap, [(topic, number, end - 1) for (topic, number), end in ends.items() if end > 0])
        return {(topic, number): value for (topic, number, _), value in found.items()}

    start, refused = store.usable(in_catalogue_order(tuple(EVENT_TOPICS)), args.as_of, anchors_of)
    for reason in refused:
        sys.stderr.write(f"note: ledger checkpoint {reason}: not used\n")
    if start is None:
        sys.stderr.write(f"note: no usable ledger checkpoint in {store.directory}: the log is read from its start\n")
    else:
        behind = sum(start.ends.values())
        sys.stderr.write(
            f"starting from ledger checkpoint {start.name} ({start.reading.events:,} events, {behind:,} records "
            "read before it): only the records since are read\n"
        )
    return start


def run_export(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap = _bootstrap(args, settings)
    topics = in_catalogue_order(args.topics or [topic.name for topic in CATALOGUE])
    header = make_header(f"kafka://{bootstrap}", topics)
    chain = write_export(args.to, header, read_topics(bootstrap, topics, progress_stream(args.progress)))
    emit(f"exported {chain.records:,} records of {len(topics)} topics from {bootstrap} to {args.to}")
    emit(
        f"chain head {chain.head}: keep it apart from the file; `h200 verify --from-file {args.to} --chain-head "
        f"{chain.head}` proves the file is the one exported"
    )
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
    """Reads the allocation core's decisions, then the whole log once, feeding every check as it reads: what is held
    is what the checks keep (ids, quantities, digests), not the log."""
    decisions = RecordedDecisions()
    records, first = open_log(args, settings, (DECIDED,))
    for read in read_events(records, first):
        decisions.see(read)
    records, reading = open_log(args, settings, (*EVENT_TOPICS, CLOCK, INBOX))
    verification = Verification(reading.topics, decisions, reading.seen)
    for read in read_events(records, reading):
        verification.see(read)
    live, behind, namespace = None, 0, args.namespace
    if not args.no_live and (args.from_file is None or args.redis_url):
        url = args.redis_url or settings.redis_url
        # After a `rebuild` the read models live under the namespace the alias names: follow it, as readers do.
        with redis.Redis.from_url(url, decode_responses=True) as client:
            store = current_store(client, args.namespace)
            live, behind, namespace = live_ledger(store), projector_behind(store, reading.ends), store.ns
    chain = None if args.from_file is None else export_chain(args.from_file, args.chain_head)
    counted = (reading.events, reading.duplicates, reading.rejected)
    report = verification.report(counted, fetcher(args, settings), live, namespace, behind, chain)
    emit(reports.verify_json(report) if args.format == "json" else reports.verify_text(report, reading.source))
    return 0 if report.ok else 1


def fetcher(args: argparse.Namespace, settings: OpsSettings) -> Fetch:
    """Reads again the few records a report shows in full (a divergence's recorded side and its cause)."""

    def fetch(spots: Iterable[Spot]) -> dict[Spot, Located]:
        wanted = set(spots)
        if not wanted:
            return {}
        if args.from_file is None:
            records: Iterable[LogRecord] = read_at(_bootstrap(args, settings), wanted).values()
        else:
            records = (record for record in read_export(args.from_file) if record.spot in wanted)
        return {read.spot: Located(read.envelope, read.spot) for read in read_events(records, Reading())}

    return fetch


def export_chain(path: Path, head: str | None) -> ChainReport:
    """The export's hash chain checked, and its head compared with the one `h200 export` printed, if given."""
    report = check_export_chain(path)
    if report is None:
        problem = "a version 1 export carries no hash chain: nothing proves it unchanged (export it again)"
        return ChainReport(0, None, problem if head else None, "no_chain" if head else None)
    if report.ok and head is not None and head != report.head:
        problem = (
            f"every link holds, but the chain ends at {report.head}, not at the head {head} given: the file was "
            "rewritten with a new chain, or is another export"
        )
        return ChainReport(report.records, report.head, problem, "other_head")
    return report


def run_determinism(args: argparse.Namespace, settings: OpsSettings) -> int:
    """The recorded decisions first (kept as digests), then the inbox refolded as it is read."""
    decisions = RecordedDecisions()
    records, first = open_log(args, settings, (DECIDED,), needed=(INBOX, DECIDED))
    for read in read_events(records, first):
        decisions.see(read)
    records, reading = open_log(args, settings, (INBOX,), needed=(INBOX,))
    determinism = Determinism(decisions)
    for read in read_events(records, reading):
        determinism.see(read)
    reading.rejected[:0] = first.rejected
    note_unreadable(reading)
    report = determinism.report(fetcher(args, settings))
    if args.format == "json":
        emit(json.dumps(reports.determinism_json(report), indent=2))
    else:
        emit(reports.determinism_text(report, reading.source))
    return 0 if not report.divergences else 1


def run_what_if(args: argparse.Namespace, settings: OpsSettings) -> int:
    """The inbox read twice: for each pool's first recorded policy, then refolded under the rule as it is read,
    beside the recorded decisions summed by buyer."""
    records, first_read = open_log(args, settings, (INBOX,), needed=(INBOX, DECIDED))
    first = FirstPolicies()
    for read in read_events(records, first_read):
        first.see(read)
    records, reading = open_log(args, settings, (DECIDED, INBOX), needed=(INBOX, DECIDED))
    imagining = WhatIf(args.rule, set(args.pool) if args.pool else None, first)
    for read in read_events(records, reading):
        imagining.see(read)
    note_unreadable(reading)
    report = imagining.report()
    emit(reports.what_if_json(report) if args.format == "json" else reports.what_if_text(report, reading.source))
    return 0
