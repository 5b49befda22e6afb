"""Sending from a faust worker, by what a failure means: one that passes (a leader election, a broker restart) is
retried with capped exponential back-off (services.common.retry); a record the cluster will never take as it is
(too large, corrupt) is refused at once with RecordRefusedError, for the caller to send in another form; any
other lasting failure (authorisation, an invalid topic) is raised, for the worker to stop on.

aiokafka marks passing errors `.retriable`; faust wraps them in ProducerSendError, so the causes are looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from aiokafka import errors as kafka
from faust.exceptions import NotReady

from services.common.dead_letters import RecordRefusedError
from services.common.retry import AttemptTimedOutError, Backoff, Lifecycle, StopRequestedError, explain, persist

log = logging.getLogger(__name__)

REFUSED: tuple[type[BaseException], ...] = (
    kafka.MessageSizeTooLargeError,
    kafka.RecordTooLargeError,
    kafka.RecordListTooLargeError,
    kafka.CorruptRecordException,
    kafka.InvalidMessageError,
    kafka.InvalidTimestampError,
)
"""Errors that concern the record itself."""

PASSING: tuple[type[BaseException], ...] = (
    kafka.KafkaTimeoutError,  # not marked retriable by aiokafka, but a broker that did not answer in time
    kafka.KafkaConnectionError,
    kafka.ProducerClosed,  # while the worker stops; the stop request ends the retries
    NotReady,
    AttemptTimedOutError,
    ConnectionError,
    TimeoutError,  # asyncio.TimeoutError too
)


def causes(error: BaseException) -> Iterator[BaseException]:
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        yield current
        current, seen = current.__cause__, seen + 1


def refused(error: BaseException) -> bool:
    return any(isinstance(cause, REFUSED) for cause in causes(error))


def passing(error: BaseException) -> bool:
    """True for a failure that waiting may cure."""
    if refused(error):
        return False
    return any(isinstance(cause, PASSING) or getattr(cause, "retriable", False) is True for cause in causes(error))


class Publisher:
    """Sends records through a faust app's producer, to topics of the catalogue."""

    def __init__(self, app: Any, backoff: Backoff) -> None:
        self.app = app
        self.backoff = backoff
        self._topics: dict[str, Any] = {}
        self.retried = 0
        """Send attempts made again after a failure (each one after the first of a send)."""

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )
        return self._topics[name]

    async def enqueue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> Any:
        """Hand a record to the producer, in order, without waiting: the future of its acknowledgement (the producer
        retries on its own; a failure shows when the future is awaited).

        Straight to the app's producer (faust's aiokafka driver), not through a faust Topic: a Topic's send wraps
        each record in a FutureMessage, runs faust's sensors before and after and chains a callback, for nothing
        we use (py-spy: Topic.send was 10% of a busy allocation worker's time, the producer's own send 4%)."""
        return await self.app.producer.send(topic, key, value, partition, None, headers)

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> object:
        """The acknowledgement; raises RecordRefusedError, StopRequestedError or a failure that will not pass."""

        attempts = 0

        async def attempt() -> object:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.retried += 1
            return await (await self.enqueue(topic, key, value, headers, partition))

        lifecycle: Lifecycle = self.app
        try:
            return await persist(attempt, f"publishing to {topic}", lifecycle, self.backoff, fatal=_fatal)
        except StopRequestedError:
            raise
        except Exception as error:
            if refused(error):
                raise RecordRefusedError(topic, explain(error)) from error
            raise

    async def send_all(self, records: list[Outgoing]) -> list[object | RecordRefusedError]:
        """Send records in order and wait for all of them together: one round trip for a decision's events instead
        of one per event (py-spy: waiting for each acknowledgement was 37-48% of a busy worker). The producer
        sends one batch per partition at a time, so they land in the order given. A record whose first attempt
        failed is sent again with `send`'s retries, and so is every record after it (repeats are skipped by id
        downstream), so that no later record stands alone before an earlier one. The result per record is its
        acknowledgement, or the RecordRefusedError saying why the cluster will never take it."""
        pending = [await self.enqueue(*record) for record in records]
        results: list[object | RecordRefusedError] = []
        for index, future in enumerate(pending):
            try:
                results.append(await future)
                continue
            except Exception:  # whatever it was, `send` below retries it or raises what will not pass
                log.debug("a pipelined send to %s failed; sending it and the rest one by one", records[index][0])
            for record in records[index:]:
                try:
                    results.append(await self.send(*record))
                except RecordRefusedError as refused_:
                    results.append(refused_)
            for later in pending[index + 1 :]:
                _ignore_outcome(later)  # sent again above; its own outcome no longer matters
            break
        return results


Outgoing = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None]
"""(topic, key, value, headers, partition) of one record to send."""


def _ignore_outcome(future: Any) -> None:
    """Retrieve a future's exception when it comes, so that asyncio does not report it as never retrieved."""
    if hasattr(future, "add_done_callback"):
        future.add_done_callback(lambda done: done.cancelled() or done.exception())


def _fatal(error: Exception) -> bool:
    return not passing(error)
