"""Workers log one line per decision with the ids that follow a flow across services; as JSON when asked."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from builders_intake import AT, submit

from schemas.envelope import Envelope, make_envelope
from schemas.intake import CommandRejected
from schemas.samples import sample_payloads
from services.common.faust_app import make_faust_app
from services.common.logs import FIELDS, JsonFormatter, log_decision, logging_config
from services.common.settings import ClusterSettings, WorkerSettings


def decided() -> tuple[Envelope[Any], Envelope[Any]]:
    """A command and the event intake decided on it."""
    command = submit()
    rejected = next(p for p in sample_payloads() if isinstance(p, CommandRejected))
    return command, make_envelope(rejected, key="bytedance", producer="intake", occurred_at=AT, cause=command)


def test_a_decision_is_one_line_naming_its_events_cause_correlation_and_inbox_position(
    caplog: pytest.LogCaptureFixture,
) -> None:
    command, event = decided()

    with caplog.at_level(logging.INFO, logger="h200.decisions"):
        log_decision("intake", ("h200.intake.inbox", 4, 17), [event])

    [line] = caplog.records
    assert getattr(line, FIELDS) == {
        "service": "intake",
        "topic": "h200.intake.inbox",
        "partition": 4,
        "offset": 17,
        "causation_id": str(command.id),
        "correlation_id": str(command.correlation_id),
        "event_ids": [str(event.id)],
        "event_types": ["CommandRejected"],
    }
    assert f"CommandRejected {event.id}" in line.getMessage()
    assert str(command.id) in line.getMessage()


def test_a_record_that_decides_nothing_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="h200.decisions"):
        log_decision("intake", ("h200.intake.inbox", 0, 1), [])
    assert caplog.records == []


def test_the_json_formatter_writes_one_object_a_line_with_the_structured_fields_and_the_error() -> None:
    record = logging.LogRecord("h200.decisions", logging.INFO, __file__, 1, "decided %s", ("x",), None)
    setattr(record, FIELDS, {"event_ids": ["e1"], "offset": 3, "message": "not this"})
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("w", logging.ERROR, __file__, 2, "failed", (), sys.exc_info())

    line = json.loads(JsonFormatter("approval").format(record))
    assert line == {
        "at": line["at"],
        "level": "INFO",
        "logger": "h200.decisions",
        "service": "approval",
        "message": "decided x",
        "event_ids": ["e1"],
        "offset": 3,
    }
    assert line["at"].endswith("+00:00")
    error = JsonFormatter().format(failed)
    assert "\n" not in error and "ValueError: boom" in json.loads(error)["exception"]


def test_json_logs_are_what_a_worker_configures_when_asked_and_text_stays_fausts(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = WorkerSettings(worker_id="unit", datadir=tmp_path)
    app = make_faust_app("intake", ClusterSettings(log_format="json"), settings)
    assert app.conf.logging_config == logging_config("intake", "json")
    assert logging_config("intake", "text") is None

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logging.config.dictConfig(logging_config("intake", "json"))  # type: ignore[arg-type]
        logging.getLogger("h200.decisions").info("decided %s", uuid4(), extra={FIELDS: {"offset": 9}})
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    [line] = [json.loads(text) for text in capfd.readouterr().err.splitlines() if text.startswith("{")]
    assert (line["service"], line["logger"], line["offset"]) == ("intake", "h200.decisions", 9)
