"""While a broker is away, aiokafka logs every failed connection, fetch and metadata request: about 1,400 lines a
minute per worker. This filter lets the first of them through, then one line at 10, 30, 60, 120, 300 s (and every
300 s after) with how long the outage has lasted and how many lines it held back, and notes at the first line of a
later outage how the previous one ended. Everything else passes unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from services.common.retry import MILESTONES_S

CONNECTION_FAILURES = (
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Unable connect to",
    "Connect call failed",
    "Connection refused",
    "Unable to update metadata",
    "coordinator dead",
    "Coordinator Request failed",
    "Heartbeat send request failed",
    # A client asking a broker that no longer leads a partition (after a leader or controller failover): the fault
    # drill saw 2,261 such lines in four minutes from one worker whose metadata stayed stale (#11).
    "NotLeaderForPartitionError",
    # kafka-python 3's wording (the projector, the clock and the API): "Connection failed: KafkaConnectionError ...",
    # "Bootstrap bootstrap-0 not ready; waiting 0.10 secs", "Request timed out after ... ms".
    "not ready; waiting",
    "Request timed out after",
)
"""What the lines about an unreachable broker contain (aiokafka 0.14's wording, or the error's name)."""

KAFKA_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.client",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
    "faust.transport.drivers.aiokafka",
)
"""A filter on a logger sees only what is logged on that very logger, not on its children: each is named."""

QUIET_S = 30.0
"""An outage is over once no such line has come for this long."""


def about_unreachable_broker(record: logging.LogRecord) -> bool:
    if record.levelno < logging.WARNING:
        return False
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return any(marker in text for marker in CONNECTION_FAILURES)


class OutageLogFilter(logging.Filter):
    """Says what is wrong once, then how long it has lasted; passes every other line."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, quiet_s: float = QUIET_S, only_from: str = ""
    ) -> None:
        """`only_from`: judge only the records of this logger and its children (a filter on a handler sees every
        logger's records, our own FailureLog lines about Redis among them, which are not a Kafka outage)."""
        super().__init__()
        self.clock = clock
        self.only_from = only_from
        self.quiet_s = quiet_s
        self.since: float | None = None
        self.last = 0.0
        self.held_back = 0
        self._next = 0
        self._ended = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if self.only_from and not (record.name == self.only_from or record.name.startswith(self.only_from + ".")):
            return True
        if not about_unreachable_broker(record):
            return True
        now = self.clock()
        if self.since is not None and now - self.last >= self.quiet_s:
            lasted = self.last - self.since
            self._ended = f" (the previous one lasted {lasted:.0f} s, {self.held_back} lines held back)"
            self.since = None
        self.last = now
        if self.since is None:
            self.since, self.held_back, self._next = now, 0, 0
            self._rewrite(record, f"Kafka unreachable: {record.getMessage()}{self._ended}; similar lines held back")
            self._ended = ""
            return True
        lasted = now - self.since
        if lasted < self._due():
            self.held_back += 1
            return False
        self._next += 1
        self._rewrite(
            record,
            f"Kafka still unreachable after {lasted:.0f} s ({self.held_back} similar lines held back); "
            f"now: {record.getMessage()}",
        )
        return True

    def _due(self) -> float:
        if self._next < len(MILESTONES_S):
            return MILESTONES_S[self._next]
        return MILESTONES_S[-1] * (self._next - len(MILESTONES_S) + 2)

    @staticmethod
    def _rewrite(record: logging.LogRecord, text: str) -> None:
        # An empty tuple, not None: faust's formatter (mode's ExtensionFormatter) wraps any other value in a tuple,
        # and `text % (None,)` then fails: a logging-error traceback instead of the outage's one line.
        record.msg, record.args = text, ()


def _install(filterers: list[logging.Filterer], made: Callable[[], OutageLogFilter]) -> OutageLogFilter:
    """One filter shared by `filterers` (an outage is one outage, whichever of them reports it); installing it again
    returns the one already there."""
    for filterer in filterers:
        for existing in filterer.filters:
            if isinstance(existing, OutageLogFilter):
                return existing
    shared = made()
    for filterer in filterers:
        filterer.addFilter(shared)
    return shared


def install_outage_log_filter_on_handlers(root: logging.Logger | None = None) -> OutageLogFilter:
    """For processes whose Kafka client is kafka-python (the projector and the API): one filter on the root logger's
    handlers, which see what every child logger propagates (kafka-python logs on a dozen modules' loggers,
    `kafka.net.manager` and `kafka.net.connection` most: about 130 lines in 15 s with no broker), judging only
    kafka-python's records. Call it after logging.basicConfig."""
    return _install(list((root or logging.getLogger()).handlers), partial(OutageLogFilter, only_from="kafka"))


def install_outage_log_filter(loggers: tuple[str, ...] = KAFKA_CLIENT_LOGGERS) -> OutageLogFilter:
    """The filter on each of aiokafka's and faust's loggers (the workers): a filter on a logger sees only what is
    logged on that very logger, so each is named."""
    return _install([logging.getLogger(name) for name in loggers], OutageLogFilter)
