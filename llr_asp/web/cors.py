"""Cross-origin callers: browser-based clients (the CDS Hooks sandbox, a SMART app's form filler)
call the machine endpoints from another origin, which a browser allows only when the answer
says so (CORS). Closed unless configured: `llr-asp serve --cors-origin https://ehr.example`
(repeat; `*` for any origin) allows those origins to call /cds-services, /fhir/ and /api/ with
GET and POST and the headers they need (Authorization, Content-Type), preflight included.
No credentials (cookies) are ever allowed: CDS Hooks and FHIR calls carry bearer tokens. The
clinicians' and analysts' pages are never opened to another origin.

Starlette's CORS middleware does the work (preflight answers, Vary: Origin); this layer only
chooses the paths it applies to. The answers the guard outside it writes itself (a body over its
bound, 413; a fault, 500) carry the same allowance (`allowance`): without it a browser shows its
caller a network error instead of the refusal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware

from ..core.errors import UsageError

OPEN_PATHS = ("/cds-services", "/fhir/", "/api/")
"""The machine endpoints another origin may call."""


def checked_origin(origin: str) -> str:
    """`origin` if it is an origin (scheme://host[:port], nothing more) or `*`."""
    parts = urlsplit(origin)
    if origin == "*" or (
        parts.scheme in ("http", "https")
        and parts.netloc
        and not (parts.path or parts.query or parts.fragment)
    ):
        return origin
    raise UsageError(
        f"--cors-origin {origin}: give an origin, e.g. https://sandbox.cds-hooks.org (no path), or *"
    )


class CrossOrigin:
    """The application, with CORS answered on the machine endpoints for the allowed origins."""

    def __init__(self, app: Any, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = (
            CORSMiddleware(
                app,
                allow_origins=origins,
                allow_methods=("GET", "POST"),
                allow_headers=("Authorization", "Content-Type", "Accept"),
                max_age=600,
            )
            if origins
            else None
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.cors is not None and scope["type"] == "http" and scope["path"].startswith(OPEN_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def allowance(scope: dict[str, Any], origins: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    """The CORS headers an answer to this request needs, written outside CrossOrigin: the
    origin allowed (or `*` where any is), for an allowed origin calling a machine endpoint."""
    if not origins or not scope["path"].startswith(OPEN_PATHS):
        return []
    origin = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"), None)
    if origin is None:
        return []
    if "*" in origins:
        return [(b"access-control-allow-origin", b"*")]
    if origin in origins:
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
    return []
