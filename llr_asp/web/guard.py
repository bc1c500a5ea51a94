"""The outermost layer of the service, around everything FastAPI and Starlette do (their error
handling included), so that what it promises holds for every response:

- the security headers: a Content-Security-Policy that allows nothing from another origin
  (`default-src 'self'`, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
  no-referrer`, `X-Frame-Options: DENY`, and `Cache-Control: no-store` (answers about a patient
  are kept by no browser or proxy) — on a 413, 422 or 500 as on a 200;
- every request body bounded while it streams: a declared Content-Length over the route's limit
  is refused before a byte is read, and a body that grows past it is cut off there (413), so no
  upload is spooled whole before it is refused;
- no traceback and no value in the log: an error that escapes the application is logged as its
  type and its route, and answered 500 if nothing was sent yet; a client that hangs up mid-body
  is not an error at all.

A plain ASGI layer (Starlette's BaseHTTPMiddleware costs a task and a queue per request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .cors import allowance
from .settings import Settings

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " + (
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
NO_STORE = (b"cache-control", b"no-store")
CACHEABLE = ("/static", "/docs-assets")  # the page's own files: the same for everyone
BATCH = "/api/v1/batch"
"""The cohort routes: /api/v1/batch and those under it (/api/v1/batch/summary) take a cohort."""
FAULT = "internal error; the request was not answered (nothing about it was kept)"
log = logging.getLogger("uvicorn.error")

Answer = Callable[[Request, int, str], Response]
"""How the application words an error for a request (JSON for the API, a page for the page)."""


def too_large(limit: int) -> str:
    return f"the request body is over {limit >> 20} MiB; send less (a patient record is a few hundred bytes)"


@dataclass
class _Exchange:
    started: bool = False  # a response has begun
    cut: bool = False  # the body went past its limit: the application hears a disconnect
    received: int = 0


class Guard:
    def __init__(self, app: Any, settings: Settings, answer: Answer) -> None:
        self.app, self.settings, self.answer = app, settings, answer
        self.headers = {
            path: [(b"content-security-policy", csp.encode()), *SECURITY]
            for path, csp in (("/docs", DOCS_CSP), ("", CSP))
        }

    def limit(self, path: str) -> int:
        """The largest body the route takes: a cohort for the batch routes (the path itself or
        under it, not merely starting with its letters), else a record or a form."""
        if path == BATCH or path.startswith(BATCH + "/"):
            return self.settings.max_batch_body
        if path.startswith(("/api/", "/fhir/", "/cds-services")):
            return self.settings.max_body
        return self.settings.max_form_body  # the page's forms

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = self.headers["/docs" if path == "/docs" else ""]
        if not path.startswith(CACHEABLE):
            extra = [*extra, NO_STORE]
        exchange = _Exchange()

        async def sending(message: dict[str, Any]) -> None:
            if exchange.cut:
                return  # the 413 is sent; what the application says after it goes nowhere
            if message["type"] == "http.response.start":
                exchange.started = True
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        limit = self.limit(path)
        if _declared_length(scope) > limit:
            await self._refuse(scope, receive, sending, 413, too_large(limit))
            return

        async def receiving() -> dict[str, Any]:
            if exchange.cut:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                exchange.received += len(message.get("body", b""))
                if exchange.received > limit:
                    if not exchange.started:
                        await self._refuse(scope, receive, sending, 413, too_large(limit))
                    exchange.cut = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, receiving, sending)
        except Exception as error:  # the one place an error can still reach the server's log
            if exchange.cut or isinstance(error, ClientDisconnect):
                return  # refused, or the client went away: nobody to answer, nothing to report
            route = scope.get("route")
            where = getattr(route, "path", None) or "(no route)"
            log.error("llr-asp: %s %s failed: %s", scope.get("method"), where, type(error).__name__)
            if not exchange.started:
                await self._refuse(scope, receive, sending, 500, FAULT)

    async def _refuse(
        self, scope: dict[str, Any], receive: Any, send: Any, status: int, message: str
    ) -> None:
        request = Request(scope, receive)
        try:
            response = self.answer(request, status, message)
        except Exception:  # the error page itself failed: plain words, still with the headers
            response = Response(message, status, media_type="text/plain; charset=utf-8")
        for name, value in allowance(scope, self.settings.cors_origins):
            response.headers.append(name.decode(), value.decode("latin-1"))
        await response(scope, receive, send)


def _declared_length(scope: dict[str, Any]) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
