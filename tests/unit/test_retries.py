"""Publishing waits out failures that pass, gives up at once on those that cannot, logs an outage by its
phases and never holds up a service asked to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import errors as kafka
from faust.exceptions import ProducerSendError

from services.common.publishing import passing, refused
from services.common.retry import Backoff, FailureLog, StopRequestedError, persist

QUICK = Backoff(first_s=0.001, max_s=0.004, attempt_timeout_s=5.0)


class Service:
    """A lifecycle whose stop can be requested by the test."""

    def __init__(self) -> None:
        self.should_stop = False
        self.waits: list[float] = []

    async def sleep(self, n: float) -> None:
        self.waits.append(n)
        await asyncio.sleep(0)


def failing(times: int, error: Exception, result: str = "acked") -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result

    return calls, attempt


def wrapped(error: Exception) -> ProducerSendError:
    """What faust raises from send(): the aiokafka error as the cause."""
    try:
        raise ProducerSendError(f"Error while sending: {error!r}") from error
    except ProducerSendError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [kafka.KafkaTimeoutError(), kafka.NotLeaderForPartitionError(), kafka.KafkaConnectionError(), ConnectionError()],
)
def test_failures_that_pass_are_retried(error: Exception) -> None:
    assert passing(error) and passing(wrapped(error)) and not refused(error)


@pytest.mark.parametrize(
    "error", [kafka.MessageSizeTooLargeError(), kafka.RecordTooLargeError(), kafka.CorruptRecordException()]
)
def test_a_record_the_cluster_will_never_take_is_refused_not_retried(error: Exception) -> None:
    assert refused(error) and refused(wrapped(error)) and not passing(wrapped(error))


@pytest.mark.parametrize(
    "error", [kafka.TopicAuthorizationFailedError(), kafka.InvalidTopicError(), TypeError("a defect")]
)
def test_other_lasting_failures_are_not_retried(error: Exception) -> None:
    assert not passing(error) and not refused(error)


def test_a_passing_failure_is_retried_with_capped_exponential_back_off() -> None:
    service = Service()
    calls, attempt = failing(5, kafka.KafkaTimeoutError())
    assert asyncio.run(persist(attempt, "publishing to t", service, QUICK)) == "acked"
    assert len(calls) == 6
    assert service.waits == [0.001, 0.002, 0.004, 0.004, 0.004]


def test_a_failure_said_to_be_fatal_is_raised_at_once() -> None:
    calls, attempt = failing(1, kafka.TopicAuthorizationFailedError())
    with pytest.raises(kafka.TopicAuthorizationFailedError):
        asyncio.run(persist(attempt, "t", Service(), QUICK, fatal=lambda e: not passing(e)))
    assert len(calls) == 1


def test_a_stop_request_ends_the_retries() -> None:
    service = Service()

    async def attempt() -> None:
        service.should_stop = len(service.waits) >= 2
        raise kafka.KafkaConnectionError()

    with pytest.raises(StopRequestedError):
        asyncio.run(persist(attempt, "publishing to t", service, QUICK))


def test_a_stop_request_ends_an_attempt_that_hangs() -> None:
    service = Service()

    async def hangs() -> None:
        await asyncio.sleep(3600)

    async def go() -> None:
        task = asyncio.ensure_future(persist(hangs, "publishing to t", service, QUICK))
        await asyncio.sleep(0.05)
        service.should_stop = True
        await asyncio.wait_for(task, timeout=2)

    with pytest.raises(StopRequestedError):
        asyncio.run(go())


def test_cancelling_the_retries_is_never_swallowed() -> None:
    async def go() -> None:
        _, attempt = failing(10**9, kafka.KafkaConnectionError())
        slow = Backoff(first_s=0.05, max_s=0.05)
        task = asyncio.ensure_future(persist(attempt, "t", Service(), slow))
        await asyncio.sleep(0.05)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())


def test_an_outage_is_logged_once_then_by_how_long_it_has_lasted(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    failures = FailureLog("publishing to h200.orders", logging.getLogger("test"), clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test"):
        for _ in range(700):  # one attempt a second for almost twelve minutes
            failures.failed(kafka.KafkaConnectionError("broker away"), 1.0)
            now[0] += 1.0
        failures.succeeded()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == (
        "publishing to h200.orders failed: KafkaConnectionError: KafkaConnectionError: broker away; "
        "retrying with back-off"
    )
    assert [line.split(" after ")[1].split(" s ")[0] for line in lines[1:-1]] == [
        "10",
        "30",
        "60",
        "120",
        "300",
        "600",
    ]
    assert "broker away" not in "".join(lines[1:])
    assert lines[-1] == "publishing to h200.orders succeeded after 700 s and 700 failed attempts"
