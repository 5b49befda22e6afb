"""The routes of the HTTP API. Every answer is JSON; every refusal names the field at fault and what to do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from schemas.base import Message
from schemas.codec import ContractError, decode_payload
from schemas.envelope import order_id_for
from schemas.intake import AddOrderDocuments, CancelOrder, SubmitOrder
from services.api.callers import Caller, CallerRefusedError, Callers
from services.api.console import add_console
from services.api.gateway import Gateway
from services.api.live import add_live_routes
from services.api.read_routes import add_read_routes
from services.ops.publish import envelope_for

MAX_BODY = 1_000_000
"""Bytes of one request body: what one Kafka record of the catalogue may carry."""
UNDECIDED = frozenset({"", "placed"})
"""Read-model statuses that are not an outcome yet: nothing recorded, or placed and not decided by approval."""


def create_app(gateway: Gateway, callers: Callers, *, poll_s: float = 0.1) -> FastAPI:
    """The API; every /v1 route answers only a caller `callers` knows (services.api.callers)."""
    registry = CollectorRegistry()
    requests = Counter(
        "h200_api_requests", "Requests answered, by route and outcome", ["route", "outcome"], registry=registry
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="h200-orderbook",
        version="1",
        summary="Submit H200 purchase orders and read what became of them",
        lifespan=lifespan,
    )
    app.state.count = lambda route, outcome: requests.labels(route, outcome).inc()

    @app.exception_handler(CallerRefusedError)
    async def refuse_caller(request: Request, refusal: CallerRefusedError) -> JSONResponse:
        route = request.url.path.split("/")[2] if request.url.path.startswith("/v1/") else ""
        requests.labels(route, refusal.code).inc()
        headers = {"WWW-Authenticate": 'Bearer realm="h200"'} if refusal.status == 401 else None
        body = {"code": refusal.code, "detail": refusal.detail}
        return JSONResponse(body, status_code=refusal.status, headers=headers)

    def caller_of(request: Request) -> Caller:
        return callers.identify(request.headers.get("authorization"))

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            raise HTTPException(413, {"code": "oversized", "detail": f"the body exceeds {MAX_BODY} bytes"})
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, {"code": "oversized", "detail": f"the body exceeds {MAX_BODY} bytes"})
        return body

    def refused(route: str, error: ContractError) -> JSONResponse:
        requests.labels(route, error.code).inc()
        status = 422 if error.code == "invalid_payload" else 400
        return JSONResponse({"code": error.code, "detail": error.detail}, status_code=status)

    async def accept(route: str, payload: Message, buyer_id: str, upstream_ref: str) -> dict[str, Any]:
        envelope = envelope_for(payload, "api")
        await gateway.publish(envelope)
        requests.labels(route, "accepted").inc()
        return {
            "command_id": str(envelope.id),
            "order_id": str(order_id_for(buyer_id, upstream_ref)),
            "status_url": f"/v1/orders/{buyer_id}/{upstream_ref}",
        }

    async def outcome(order_id: str, wait_s: float) -> dict[str, Any] | None:
        """The order as the read model has it once it shows an outcome, or None when `wait_s` passed first."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            found = await run_in_threadpool(gateway.order, order_id)
            if found is not None and str(found.get("status", "")) not in UNDECIDED:
                return found
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(poll_s)

    @app.post("/v1/orders", status_code=202)
    async def submit(request: Request, wait: float = Query(0, ge=0, le=30)) -> Response:
        """Submit an order: SubmitOrder's fields as JSON. 202 with where to read its outcome; with `wait`, up to that
        many seconds for the outcome (200 with the order as recorded, or 202 if it was not decided in time)."""
        caller = caller_of(request)
        try:
            command = decode_payload(SubmitOrder, await body_of(request))
        except ContractError as error:
            return refused("submit", error)
        callers.check_acts_for(caller, command.buyer_id)
        accepted = await accept("submit", command, command.buyer_id, command.upstream_ref)
        if wait > 0:
            found = await outcome(accepted["order_id"], wait)
            if found is not None:
                return JSONResponse({**accepted, "outcome": found}, status_code=200)
        return JSONResponse(accepted, status_code=202)

    def _bound(data: bytes, model: type[CancelOrder | AddOrderDocuments], buyer: str, ref: str) -> Message:
        """The command for the order in the path: the body may repeat buyer_id and upstream_ref but not change them."""
        command = decode_payload(model, data, defaults={"buyer_id": buyer, "upstream_ref": ref})
        if (command.buyer_id, command.upstream_ref) != (buyer, ref):
            raise ContractError(
                "invalid_payload",
                f"buyer_id/upstream_ref of the body ({command.buyer_id}/{command.upstream_ref}) differ from the "
                f"order in the path ({buyer}/{ref})",
            )
        return command

    async def order_command(
        route: str, request: Request, model: type[CancelOrder | AddOrderDocuments], buyer_id: str, upstream_ref: str
    ) -> Response:
        callers.check_acts_for(caller_of(request), buyer_id)
        try:
            command = _bound(await body_of(request), model, buyer_id, upstream_ref)
        except ContractError as error:
            return refused(route, error)
        return JSONResponse(await accept(route, command, buyer_id, upstream_ref), status_code=202)

    @app.post("/v1/orders/{buyer_id}/{upstream_ref}/cancellation", status_code=202)
    async def cancel(buyer_id: str, upstream_ref: str, request: Request) -> Response:
        """Cancel an order: CancelOrder's fields (reason, requested_at; buyer_id and upstream_ref from the path)."""
        return await order_command("cancel", request, CancelOrder, buyer_id, upstream_ref)

    @app.post("/v1/orders/{buyer_id}/{upstream_ref}/documents", status_code=202)
    async def add_documents(buyer_id: str, upstream_ref: str, request: Request) -> Response:
        """File more documents for an order: AddOrderDocuments' fields (documents, requested_at)."""
        return await order_command("documents", request, AddOrderDocuments, buyer_id, upstream_ref)

    @app.get("/v1/orders/{buyer_id}/{upstream_ref}")
    async def order(buyer_id: str, upstream_ref: str, request: Request) -> dict[str, Any]:
        """An order as recorded: status, quantities, reasons, the policy revisions applied and its decision trail."""
        callers.check_reads(caller_of(request), buyer_id)
        order_id = str(order_id_for(buyer_id, upstream_ref))
        found = await run_in_threadpool(gateway.order, order_id)
        if found is None:
            raise HTTPException(
                404,
                {
                    "code": "unknown_order",
                    "detail": f"no order {buyer_id}/{upstream_ref} (id {order_id}) in the read model: not submitted, "
                    "or not recorded yet (a submission is recorded within moments; ask again)",
                },
            )
        return found

    @app.get("/v1/buyers/{buyer_id}/orders")
    async def buyer_orders(buyer_id: str, request: Request) -> dict[str, Any]:
        callers.check_reads(caller_of(request), buyer_id)
        return {"buyer_id": buyer_id, "orders": await run_in_threadpool(gateway.buyer_orders, buyer_id)}

    add_read_routes(app, gateway, callers, caller_of)
    add_live_routes(app, gateway, callers, caller_of, poll_s=max(poll_s, 0.05))
    add_console(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"service": "api", "status": "running"}

    @app.get("/ready")
    async def ready() -> Response:
        is_ready, reason = await run_in_threadpool(gateway.ready)
        return JSONResponse({"ready": is_ready, "reason": reason}, status_code=200 if is_ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app
