"""Process logs: one JSON object a line (H200_LOG_FORMAT=json, compose's default) or faust's text; and the line
every worker writes per decision, with the ids a reader needs to follow a flow across services.

Structured fields travel in a record's `extra={"h200": {...}}`: the JSON formatter writes them as top-level keys,
the text format shows the message alone (which names the same ids), so neither loses what the other shows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.envelope import Envelope

LogFormat = Literal["json", "text"]
FIELDS = "h200"
"""The `extra` key whose dict of structured fields the JSON formatter writes as keys of the line."""

decisions = logging.getLogger("h200.decisions")


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: time (UTC), level, logger, service, message, its structured fields and
    the exception if any."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if self.service is not None:
            line["service"] = self.service
        line["message"] = record.getMessage()
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update({key: value for key, value in fields.items() if key not in ("at", "level", "message")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(service: str, log_format: LogFormat) -> dict[str, Any] | None:
    """faust's `logging_config` (logging.config.dictConfig) for a worker: JSON lines on stderr, or None for text
    (faust's own format)."""
    if log_format == "text":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter", "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }


def log_decision(service: str, where: tuple[str, int, int], outputs: Sequence[Envelope[Any]]) -> None:
    """One line for the decision a service made on the inbox record at `where` (topic, partition, offset): the
    events it caused, their ids, and the cause and correlation they share. Nothing for a record deciding nothing."""
    if not outputs:
        return
    topic, partition, offset = where
    first = outputs[0]
    fields = {
        "service": service,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "causation_id": str(first.causation_id) if first.causation_id else None,
        "correlation_id": str(first.correlation_id),
        "event_ids": [str(output.id) for output in outputs],
        "event_types": [output.type for output in outputs],
    }
    shown = ", ".join(f"{output.type} {output.id}" for output in outputs)
    decisions.info(
        "%s decided on %s[%s]@%s (cause %s, correlation %s): %s",
        service,
        topic,
        partition,
        offset,
        fields["causation_id"],
        fields["correlation_id"],
        shown,
        extra={FIELDS: fields},
    )
