"""Intake decides on its own inbox, keyed by buyer: whatever key and partition an upstream client chose, one
buyer's commands meet in one partition, and a record keyed otherwise is counted and logged once per reason."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import encode
from schemas.envelope import derive_id, make_envelope
from schemas.intake import CancelOrder, SubmitOrder
from schemas.policy import SubmissionWindowSet
from schemas.routing import home_topic
from schemas.samples import AT, sample_payloads
from schemas.topics import BY_NAME
from services.common.faust_app import make_faust_app
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.intake import app as intake_app
from services.intake.rekeying import key_mismatch

SUBMIT: SubmitOrder = next(p for p in sample_payloads() if isinstance(p, SubmitOrder))
BUYER = SUBMIT.buyer_id
COMMANDS, POLICY = intake_app.ROUTES


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None, partition: int | None = None
    ) -> None:
        self.records.append((topic, key, value, partition))

    async def all(self, outgoing: list[tuple[str, bytes | None, bytes | None, Any, int | None]]) -> list[object]:
        for topic, key, value, headers, partition in outgoing:
            await self(topic, key, value, headers, partition)
        return ["acked"] * len(outgoing)


@pytest.fixture
def worker(tmp_path: Path) -> tuple[intake_app.IntakeWorker, Sent]:
    cluster, settings = ClusterSettings(), WorkerSettings(worker_id="unit", datadir=tmp_path)
    intake = intake_app.IntakeWorker(make_faust_app("intake", cluster, settings), cluster, settings)
    sent = Sent()
    intake._send = sent  # type: ignore[method-assign]
    intake._send_all = sent.all  # type: ignore[method-assign,assignment]
    return intake, sent


def upstream(key: bytes | None, partition: int, offset: int = 0) -> Record:
    """A client's record: its envelope names the key the record carries (the buyer's for a record without one)."""
    envelope = make_envelope(
        SUBMIT, key=(key or BUYER.encode()).decode(), producer="upstream", occurred_at=AT, message_id=derive_id(offset)
    )
    return Record("h200.intake.commands", partition, offset, key, encode(envelope))


def forward(intake: intake_app.IntakeWorker, record: Record) -> None:
    """Route one record as the router does (decoded, refused or copied, the copies sent as one batch)."""
    route = POLICY if record.topic == "h200.policy" else COMMANDS
    asyncio.run(intake._route(route, [record]))


def test_intake_decides_on_its_own_inbox_keyed_by_buyer_fed_by_the_upstream_commands() -> None:
    inbox = BY_NAME[intake_app.INBOX]

    assert (inbox.key, inbox.carries_copies, inbox.producers, inbox.consumers) == (
        "buyer_id",
        True,
        ("intake",),
        ("intake",),
    )
    assert [(route.source, route.types) for route in intake_app.ROUTES] == [
        ("h200.intake.commands", BY_NAME["h200.intake.commands"].messages),
        ("h200.policy", (SubmissionWindowSet,)),
    ]
    # Upstream systems still publish to h200.intake.commands: the inbox only carries intake's copies
    assert home_topic(CancelOrder).name == "h200.intake.commands"


@pytest.mark.parametrize(
    ("key", "partition"),
    [(BUYER.encode(), 0), (BUYER.upper().encode(), 5), (None, 3), (b"someone-else", 1)],
)
def test_the_route_copies_a_command_byte_for_byte_under_its_buyer_whatever_its_key_and_partition(
    worker: tuple[intake_app.IntakeWorker, Sent], key: bytes | None, partition: int
) -> None:
    intake, sent = worker
    record = upstream(key, partition)

    forward(intake, record)

    assert sent.records == [(intake_app.INBOX, BUYER.encode(), record.value, None)]


def test_records_keyed_otherwise_are_counted_per_reason_and_logged_once(
    worker: tuple[intake_app.IntakeWorker, Sent], caplog: pytest.LogCaptureFixture
) -> None:
    intake, _ = worker
    records = [upstream(BUYER.upper().encode(), 5, n) for n in range(3)] + [upstream(None, 3, 3), upstream(b"x", 0, 4)]

    with caplog.at_level(logging.WARNING, logger="services.intake.rekeying"):
        for record in [*records, upstream(BUYER.encode(), 1, 5)]:
            forward(intake, record)

    assert intake.rekeyed.by_reason() == {
        "h200.intake.commands:key_in_other_case_or_padded": 3,
        "h200.intake.commands:key_names_another_buyer": 1,
        "h200.intake.commands:no_key": 1,
    }
    assert len(caplog.records) == 3
    assert "h200.intake.commands[5]@0 is keyed b'" in caplog.records[0].getMessage()


def test_the_submission_window_is_copied_into_every_inbox_partition_and_not_counted_as_rekeyed(
    worker: tuple[intake_app.IntakeWorker, Sent],
) -> None:
    intake, sent = worker
    window = next(p for p in sample_payloads() if isinstance(p, SubmissionWindowSet))
    envelope = make_envelope(window, key=window.policy_id, producer="ops", occurred_at=AT, message_id=derive_id("w"))
    record = Record("h200.policy", 0, 7, window.policy_id.encode(), encode(envelope))

    forward(intake, record)

    partitions = BY_NAME[intake_app.INBOX].partitions
    assert sent.records == [(intake_app.INBOX, record.key, record.value, p) for p in range(partitions)]
    assert intake.rekeyed.by_reason() == {}


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (b"bytedance", None),
        (None, "no_key"),
        (b"BYTEDANCE", "key_in_other_case_or_padded"),
        (b" bytedance\n", "key_in_other_case_or_padded"),
        (b"alibaba", "key_names_another_buyer"),
        (b"\xffbytedance", "key_not_utf8"),
    ],
)
def test_a_key_other_than_the_buyer_id_is_named_by_a_stable_reason(key: bytes | None, reason: str | None) -> None:
    assert key_mismatch(key, "bytedance") == reason
