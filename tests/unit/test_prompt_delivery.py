"""services.common.prompt_delivery: a record's delivery runs inline when it need not wait; when it must, what is
left of it is awaited as faust awaits it (a suspension of the flow abandons it), and nothing of it is lost or
run twice."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.prompt_delivery import PromptConsumer, resume, start


def consumer() -> Any:
    """A PromptConsumer with only what mode's Service.wait_first and the fast path read (no broker, no thread)."""
    made: Any = object.__new__(PromptConsumer)
    made.suspend_flow = asyncio.Event()
    made._stopped = asyncio.Event()
    made._crashed = asyncio.Event()
    made._loop = asyncio.get_running_loop()
    made.tasks: list[asyncio.Task[Any]] = []
    return made


def test_a_delivery_that_need_not_wait_runs_inline_without_a_task() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        created: list[object] = []
        loop.set_task_factory(lambda loop, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=loop, **kw))
        delivered: list[str] = []

        async def deliver() -> str:
            delivered.append("record")
            return "put"

        made = consumer()
        result = await made.wait_first(deliver(), made.suspend_flow.wait())
        loop.set_task_factory(None)
        assert delivered == ["record"]
        assert result.results == ["put"] and not result.stopped
        assert created == [], "no task for a delivery that completed inline"

    asyncio.run(scenario())


def test_a_delivery_that_waits_completes_once_where_it_left_off() -> None:
    async def scenario() -> None:
        room = asyncio.get_running_loop().create_future()
        at_the_wait = asyncio.Event()
        steps: list[str] = []

        async def deliver() -> str:
            steps.append("before the wait")
            at_the_wait.set()
            await room  # a stream's queue is full
            steps.append("after the wait")
            return "put"

        made = consumer()
        waiting = asyncio.ensure_future(made.wait_first(deliver(), made.suspend_flow.wait()))
        await asyncio.wait_for(at_the_wait.wait(), 2.0)
        await asyncio.sleep(0)  # a turn of the loop, no time: the delivery stays where it waits
        assert steps == ["before the wait"] and not waiting.done()
        room.set_result(None)
        result = await waiting
        assert steps == ["before the wait", "after the wait"]
        assert result.results == ["put"] and not result.stopped

    asyncio.run(scenario())


def test_a_suspension_of_the_flow_abandons_a_delivery_that_waits() -> None:
    async def scenario() -> None:
        room, at_the_wait, abandoned = asyncio.Event(), asyncio.Event(), asyncio.Event()
        steps: list[str] = []

        async def deliver() -> None:
            try:
                at_the_wait.set()
                await room.wait()
                steps.append("delivered")
            except asyncio.CancelledError:
                steps.append("abandoned")
                abandoned.set()
                raise

        made = consumer()
        suspended = made.suspend_flow.wait()
        waiting = asyncio.ensure_future(made.wait_first(deliver(), suspended))
        await asyncio.wait_for(at_the_wait.wait(), 2.0)
        made.suspend_flow.set()  # a rebalance began
        result = await asyncio.wait_for(waiting, 2.0)  # answered at once, not when the delivery could go on
        assert suspended in result.done, result
        await asyncio.wait_for(abandoned.wait(), 2.0)
        room.set()
        for _ in range(10):
            await asyncio.sleep(0)  # turns of the loop, no time: a delivery still alive would go on now
        assert steps == ["abandoned"], "the delivery went on after the flow was suspended"

    asyncio.run(scenario())


def test_with_the_flow_suspended_the_fast_path_is_not_taken() -> None:
    async def scenario() -> None:
        delivered: list[str] = []

        async def deliver() -> None:
            delivered.append("record")

        made = consumer()
        made.suspend_flow.set()
        suspended = made.suspend_flow.wait()
        result = await made.wait_first(deliver(), suspended)
        # mode's wait_first decided, and saw the suspension (the delivery may or may not have run as well).
        assert suspended in result.done

    asyncio.run(scenario())


def test_start_and_resume_drive_a_coroutine_as_awaiting_it_would() -> None:
    async def scenario() -> None:
        later = asyncio.get_running_loop().create_future()

        async def work() -> int:
            first = await later
            await asyncio.sleep(0)
            return first + 1

        async def at_once() -> str:
            return "done"

        assert start(at_once()) == (True, "done")
        coroutine = work()
        finished, waiting = start(coroutine)
        assert not finished and waiting is later
        asyncio.get_running_loop().call_soon(later.set_result, 41)
        assert await resume(coroutine, waiting) == 42

    asyncio.run(scenario())
