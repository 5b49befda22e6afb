"""`h200 dead-letters list | show | redrive`: what the services could not accept, and sending it again once it can
be accepted (services.ops.redrive has the id rule). Each read goes to the end of the topics as they are now."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

from schemas.codec import ContractError
from schemas.topics import SERVICES
from services.common.dead_letters import dead_letter_topic
from services.ops.arguments import add_bootstrap
from services.ops.kafka_clients import producer
from services.ops.redrive import Letter, RedriveRefusedError, Resend, counts, envelope_now, resend, value_text
from services.ops.settings import OpsSettings
from services.replay.kafka_io import FETCH_BYTES, read_topics
from services.replay.records import LogRecord, ReplayError

SEND_TIMEOUT_S = 60
COLUMNS = ("service", "offset", "code", "source", "at", "size", "truncated", "error")


def letters(bootstrap: str, services: Iterable[str]) -> list[Letter]:
    """Every dead letter of the services' dlq topics, service by service, oldest first."""
    topics = {dead_letter_topic(service): service for service in services}
    return [Letter(topics[record.topic], record) for record in read_topics(bootstrap, list(topics))]


def send_record(bootstrap: str, record: Resend) -> tuple[int, int]:
    """Send one record and wait for the broker: its partition and offset."""
    with producer(bootstrap, max_request_size=FETCH_BYTES) as client:
        future = client.send(
            record.topic, key=record.key, value=record.value, partition=record.partition, headers=record.headers
        )
        metadata = future.get(timeout=SEND_TIMEOUT_S)
    return metadata.partition, metadata.offset


def _list(args: argparse.Namespace, settings: OpsSettings) -> int:
    found = [
        letter
        for letter in letters(settings.bootstrap_servers, [args.service] if args.service else SERVICES)
        if args.code is None or letter.code == args.code
    ]
    rows = [letter.summary() for letter in found]
    if args.format == "json":
        print(json.dumps({"dead_letters": rows, "counts": counts(found)}, indent=2))
        return 0
    widths = {c: max([len(c), *(len(_cell(row[c])) for row in rows)]) for c in COLUMNS[:-1]}
    print("  ".join(f"{c:<{widths[c]}}" for c in COLUMNS[:-1]) + "  error")
    for row in rows:
        print("  ".join(f"{_cell(row[c]):<{widths[c]}}" for c in COLUMNS[:-1]) + f"  {row['error']}")
    print(f"{len(rows)} dead letters" + ("" if rows else " (nothing refused, or nothing matches)"))
    for service, codes in counts(found).items():
        print(f"  {service}: " + ", ".join(f"{code} {n}" for code, n in codes.items()))
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _find(settings: OpsSettings, service: str, offset: int) -> Letter:
    found = letters(settings.bootstrap_servers, [service])
    for letter in found:
        if letter.offset == offset:
            return letter
    held = f"offsets {found[0].offset} to {found[-1].offset}" if found else "no record"
    raise ReplayError(
        f"{dead_letter_topic(service)} has no record at offset {offset} ({held}); `h200 dead-letters list` shows them"
    )


def _show(args: argparse.Namespace, settings: OpsSettings) -> int:
    letter = _find(settings, args.service, args.offset)
    print(f"dead letter {dead_letter_topic(args.service)}@{letter.offset}")
    for name, text in letter.dlq_headers.items():
        print(f"  {name}: {text}")
    for name, data in letter.own_headers:
        print(f"  (original header) {name}: {data.decode('utf-8', 'backslashreplace')}")
    if letter.record.key is not None:
        print(f"key: {letter.record.key.decode('utf-8', 'backslashreplace')}")
    print("\n".join(value_text(letter)))
    try:
        envelope = envelope_now(letter)
    except ContractError as exc:
        print(f"decodes now: no [{exc.code}] {exc.detail}")
    else:
        print(f"decodes now: yes, {envelope.type} v{envelope.version} id {envelope.id}")
    return 0


def sent_before(bootstrap: str, record: Resend) -> LogRecord | None:
    """The record already sent under the new id, if any (the id is in the envelope's first bytes)."""
    marker = str(record.envelope.id).encode()
    for found in read_topics(bootstrap, [record.topic]):
        if found.value is not None and marker in found.value[:64]:
            return found
    return None


def _redrive(args: argparse.Namespace, settings: OpsSettings) -> int:
    bootstrap = settings.bootstrap_servers
    letter = _find(settings, args.service, args.offset)
    where = f"{dead_letter_topic(args.service)}@{letter.offset}"
    try:
        record = resend(letter, args.to)
    except RedriveRefusedError as refused:
        print(f"refused: {where} is not re-sent: {refused}")
        return 1
    envelope = record.envelope
    renewed = f"{envelope.type} as id {envelope.id} (caused by the original {envelope.causation_id})"
    earlier = sent_before(bootstrap, record)
    if earlier is not None:
        print(
            f"nothing sent: {where} was re-driven before: {renewed} is at {earlier.spot}; readers apply an id once. "
            "If that copy was dead-lettered again, re-drive its own dead letter"
        )
        return 0
    partition = "the key's partition" if record.partition is None else f"partition {record.partition}"
    if args.dry_run:
        print(f"would send {where} to {record.topic} {partition} (key {record.key.decode()}): {renewed}; nothing sent")
        return 0
    sent_partition, offset = send_record(bootstrap, record)
    print(f"sent {where} to {record.topic}[{sent_partition}]@{offset}: {renewed}")
    return 0


def _offset(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"an offset in the dead-letter topic (`h200 dead-letters list`), got {text!r}")
    return int(text)


def add_dead_letter_commands(commands: Any) -> None:
    group = commands.add_parser("dead-letters", help="list, show and re-drive what the services could not accept")
    actions = group.add_subparsers(dest="dead_letters_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="every dead letter of h200.dlq.<service>, with counts per service and code"
    )
    listing.add_argument("--service", choices=SERVICES)
    listing.add_argument("--code", help="only this dlq.error_code, e.g. malformed_json")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one dead letter: its dlq.* headers, value, and whether it decodes now")
    redrive = actions.add_parser(
        "redrive",
        help="send a dead letter again, under a new id caused by the original, once its value decodes",
        description="Sends the dead letter's envelope to its source topic and partition under its own key (or to "
        "--to under that topic's key), with a new id derived from (original id, service, dlq offset): "
        "causation_id is the original id, correlation_id and payload are kept. A truncated or undecodable value "
        "is refused (exit 1); a dead letter re-driven before is not sent again.",
    )
    for parser in (show, redrive):
        parser.add_argument("service", choices=SERVICES)
        parser.add_argument("offset", type=_offset, help="its offset in h200.dlq.<service>")
    redrive.add_argument("--to", metavar="TOPIC", help="another topic of the catalogue (default: the source topic)")
    redrive.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    show.set_defaults(run=_show)
    redrive.set_defaults(run=_redrive)
    for parser in (listing, show, redrive):
        add_bootstrap(parser)
