"""During a broker outage the Kafka client's flood of connection errors becomes a first line, then how long the
outage has lasted; every other line passes unchanged."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from services.common.outage_log import OutageLogFilter, install_outage_log_filter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logged(clock: Clock) -> tuple[logging.Logger, Lines]:
    logger = logging.getLogger(f"test.outage.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines = Lines()
    logger.addHandler(lines)
    logger.addFilter(OutageLogFilter(clock, quiet_s=30))
    return logger, lines


def unreachable(logger: logging.Logger, node: int = 1) -> None:
    logger.error("Unable connect to node with id %s: %s", node, "[Errno 111] Connect call failed ('127.0.0.1', 9092)")


def test_an_outage_is_said_once_then_by_how_long_it_has_lasted(
    clock: Clock, logged: tuple[logging.Logger, Lines]
) -> None:
    logger, lines = logged
    for _ in range(66 * 20):  # 66 s of an outage at 20 lines a second
        unreachable(logger)
        logger.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError: Attempt to send a request to node")
        clock.now += 0.05
    assert len(lines.lines) == 4
    assert lines.lines[0].startswith("Kafka unreachable: Unable connect to node with id 1")
    assert lines.lines[1].startswith("Kafka still unreachable after 10 s (")
    assert lines.lines[2].startswith("Kafka still unreachable after 30 s (")
    assert lines.lines[3].startswith("Kafka still unreachable after 60 s (")
    held_back = int(lines.lines[3].split("(")[1].split()[0])
    assert 2390 <= held_back <= 2400  # of the 2,400 lines of the first 60 s


def test_other_lines_pass_unchanged_during_an_outage(clock: Clock, logged: tuple[logging.Logger, Lines]) -> None:
    logger, lines = logged
    unreachable(logger)
    unreachable(logger)
    logger.error("Heartbeat failed: %r", ValueError("something else"))
    logger.info("Unable connect to node with id 1 (below WARNING: not ours to hold back)")
    assert lines.lines[1:] == [
        "Heartbeat failed: ValueError('something else')",
        "Unable connect to node with id 1 (below WARNING: not ours to hold back)",
    ]


def test_a_later_outage_is_said_again_with_how_the_previous_one_ended(
    clock: Clock, logged: tuple[logging.Logger, Lines]
) -> None:
    logger, lines = logged
    for _ in range(50):
        unreachable(logger)
        clock.now += 0.1
    clock.now += 31  # the broker answered: no such line for longer than quiet_s
    unreachable(logger, node=2)
    assert len(lines.lines) == 2
    assert lines.lines[1].startswith("Kafka unreachable: Unable connect to node with id 2")
    assert "(the previous one lasted 5 s, 49 lines held back)" in lines.lines[1]


def test_an_error_object_in_the_record_counts_too(logged: tuple[logging.Logger, Lines]) -> None:
    logger, lines = logged
    for _ in range(3):
        try:
            raise ConnectionError("NodeNotReadyError: node 1 not ready")
        except ConnectionError:
            logger.exception("Unexpected error in fetcher routine")
    assert len(lines.lines) == 1


def test_the_workers_install_one_filter_on_each_kafka_client_logger() -> None:
    names = (f"test.outage.{uuid.uuid4().hex[:8]}", f"test.outage.{uuid.uuid4().hex[:8]}")
    first = install_outage_log_filter(names)
    again = install_outage_log_filter(names)
    assert first is again
    assert [logging.getLogger(name).filters for name in names] == [[first], [first]]


def test_an_outage_line_is_formatted_by_the_workers_formatter(logged: tuple[logging.Logger, Lines]) -> None:
    """faust workers log through mode's ExtensionFormatter, which wraps arguments that are not a tuple in one."""
    import io

    from mode.utils.logging import ExtensionFormatter

    logger, lines = logged
    out = logging.StreamHandler(io.StringIO())
    out.setFormatter(ExtensionFormatter(stream=io.StringIO(), fmt="%(message)s"))
    formatted: list[str] = []
    out.emit = lambda record: formatted.append(out.format(record))  # type: ignore[method-assign]
    logger.addHandler(out)
    logger.error("Failed fetch messages from %s: %s", 2, "KafkaConnectionError: Connection at 127.0.0.1:31293 closed")
    assert formatted == [lines.lines[0]]
    assert formatted[0].startswith("Kafka unreachable: Failed fetch messages from 2")


def test_a_client_asking_a_broker_that_no_longer_leads_is_said_once_then_by_how_long(
    clock: Clock, logged: tuple[logging.Logger, Lines]
) -> None:
    logger, lines = logged
    for _ in range(15 * 10):  # 15 s at ten lines a second, as the fault drill's stale approval worker wrote them
        logger.error("Failed fetch offsets from %s: %s", 3, "NotLeaderForPartitionError")
        clock.now += 0.1
    assert len(lines.lines) == 2
    assert lines.lines[0].startswith("Kafka unreachable: Failed fetch offsets from 3: NotLeaderForPartitionError")
    assert lines.lines[1].startswith("Kafka still unreachable after 10 s (")


def test_a_worker_refreshes_its_kafka_metadata_at_least_every_30_seconds(tmp_path: Path) -> None:
    """So a client that keeps asking a broker which no longer leads (aiokafka's offset reset does) heals by itself."""
    from services.common.faust_app import make_faust_app
    from services.common.settings import ClusterSettings, WorkerSettings

    app = make_faust_app("approval", ClusterSettings(), WorkerSettings(worker_id="unit", datadir=tmp_path))
    assert app.conf.consumer_metadata_max_age_ms == app.conf.producer_metadata_max_age_ms == 30_000
