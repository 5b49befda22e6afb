"""The projector, the clock and the API use kafka-python, which logs each failed connection on a dozen modules'
loggers. With the outage filter on the handlers, a client that cannot reach any broker gives one line and then
milestones, not a line per attempt; without it the same client floods the log (the control)."""

from __future__ import annotations

import logging
import socket
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from services.common.outage_log import install_outage_log_filter_on_handlers


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def lines_while_unreachable(filtered: bool, seconds: float = 6.0) -> tuple[list[str], Collect]:
    kafka_logger = logging.getLogger("kafka")
    saved = kafka_logger.level, kafka_logger.propagate, list(kafka_logger.handlers)
    collect = Collect()
    kafka_logger.handlers, kafka_logger.propagate = [collect], False
    kafka_logger.setLevel(logging.WARNING)
    try:
        if filtered:
            install_outage_log_filter_on_handlers(kafka_logger)
        started = time.monotonic()
        consumer: KafkaConsumer | None = None
        while time.monotonic() - started < seconds:
            try:
                if consumer is None:
                    consumer = KafkaConsumer(
                        bootstrap_servers=f"127.0.0.1:{closed_port()}",
                        reconnect_backoff_ms=50,
                        reconnect_backoff_max_ms=200,
                        bootstrap_timeout_ms=int(seconds * 1000),
                    )
                consumer.poll(timeout_ms=200)
            except KafkaError:
                consumer = None  # kafka-python gives up on a bootstrap that never answers: start another
        if consumer is not None:
            consumer.close()
        return collect.lines, collect
    finally:
        kafka_logger.setLevel(saved[0])
        kafka_logger.propagate = saved[1]
        kafka_logger.handlers = saved[2]


def test_without_the_filter_kafka_python_logs_every_failed_attempt() -> None:
    lines, _ = lines_while_unreachable(filtered=False)
    assert len(lines) > 20, lines


def test_with_the_filter_an_outage_is_one_line_then_how_long_it_has_lasted() -> None:
    lines, collect = lines_while_unreachable(filtered=True)
    assert 1 <= len(lines) <= 3, lines
    assert lines[0].split(" ", 2)[2].startswith("Kafka unreachable: "), lines
    shared = collect.filters[0]
    assert getattr(shared, "held_back", 0) > 20


def test_the_filter_on_the_handlers_leaves_other_loggers_lines_alone() -> None:
    """Our own FailureLog lines (a Redis outage in the projector, say) pass the handler's filter untouched: they are
    not kafka-python's, and not a Kafka outage."""
    root = logging.getLogger("outage-test-root")
    collect = Collect()
    root.handlers, root.propagate = [collect], False
    install_outage_log_filter_on_handlers(root)
    projector = logging.getLogger("outage-test-root.h200.projector")
    line = "writing the read models to Redis at 127.0.0.1:6379 failed: Connection refused; retrying with back-off"
    for _ in range(5):
        projector.warning(line)
    assert [entry.split(" ", 2)[2] for entry in collect.lines] == [line] * 5
