"""A worker's /metrics, /health and /ready pages, answered through faust's own view machinery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from builders_intake import submit
from faust.web.views import View

from schemas.codec import encode
from services.common.faust_app import make_faust_app
from services.common.journal import MemoryJournal
from services.common.records import Record
from services.common.settings import ClusterSettings, WorkerSettings
from services.common.worker import ServiceWorker
from services.intake import app as intake_app


class FakeWeb:
    """Answers as faust's web driver would, as (status, content type, body)."""

    def json(self, value: Any, *, status: int = 200, **options: Any) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(value).encode()

    def bytes(self, value: bytes, *, status: int = 200, headers: Any = None, **options: Any) -> tuple[int, str, bytes]:
        return status, (headers or {}).get("Content-Type", ""), value


class Assigned:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


async def no_history(topic: str, partition: int, until: int) -> AsyncIterator[Record]:
    for _ in ():
        yield _


def intake_worker(tmp_path: Path, **options: Any) -> tuple[Any, intake_app.IntakeWorker]:
    cluster, settings = ClusterSettings(), WorkerSettings(worker_id="unit", datadir=tmp_path, **options)
    app = make_faust_app("intake", cluster, settings)
    worker = intake_app.IntakeWorker(app, cluster, settings)
    worker.core._replay = no_history
    worker.core.journal = MemoryJournal()  # no broker here: the journal in memory
    sent: list[tuple[str, bytes | None]] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, *args: Any, **kwargs: Any) -> object:
        sent.append((topic, value))
        return None

    async def send_all(outgoing: list[Any]) -> list[object]:
        return [await send(*record) for record in outgoing]

    worker.publisher.send = send  # type: ignore[method-assign]
    worker._send_all = send_all  # type: ignore[method-assign]
    return app, worker


def answer(app: Any, worker: ServiceWorker, handler: Any) -> tuple[int, str, bytes]:
    view = View.from_handler(handler)(app, FakeWeb())
    result: tuple[int, str, bytes] = asyncio.run(view.get(object()))
    return result


def test_metrics_count_a_decided_record_and_a_dead_letter_by_code(tmp_path: Path) -> None:
    app, worker = intake_worker(tmp_path)
    inbox = intake_app.INBOX

    asyncio.run(worker.decide(Record(inbox, 0, 0, b"bytedance", encode(submit()))))
    asyncio.run(worker.decide(Record(inbox, 0, 1, b"bytedance", b'{"type": "SubmitOrder", oops')))

    status, content_type, body = answer(app, worker, worker.metrics_page())
    text = body.decode()
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert 'h200_records_decided_total{service="intake"} 2.0' in text
    assert 'h200_dead_letters_total{code="malformed_json",service="intake"} 1.0' in text
    assert 'h200_rebuilds_total{service="intake"} 1.0' in text
    assert 'h200_rebuild_seconds_count{service="intake"} 1.0' in text
    assert 'h200_sends_retried_total{service="intake"} 0.0' in text


def test_metrics_time_each_snapshot_and_the_event_loop(tmp_path: Path) -> None:
    app, worker = intake_worker(tmp_path, snapshot_every=2, snapshot_share=0)

    async def decide_five() -> None:
        for offset in range(5):
            await worker.decide(Record(intake_app.INBOX, 0, offset, b"bytedance", encode(submit())))
            await worker.core.stored()  # the forked writer of a snapshot, if one was taken

    asyncio.run(decide_five())
    worker.loop_watch.observe(1.0, 0.3)

    text = answer(app, worker, worker.metrics_page())[2].decode()
    assert 'h200_snapshots_written_total{service="intake"} 2.0' in text
    assert 'h200_snapshot_seconds_count{service="intake"} 2.0' in text
    assert 'h200_event_loop_blocked_seconds_count{service="intake"} 1.0' in text
    assert 'h200_event_loop_blocked_seconds_bucket{le="0.25",service="intake"} 0.0' in text
    assert worker.core.last_snapshot.startswith("a snapshot of h200.intake.inbox[0] at offset 4, captured in ")
    assert worker.core.snapshots.offsets(intake_app.INBOX, 0) == [2, 4]  # on disk, by the forked writers


def test_two_workers_keep_their_own_metrics(tmp_path: Path) -> None:
    (app, first), (_, second) = intake_worker(tmp_path / "a"), intake_worker(tmp_path / "b")

    asyncio.run(first.decide(Record(intake_app.INBOX, 0, 0, b"bytedance", encode(submit()))))

    assert 'h200_records_decided_total{service="intake"} 1.0' in answer(app, first, first.metrics_page())[2].decode()
    assert 'h200_records_decided_total{service="intake"} 0.0' in answer(app, second, second.metrics_page())[2].decode()


def test_a_worker_is_ready_only_once_it_has_partitions_and_is_not_rebuilding(tmp_path: Path) -> None:
    app, worker = intake_worker(tmp_path)

    status, _, body = answer(app, worker, worker.readiness_page())
    assert status == 503 and "no partitions assigned" in json.loads(body)["reason"]

    asyncio.run(worker._on_assigned(app, {Assigned(intake_app.INBOX, 0)}))
    worker.core.rebuilding.add((intake_app.INBOX, 0))
    status, _, body = answer(app, worker, worker.readiness_page())
    assert status == 503 and "rebuilding the state of h200.intake.inbox[0]" in json.loads(body)["reason"]

    worker.core.rebuilding.clear()
    status, _, body = answer(app, worker, worker.readiness_page())
    assert (status, json.loads(body)["ready"]) == (200, True)

    asyncio.run(worker._on_revoked(app, {Assigned(intake_app.INBOX, 0)}))
    assert answer(app, worker, worker.readiness_page())[0] == 503


def test_health_answers_while_the_event_loop_runs(tmp_path: Path) -> None:
    app, worker = intake_worker(tmp_path)

    status, _, body = answer(app, worker, worker.page(worker.health))

    assert (status, json.loads(body)["status"]) == (200, "running")
