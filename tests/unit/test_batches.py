"""services.common.batches.take_events on a real faust agent (faust's test context, no broker): batches of what
arrived, acknowledged only after the body, and no wake-ups while nothing arrives (faust's own take_events wakes
every `within`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust

from services.common.batches import take_events

Take = Callable[[Any, int, float], AsyncIterator[Any]]


def faust_take(stream: Any, max_: int, within: float) -> AsyncIterator[Any]:
    return stream.take_events(max_, within=within)  # type: ignore[no-any-return]


class Batches:
    """The batches the agent's body was given, and a way to wait for them (not for a length of time)."""

    def __init__(self) -> None:
        self.taken: list[list[Any]] = []
        self.changed = asyncio.Event()

    def add(self, events: list[Any]) -> None:
        self.taken.append(events)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.taken) < count:
                self.changed.clear()
                await self.changed.wait()

    async def acknowledged(self) -> bool:
        """Whether every event taken is acknowledged, once the agent has had its turns to finish (take_events
        acknowledges a batch when the body hands control back, a few loop iterations later)."""
        for _ in range(100):
            if all(event.message.acked for batch in self.taken for event in batch):
                return True
            await asyncio.sleep(0)  # a turn of the loop, no time
        return False


def run_agent(take: Take, within: float, body: Callable[[Any], Any]) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # faust's services take the current loop, and would make one each otherwise
    app = faust.App(f"unit-batches-{id(body)}", store="memory://", web_enabled=False)
    batches = Batches()

    @app.agent()
    async def agent(stream: Any) -> None:
        async for events in take(stream, 3, within):
            batches.add(events)
            # Inside the body: none of this batch's events is acknowledged yet, even across a turn of the loop.
            assert not any(event.message.acked for event in events)
            await asyncio.sleep(0)
            assert not any(event.message.acked for event in events)

    async def scenario() -> None:
        async with agent.test_context() as running:
            await body((running, batches))

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        # faust's consumer made a loop for its thread, which a test context never starts (nor closes).
        consumer_loop = getattr(getattr(app.consumer, "_thread", None), "thread_loop", None)
        if consumer_loop is not None and not consumer_loop.is_closed():
            consumer_loop.close()


def test_batches_hold_at_most_max_in_order_and_the_rest_after_within() -> None:
    async def body(context: tuple[Any, Batches]) -> None:
        running, batches = context
        for value in range(7):
            await running.put(value)
        await batches.wait_for(3)
        assert [[event.value for event in batch] for batch in batches.taken] == [[0, 1, 2], [3, 4, 5], [6]]
        # Each batch acknowledged once the body was done with it.
        assert await batches.acknowledged()

    run_agent(take_events, 0.05, body)


def created_tasks_while_idle(take: Take) -> int:
    """Tasks the loop created in 0.3 s of an agent with nothing to read, batching within 5 ms."""
    created = [0]

    async def body(context: tuple[Any, Batches]) -> None:
        running, batches = context
        await running.put("first")
        await batches.wait_for(1)
        assert await batches.acknowledged()
        loop = asyncio.get_running_loop()
        default = loop.get_task_factory()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> Any:
            created[0] += 1
            return default(loop, coro, **options) if default else asyncio.Task(coro, loop=loop, **options)

        loop.set_task_factory(counting)
        await asyncio.sleep(0.3)  # the idle stretch being measured (not a wait for something to happen)
        loop.set_task_factory(default)

    run_agent(take, 0.005, body)
    return created[0]


def test_an_agent_with_nothing_to_read_sleeps() -> None:
    ours, fausts = created_tasks_while_idle(take_events), created_tasks_while_idle(faust_take)
    # faust's wakes every 5 ms and starts three tasks each time; ours waits for a record.
    assert fausts > 50, f"the control did not wake as faust's take_events does ({fausts} tasks)"
    assert ours < 5, f"{ours} tasks created by an idle agent"
