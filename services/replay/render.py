"""The ledger as a table, as CSV and as JSON. Pure: a ledger in, text out."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any
from uuid import UUID

from services.replay.ledger import LINE_FIELDS, Ledger
from services.replay.reading import Reading
from services.replay.selection import Selection, each_shown_line, shown_lines, shown_totals


def _short(text: str | None, size: int = 8) -> str:
    return text[:size] if text else "-"


def _minute(text: str | None) -> str:
    return text[:16].replace("T", " ") if text else "-"


def ledger_json(ledger: Ledger, selection: Selection, events: int) -> str:
    return "".join(ledger_json_pieces(ledger, selection, events))


def ledger_json_pieces(ledger: Ledger, selection: Selection, events: int) -> Iterator[str]:
    """The text of json.dumps(document, indent=2), a line of the ledger at a time: a long ledger is written out
    without being held as one document and one text."""
    document: dict[str, Any] = {
        "as_of": ledger.as_of,
        "lines": [],
        "totals": shown_totals(ledger, selection),
        "ledger_hash": ledger.ledger_hash,
        "events": events,
    }
    if selection.active:
        document["filters"] = selection.active
    lines = each_shown_line(ledger, selection)
    first = next(lines, None)
    if first is None:
        yield json.dumps(document, indent=2, ensure_ascii=False)
        return
    head, _, tail = json.dumps(document, indent=2, ensure_ascii=False).partition('"lines": []')
    yield head + '"lines": [\n'
    for index, line in enumerate(itertools.chain((first,), lines)):
        text = json.dumps(line.as_dict(), indent=2, ensure_ascii=False)
        yield (",\n" if index else "") + "\n".join("    " + row for row in text.split("\n"))
    yield "\n  ]" + tail


def ledger_csv(ledger: Ledger, selection: Selection) -> str:
    return "".join(ledger_csv_pieces(ledger, selection))


def ledger_csv_pieces(ledger: Ledger, selection: Selection) -> Iterator[str]:
    """The CSV a line at a time, as ledger_json_pieces writes the JSON."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LINE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for line in each_shown_line(ledger, selection):
        writer.writerow(line.as_dict())
        if out.tell() > 1 << 16:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def ledger_table(ledger: Ledger, selection: Selection, read: Reading, refs: Mapping[str, str]) -> str:
    """The lines (with the order's own reference and the kind of event behind each), then the totals."""
    moment = ledger.as_of or "the end of the log"
    shown = shown_lines(ledger, selection)
    where = f" ({', '.join(f'{k} {v}' for k, v in selection.active.items())})" if selection.active else ""
    rows = [f"ledger as of {moment}{where}: {len(shown)} line(s), {read.events:,} events from {read.source}", ""]
    header = (
        f"{'allocated_at':<17} {'buyer':<10} {'order':<13} {'batch':<10} {'chips':>9}  {'status':<15} "
        f"{'shipped':<17} {'delivered':<17} {'policy':<20} cause"
    )
    rows += [header, "-" * len(header)]
    for line in shown:
        cause = read.type_of(UUID(line.cause_event_id))
        rows.append(
            f"{_minute(line.allocated_at):<17} {line.buyer:<10} {refs.get(line.order_id, _short(line.order_id)):<13} "
            f"{line.batch_id:<10} {line.quantity:>9,}  {line.status:<15} {_minute(line.shipped_at):<17} "
            f"{_minute(line.delivered_at):<17} {line.policy_version:<20} {cause or '?'} "
            f"{_short(line.cause_event_id)}"
        )
    rows += ["", *_totals_table(shown_totals(ledger, selection)), "", f"ledger_hash {ledger.ledger_hash}"]
    return "\n".join(rows)


def _totals_table(totals: dict[str, Any]) -> list[str]:
    names = ("requested", "approved", "allocated", "shipped", "delivered", "released")
    rows = [f"{'buyer':<12} " + " ".join(f"{n:>10}" for n in names)]
    rows += [f"{b:<12} " + " ".join(f"{t[n]:>10,}" for n in names) for b, t in totals["buyers"].items()]
    stock = ("quantity", "allocated", "shipped", "delivered", "unallocated")
    rows += ["", f"{'batch':<12} {'pool':<8} " + " ".join(f"{n:>11}" for n in stock)]
    rows += [
        f"{b:<12} {t['pool_id']:<8} " + " ".join(f"{t[n]:>11,}" for n in stock) for b, t in totals["batches"].items()
    ]
    rows += [""] + [
        f"pool {p}: {t['quantity']:,} chips in batches, {t['allocated']:,} allocated, {t['unallocated']:,} unallocated"
        for p, t in totals["pools"].items()
    ]
    return rows
