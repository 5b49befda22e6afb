"""Batches of the records a faust stream delivers, without waking up while none arrive.

faust's `Stream.take_events(max_, within)` waits for its buffer to fill with a timeout of `within`, in a loop:
every `within` seconds, records or not, the agent wakes and mode's `Service.wait` starts three tasks and a timer
to wait again. At the 5 ms our agents batch within, that is 200 wake-ups a second for each agent of each worker,
forever: py-spy put 44% of the busy time of allocation's routers in that wait, and a worker with no traffic at all
spent a tenth of a core on it (README, "Throughput and recovery benchmarks").

`take_events` here keeps faust's contract (at most `max_` events a batch; a batch's events acknowledged only after
the body is done with them, so offsets are committed past records whose work is finished) but sleeps until a
record arrives, and only then waits at most `within` for the batch to fill. Records that arrive while the body
runs wait in the buffer for the next batch, up to `max_` (then faust's own flow control holds the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


async def take_events(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Lists of up to `max_` events of `stream`, in order, as they arrive (see the module's docstring)."""
    buffer: list[Any] = []
    arrived = asyncio.Event()  # the buffer holds at least one event
    full = asyncio.Event()  # ... holds max_ events
    room = asyncio.Event()  # ... holds fewer than max_ events
    room.set()

    async def add_to_buffer(value: Any) -> Any:
        # faust's passive drainer runs each event of the stream through its processors, one at a time: waiting here
        # holds the stream, and faust then stops fetching for it once its queue is full.
        while len(buffer) >= max_:
            room.clear()
            await room.wait()
        event = stream.current_event
        if event is None:
            raise RuntimeError(f"{stream}: an event came with no current_event; faust's take contract changed")
        buffer.append(event)
        arrived.set()
        if len(buffer) >= max_:
            full.set()
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged below, once the body is done with them
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))  # what faust's own take_events does to be fed in the background
    try:
        while not stream.should_stop:
            await arrived.wait()
            if len(buffer) < max_:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(full.wait(), within)
            # The buffer never holds more than max_ (add_to_buffer waits for room first): the batch is all of it.
            events = buffer[:]
            buffer.clear()
            arrived.clear()
            full.clear()
            room.set()
            yield events
            for event in events:
                await stream.ack(event)
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
