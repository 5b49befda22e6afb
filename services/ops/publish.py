"""Publishing what ops and upstream systems say: policies, batches, orders, shipment reports.

Each message gets an id derived from its content, so publishing the same file twice is harmless: every
service applies a message id once. Its envelope time is the business time it carries (when the policy takes
effect, the batch is ready, the order was submitted, the step happened), which keeps replays deterministic.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.base import Message
from schemas.codec import describe, encode
from schemas.envelope import Envelope, command_id_for, make_envelope
from schemas.registry import CURRENT
from schemas.routing import home_topic, record_key
from services.ops.kafka_clients import producer

TIME_FIELDS = ("effective_at", "submitted_at", "requested_at", "ready_at", "at")


class InputFileError(ValueError):
    """A file of messages that cannot be published, naming the item and the field at fault."""


def business_time(payload: Message) -> datetime:
    for name in TIME_FIELDS:
        value = getattr(payload, name, None)
        if isinstance(value, datetime):
            return value
    raise InputFileError(f"{payload.TYPE} carries no business time ({', '.join(TIME_FIELDS)})")


def envelope_for(payload: Message, producer_name: str) -> Envelope[Message]:
    return make_envelope(
        payload,
        key=record_key(payload),
        producer=producer_name,
        occurred_at=business_time(payload),
        message_id=command_id_for(producer_name, payload),
    )


def parse_item(item: dict[str, Any], where: str) -> Message:
    """One message from a dict with a `type` field and the message's fields."""
    type_ = item.get("type")
    if not isinstance(type_, str) or type_ not in CURRENT:
        raise InputFileError(f"{where}: `type` must name a message, e.g. SubmitOrder; got {type_!r}")
    model = CURRENT[type_]
    fields = {k: v for k, v in item.items() if k != "type"}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InputFileError(f"{where} ({type_}): {describe(exc)}") from None


def _csv_orders(text: str, path: Path) -> list[dict[str, Any]]:
    """CSV of orders: one row per order; uses as `ai_research:70;inference:30`, documents as `id:kind:sha256;...`."""
    rows = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            uses = [
                {"use": u.split(":")[0], "share_pct": int(u.split(":")[1])} for u in row.pop("declared_uses").split(";")
            ]
            docs = [
                dict(zip(("document_id", "kind", "sha256"), d.split(":"), strict=True))
                for d in row.pop("documents", "").split(";")
                if d
            ]
            domestic = row.pop("domestic_commitment", "")
            item: dict[str, Any] = {
                "type": "SubmitOrder",
                **{k: v for k, v in row.items() if k not in ("site_id", "city")},
                "declared_uses": uses,
                "documents": docs,
                "delivery_site": {"site_id": row["site_id"], "city": row["city"]},
            }
            if domestic:
                supplier, quantity = domestic.rsplit(":", 1)
                item["domestic_commitment"] = {"supplier": supplier, "quantity": int(quantity)}
        except (KeyError, ValueError, IndexError) as exc:
            raise InputFileError(f"{path}:{number}: malformed order row ({exc})") from None
        rows.append(item)
    return rows


def load_file(path: Path) -> list[Message]:
    """Messages from a JSON array, JSON lines, or a CSV of orders."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None
    items: list[dict[str, Any]]
    if path.suffix == ".csv":
        items = _csv_orders(text, path)
    else:
        try:
            loaded = (
                json.loads(text)
                if text.lstrip().startswith("[")
                else [json.loads(line) for line in text.splitlines() if line.strip()]
            )
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}: not JSON or JSON lines: {exc}") from None
        items = loaded if isinstance(loaded, list) else [loaded]
    return [parse_item(item, f"{path} item {n}") for n, item in enumerate(items, start=1)]


def publish(bootstrap: str, payloads: Iterable[Message], producer_name: str = "ops") -> list[Envelope[Message]]:
    """Send each message to its home topic, in order, and wait until the broker has them all."""
    sent: list[Envelope[Message]] = []
    with producer(bootstrap) as client:
        futures = []
        for payload in payloads:
            envelope = envelope_for(payload, producer_name)
            futures.append(client.send(home_topic(payload).name, key=envelope.key.encode(), value=encode(envelope)))
            sent.append(envelope)
        for future in futures:
            future.get(timeout=60)
    return sent


def summarise(envelopes: Sequence[Envelope[Message]]) -> str:
    counts: dict[str, int] = {}
    for envelope in envelopes:
        counts[envelope.type] = counts.get(envelope.type, 0) + 1
    return ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
