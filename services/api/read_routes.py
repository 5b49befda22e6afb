"""The read routes of the API for the auditor and the operator: the ledger at a moment and filtered, supply against
demand over time, an order's trail, and dead letters (list, show, re-drive: the operator's one write).

Every answer comes from the projector's read models or the dead-letter topics through services.api.reads,
services.api.supply and services.api.letters; nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from schemas.envelope import order_id_for
from schemas.topics import SERVICES
from services.api.callers import OPS, Caller, Callers
from services.api.gateway import Gateway, typed
from services.api.letters import LetterNotFoundError, RedriveNotHereError, detail, find, listing, redrive
from services.api.reads import ledger_document, moment_of, parse_as_of
from services.api.supply import supply_and_demand
from services.ops.redrive import RedriveRefusedError
from services.replay.records import ReplayError

Count = Callable[[str, str], None]


def _answer(route: str, count: Count, status: int, code: str, text: str) -> JSONResponse:
    count(route, code)
    return JSONResponse({"code": code, "detail": text}, status_code=status)


def _order_and_trail(gateway: Gateway, order_id: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    model = gateway.read_model()
    return model.order(order_id), model.trail(order_id)


def add_read_routes(app: FastAPI, gateway: Gateway, callers: Callers, caller_of: Callable[[Request], Caller]) -> None:
    count: Count = app.state.count

    @app.get("/v1/caller")
    async def caller(request: Request) -> dict[str, Any]:
        """Who the token names and what it may do here (the console asks it first)."""
        who = caller_of(request)
        return {
            "caller": who.name,
            "buyer_id": who.buyer_id,
            "reads_everything": who.buyer_id is None,
            "may_redrive": who.name == OPS,
        }

    @app.get("/v1/ledger")
    async def ledger(
        request: Request,
        as_of: str | None = Query(None, description="ISO 8601 with a zone: the ledger as it stood then"),
        buyer: str | None = Query(None, description="only this buyer's lines and totals"),
        batch: str | None = Query(None, description="only this batch's lines and totals"),
    ) -> Response:
        """Who got which batches, how many and when: the lines and replay's totals, at `as_of` (default now), for
        `buyer` and `batch` when given (auditor or operator). 400 for a bad time, 404 for an unknown buyer or batch."""
        callers.check_reads(caller_of(request), None)
        try:
            moment = parse_as_of(as_of)
        except ReplayError as error:
            return _answer("ledger", count, 400, "invalid_as_of", str(error))
        try:
            document = await run_in_threadpool(lambda: ledger_document(gateway.read_model(), moment, buyer, batch))
        except ReplayError as error:
            return _answer("ledger", count, 404, "unknown_selection", str(error))
        count("ledger", "answered")
        return JSONResponse(document)

    @app.get("/v1/totals")
    async def totals(request: Request, buyer: str | None = Query(None)) -> dict[str, Any]:
        """Supply against demand over time: chips manufactured, asked for, approved, allocated, shipped and
        delivered, as running totals at each moment one changed (auditor or operator)."""
        callers.check_reads(caller_of(request), None)
        count("totals", "answered")
        return await run_in_threadpool(lambda: supply_and_demand(gateway.read_model(), buyer))

    @app.get("/v1/orders/{buyer_id}/{upstream_ref}/trail")
    async def trail(buyer_id: str, upstream_ref: str, request: Request) -> Response:
        """An order's decision trail in time order: each event's time, type, id and what it did (the buyer's own
        system, the auditor or the operator)."""
        callers.check_reads(caller_of(request), buyer_id)
        order_id = str(order_id_for(buyer_id, upstream_ref))
        order, entries = await run_in_threadpool(_order_and_trail, gateway, order_id)
        if not order and not entries:
            return _answer(
                "trail", count, 404, "unknown_order", f"no order {buyer_id}/{upstream_ref} (id {order_id}) recorded"
            )
        count("trail", "answered")
        # kept in the order the projector applied them, which interleaves topics: shown in time order (stable)
        entries.sort(key=lambda entry: moment_of(str(entry.get("at", ""))) or datetime.min.replace(tzinfo=UTC))
        return JSONResponse({**typed(order), "order_id": order_id, "trail": entries})

    def service_refused(service: str) -> JSONResponse | None:
        if service in SERVICES:
            return None
        return _answer(
            "dead-letters", count, 404, "unknown_service", f"no service {service!r}; one of {', '.join(SERVICES)}"
        )

    @app.get("/v1/dead-letters")
    async def dead_letters(
        request: Request, service: str | None = Query(None), code: str | None = Query(None)
    ) -> Response:
        """Every dead letter of the h200.dlq.<service> topics read to their end, with counts per service and code
        (auditor or operator); `service`, `code` narrow it."""
        callers.check_reads(caller_of(request), None)
        refused = service_refused(service) if service else None
        if refused is not None:
            return refused
        found = await run_in_threadpool(gateway.dead_letters, [service] if service else list(SERVICES))
        count("dead-letters", "answered")
        return JSONResponse(listing(found, code))

    @app.get("/v1/dead-letters/{service}/{offset}")
    async def dead_letter(service: str, offset: int, request: Request) -> Response:
        """One dead letter: its dlq.* headers, value, whether it decodes now and what a re-drive would send."""
        callers.check_reads(caller_of(request), None)
        refused = service_refused(service)
        if refused is not None:
            return refused
        try:
            letter = find(await run_in_threadpool(gateway.dead_letters, [service]), service, offset)
        except LetterNotFoundError as missing:
            return _answer("dead-letters", count, 404, "unknown_dead_letter", str(missing))
        count("dead-letters", "answered")
        return JSONResponse(detail(letter))

    @app.post("/v1/dead-letters/{service}/{offset}/redrive")
    async def redrive_letter(
        service: str,
        offset: int,
        request: Request,
        dry_run: bool = Query(False, description="say what would be sent; send nothing"),
        to: str | None = Query(None, description="another catalogue topic (default: the source topic)"),
    ) -> Response:
        """Send a dead letter again under a new id caused by the original, as `h200 dead-letters redrive` does
        (operator only). 200 sent, would send or already sent; 409 refused, saying why."""
        callers.check_redrives(caller_of(request))
        refused = service_refused(service)
        if refused is not None:
            return refused
        try:
            letter = find(await run_in_threadpool(gateway.dead_letters, [service]), service, offset)
            document = await run_in_threadpool(redrive, letter, to, dry_run, gateway.sent_before, gateway.send)
        except LetterNotFoundError as missing:
            return _answer("redrive", count, 404, "unknown_dead_letter", str(missing))
        except RedriveRefusedError as no:
            return _answer("redrive", count, 409, "redrive_refused", str(no))
        except RedriveNotHereError as elsewhere:
            return _answer("redrive", count, 409, "redrive_elsewhere", str(elsewhere))
        count("redrive", document["outcome"])
        return JSONResponse(document)
