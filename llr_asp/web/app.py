"""The application: one warm set of engines per process, the API, the page, and around them
all the guard (`guard.py`: security headers on every response, bounded bodies, no traceback in
the log) and, for the machine endpoints, the allowed cross-origin callers (`cors.py`). Nothing
about a patient is logged: the access log is off, and errors are answered with the CLI's
one-line message, never a stack trace: `{"error": ...}` for the API and CDS Hooks, a FHIR
OperationOutcome under /fhir/ (bad input there is 400, as DTR requires of $next-question).
"""

from __future__ import annotations

import gc
import importlib.resources
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..core.errors import InputError, LlrError, UsageError
from ..core.patient import json_schema
from ..engines.whatif import WhatIfTimeout
from . import analyst, api, cds, fhir, logbound, page, receipts
from .cors import CrossOrigin
from .engines import Engines, NoRoom, Overloaded
from .guard import FAULT, Guard
from .outcome import outcome
from .responses import JSON
from .settings import Settings
from .tokens import StoreUnavailable

log = logging.getLogger("uvicorn.error")
RULES_ENV = "LLR_ASP_RULES"
"""The rule set of `llr-asp serve --rules DIR`, for worker processes that uvicorn starts."""

HERE = Path(__file__).parent


class Service(FastAPI):
    """FastAPI with the guard outside everything it builds, its error handling included, and
    the cross-origin layer just inside the guard (its preflight answers carry the headers too)."""

    def build_middleware_stack(self) -> Any:
        settings = self.state.settings
        return Guard(CrossOrigin(super().build_middleware_stack(), settings.cors_origins), settings, answer)


def create_app(rules: Path | None = None, settings: Settings | None = None) -> FastAPI:
    """The service for the rule set in `rules` (default: $LLR_ASP_RULES, else the bundled one),
    configured by `settings` (default: what `llr-asp serve` put in $LLR_ASP_SERVICE)."""
    if rules is None and os.environ.get(RULES_ENV):
        rules = Path(os.environ[RULES_ENV])
    settings = settings or Settings.from_environment()
    engines = Engines.load(rules)
    app = Service(
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
    engines.seconds, engines.max_queue = settings.reasoning_seconds, settings.max_queue
    app.state.engines = engines
    app.state.settings = settings
    app.state.batches = 0  # batch requests running now
    app.state.cds = cds.authority_from_environment(settings)
    logbound.bound()  # anyone can make the service log a line: a flood of them is counted, not kept
    _reload_on_hangup(app)
    app.state.feedback = {}  # CDS Hooks feedback calls, counted per service
    app.state.receipts = receipts.Receipts(settings)
    app.include_router(api.router)
    app.include_router(fhir.router)
    app.include_router(cds.router)
    app.include_router(page.router)
    app.include_router(analyst.router)
    app.include_router(receipts.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _docs(app)
    _errors(app)

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


def _reload_on_hangup(app: FastAPI) -> None:
    """SIGHUP re-reads the CDS Hooks keys (a rotation) and never stops the worker (its default
    action killed a one-worker service mid-batch). With several workers, uvicorn's supervisor
    takes SIGHUP and restarts them, each reading the keys afresh. Only in the main thread (a
    worker process), where signal handlers are set."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return

    def reload(signum: int, frame: Any) -> None:
        app.state.cds.reload()

    signal.signal(signal.SIGHUP, reload)


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


def answer(request: Request, status: int, message: str) -> Response:
    """An error as the CLI words it, in `{"error": ...}`; an OperationOutcome at /fhir and under it (where
    bad input is 400); the page answers in HTML."""
    path = request.url.path
    if path == "/fhir" or path.startswith("/fhir/"):  # the base itself: $next-question posted there
        return outcome(400 if status == 422 else status, message)
    if path.startswith(("/api/", "/cds-services")) or path == "/healthz":
        return JSON({"error": message}, status_code=status)
    return page.error_page(request, status, message)


def _errors(app: FastAPI) -> None:
    """Errors as the CLI words them, with their status."""

    def answering(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, error: Exception) -> Response:
            return answer(request, status, str(error))

        return handler

    # each error gets the handler of the nearest class in its MRO (an InputError is an LlrError)
    statuses = {
        InputError: 422,
        UsageError: 404,
        WhatIfTimeout: 503,
        Overloaded: 503,
        NoRoom: 507,
        LlrError: 422,
    }
    for kind, status in statuses.items():
        app.add_exception_handler(kind, answering(status))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        """An unknown route or a method not allowed: an OperationOutcome under /fhir/."""
        if request.url.path == "/fhir" or request.url.path.startswith("/fhir/"):
            response = outcome(error.status_code, str(error.detail))
            response.headers.update(error.headers or {})  # a 405's Allow
            return response
        return await http_exception_handler(request, error)

    @app.exception_handler(cds.Unauthorized)
    async def unauthorized(request: Request, error: cds.Unauthorized) -> Response:
        """401 with the challenge RFC 6750 asks for; the reason stays here (no oracle for which
        check a forged token failed), and nothing of the token is said."""
        return JSON(
            {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": cds.challenge(error)}
        )

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, error: StoreUnavailable) -> Response:
        return JSON({"error": "tokens cannot be checked now; try again shortly"}, status_code=503)

    @app.exception_handler(receipts.LogUnavailable)
    async def unlogged(request: Request, error: receipts.LogUnavailable) -> Response:
        """No decision leaves without its receipt: the log or the key cannot be used (the
        reason goes to the operator's log, not the caller)."""
        log.error("llr-asp: decision receipts cannot be kept: %s", error)
        return answer(request, 503, "decision receipts cannot be kept now; try again shortly")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return answer(request, 422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def fault(request: Request, error: Exception) -> Response:
        return answer(request, 500, FAULT)
