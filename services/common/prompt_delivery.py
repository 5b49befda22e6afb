"""faust's consumer, handing each record to the agents without four asyncio tasks when nothing has to wait.

For every record it fetches, faust's `Consumer._drain_messages` runs `await self.wait_first(callback(message),
self.suspend_flow.wait())`: deliver the record to the streams of its topic, unless the flow is suspended (a
rebalance began) first. mode's `wait_first` makes that a task for each of the two, two more for the stop and crash
events, and an `asyncio.wait` over the four: 9% of a busy approval or allocation worker (py-spy, the pipeline
bench), for a delivery that nearly always completes at once (a put into a stream's queue with room).

`PromptConsumer.wait_first` runs the delivery inline first. If it completes without waiting, that is the result;
the flow cannot have been suspended in between, since nothing else ran. If it has to wait (a stream's queue is
full), what is left of it is handed to mode's own `wait_first` with the suspension event, exactly as faust does:
a rebalance still abandons a delivery that waits. Any other call goes to mode's as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from mode.services import WaitResults


class Continuation:
    """What is left of a coroutine that has run up to its first wait (`waiting`, what it yielded): awaiting this
    hands that wait to the task that awaits, then drives the coroutine on, as if it had been awaited throughout."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        waiting = self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as error:  # a cancellation (or any error) thrown into the awaiting task
                try:
                    waiting = self.coroutine.throw(error)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = self.coroutine.send(sent)
            except StopIteration as done:
                return done.value


async def resume(coroutine: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    return await Continuation(coroutine, waiting)


def start(coroutine: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run a coroutine up to its first wait: (True, its result) if it finished, (False, what it waits on) if not."""
    try:
        waiting = coroutine.send(None)
    except StopIteration as done:
        return True, done.value
    return False, waiting


def _waits_on(coroutine: Any, event: asyncio.Event) -> bool:
    """Whether `coroutine` is `event.wait()`, not started yet."""
    code = getattr(coroutine, "cr_code", None)
    frame = getattr(coroutine, "cr_frame", None)
    return code is asyncio.Event.wait.__code__ and frame is not None and frame.f_locals.get("self") is event


class PromptConsumer(Consumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if (
            timeout is None
            and len(coros) == 2
            and asyncio.iscoroutine(coros[0])
            and _waits_on(coros[1], self.suspend_flow)
            and not self.suspend_flow.is_set()
            and not self.should_stop
        ):
            delivery, suspended = coros
            try:
                finished, outcome = start(delivery)
            except BaseException:
                suspended.close()  # the delivery failed at once: raised here, as mode's wait_first would
                raise
            if finished:
                suspended.close()  # never awaited: closed, so that asyncio does not warn of it
                return WaitResults([delivery], [outcome], False)
            return await super().wait_first(resume(delivery, outcome), suspended)
        return await super().wait_first(*coros, timeout=timeout)
