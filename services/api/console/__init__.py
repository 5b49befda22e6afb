"""The ops console: one static page and its script, served by the API at /console.

The page holds no data and no secret: the operator (or the auditor) types a token, kept in the tab's
sessionStorage, and the script calls the same /v1 routes with it as any client would. Everything it draws is
drawn in the browser (inline SVG), from files in this package: nothing is fetched from another origin, which the
Content-Security-Policy also forbids.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse, Response

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def asset(name: str) -> bytes:
    return files(__name__).joinpath(name).read_bytes()


def add_console(app: FastAPI) -> None:
    @app.get("/console", include_in_schema=False)
    async def console_page() -> Response:
        return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=_headers())

    @app.get("/console/", include_in_schema=False)
    async def console_slash() -> Response:
        return RedirectResponse("/console")

    @app.get("/console/{name}", include_in_schema=False)
    async def console_asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, {"code": "unknown_asset", "detail": f"the console has no {name!r}"})
        return Response(asset(name), media_type=ASSETS[name], headers=_headers())


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
