"""Live changes as server-sent events (`GET /v1/events`, text/event-stream), for the auditor and the operator.

The read models keep no log of their changes, only the position they applied up to in each partition (stored with
the data, services.projector.store). So an event says the read models moved: its id is `<namespace>:<position>`
(the sum of those positions, which only grows within a namespace), its data the position, which topics moved since
the last event and the dead-letter counts; a reader then asks for what it shows (the ledger, the totals). Several
changes between two polls arrive as one event. A client that reconnects with `Last-Event-ID` gets an event at once
if the read models moved past it (or another namespace took over after a rebuild), and otherwise the next one:
nothing it shows can be missed, because every event stands for the whole state at its position.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.api.callers import Caller, Callers
from services.api.gateway import Gateway

KEEP_ALIVE_S = 15.0
"""A comment line this often, so proxies and browsers keep an idle stream open."""
RETRY_MS = 2000


def snapshot(gateway: Gateway) -> tuple[str, dict[tuple[str, int], int], dict[str, Any]]:
    """(event id, positions, data) of the read models now."""
    model = gateway.read_model()
    positions = model.positions()
    position = sum(positions.values())
    data = {"namespace": model.ns, "position": position, "dead_letters": model.dead_letters()}
    return f"{model.ns}:{position}", positions, data


def moved(before: dict[tuple[str, int], int] | None, now: dict[tuple[str, int], int]) -> list[str]:
    """The topics whose position changed (all of them when there is nothing to compare with)."""
    if before is None:
        return sorted({topic for topic, _ in now})
    return sorted({spot[0] for spot, offset in now.items() if before.get(spot) != offset})


def frame(event_id: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: changed\ndata: {json.dumps(data, sort_keys=True)}\n\n"


def add_live_routes(
    app: FastAPI, gateway: Gateway, callers: Callers, caller_of: Callable[[Request], Caller], poll_s: float
) -> None:
    count = app.state.count

    async def changes(request: Request, last_id: str | None, max_events: int | None) -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        sent, before, quiet = 0, None, 0.0
        while max_events is None or sent < max_events:
            event_id, positions, data = await run_in_threadpool(snapshot, gateway)
            if event_id != last_id:
                yield frame(event_id, {**data, "moved": moved(before, positions)})
                sent, last_id, before, quiet = sent + 1, event_id, positions, 0.0
                continue
            if await request.is_disconnected():
                return
            await asyncio.sleep(poll_s)
            quiet += poll_s
            if quiet >= KEEP_ALIVE_S:
                yield ": still here\n\n"
                quiet = 0.0

    @app.get("/v1/events", response_class=StreamingResponse)
    async def events(
        request: Request,
        max_events: int | None = Query(None, ge=1, description="close the stream after that many events"),
    ) -> StreamingResponse:
        """Server-sent events: one `changed` event each time the read models move (auditor or operator). Send
        `Last-Event-ID` to resume: an event comes at once if they moved since that id."""
        callers.check_reads(caller_of(request), None)
        count("events", "opened")
        return StreamingResponse(
            changes(request, request.headers.get("last-event-id"), max_events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
