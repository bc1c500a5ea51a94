"""The application: one warm set of engines per process, the API, the page, security headers.

Every response carries a Content-Security-Policy that allows nothing from another origin
(`default-src 'self'`, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
no-referrer` and `Cache-Control: no-store` (answers about a patient are not kept by a browser or
a proxy). Nothing about a patient is logged: the access log is off, and errors are answered with
the CLI's one-line message, never a stack trace.
"""

from __future__ import annotations

import gc
import importlib.resources
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import InputError, LlrError, UsageError
from ..patient import json_schema
from ..whatif import WhatIfTimeout
from . import analyst, api, cds, fhir, page
from .engines import Engines
from .responses import JSON

RULES_ENV = "LLR_ASP_RULES"
"""The rule set of `llr-asp serve --rules DIR`, for worker processes that uvicorn starts."""

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " + (
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
)
HERE = Path(__file__).parent


def create_app(rules: Path | None = None) -> FastAPI:
    """The service for the rule set in `rules` (default: $LLR_ASP_RULES, else the bundled one)."""
    if rules is None and os.environ.get(RULES_ENV):
        rules = Path(os.environ[RULES_ENV])
    engines = Engines.load(rules)
    app = FastAPI(
        title="llr-asp",
        summary="Eligibility under NHS LLR ICB commissioning policies, with the reasons",
        description=(
            "Every body is exactly the CLI's `--format json` contract. A bad patient record is 422 "
            'with `{"error": "<the CLI\'s one-line message>"}`; an unknown policy 404; a body over '
            "1 MiB (100 MiB for batch) 413."
        ),
        docs_url=None,
        redoc_url=None,
        default_response_class=JSON,
    )
    app.state.engines = engines
    app.state.cds = cds.Authority.from_environment()
    app.state.feedback = {}  # CDS Hooks feedback calls, counted per service
    app.include_router(api.router)
    app.include_router(fhir.router)
    app.include_router(cds.router)
    app.include_router(page.router)
    app.include_router(analyst.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _docs(app)
    _errors(app)

    app.add_middleware(SecurityHeaders)
    schema = app.openapi()
    schema.setdefault("components", {}).setdefault("schemas", {})["PatientRecord"] = json_schema(
        engines.rules
    )
    app.openapi_schema = schema
    # What start-up built (the grounded rules, the routes, the schemas) lives as long as the
    # process: out of the collector's way, its full collections no longer walk it (measured
    # in process with the app built: 0.81 -> 0.76 ms an explain's Python work)
    gc.freeze()
    return app


class SecurityHeaders:
    """The security headers on every response (a plain ASGI middleware: Starlette's
    BaseHTTPMiddleware costs a task and a queue per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = [
            (b"content-security-policy", (DOCS_CSP if path == "/docs" else CSP).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if not path.startswith(("/static", "/docs-assets")):
            extra.append((b"cache-control", b"no-store"))

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, sending)


def _docs(app: FastAPI) -> None:
    """Interactive API docs at /docs, with Swagger UI served from this process, not a CDN
    (the assets come with the fastapi-offline package)."""
    try:
        assets = importlib.resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:
        return
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="llr-asp API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )


def _errors(app: FastAPI) -> None:
    """Errors as the CLI words them, in `{"error": ...}`; the page answers in HTML."""

    def answer(request: Request, status: int, message: str) -> Response:
        if (
            request.url.path.startswith(("/api/", "/fhir/", "/cds-services"))
            or request.url.path == "/healthz"
        ):
            return JSON({"error": message}, status_code=status)
        return page.error_page(request, status, message)

    def answering(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, error: Exception) -> Response:
            return answer(request, status, str(error))

        return handler

    # each error gets the handler of the nearest class in its MRO (an InputError is an LlrError)
    statuses = {InputError: 422, UsageError: 404, WhatIfTimeout: 503, LlrError: 422, api.TooLarge: 413}
    for kind, status in statuses.items():
        app.add_exception_handler(kind, answering(status))

    @app.exception_handler(cds.Unauthorized)
    async def unauthorized(request: Request, error: cds.Unauthorized) -> Response:
        return JSON({"error": "unauthorized"}, status_code=401)  # the reason stays here

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return answer(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def fault(request: Request, error: Exception) -> Response:
        return answer(
            request, 500, "internal error; the request was not answered (nothing about it was kept)"
        )
