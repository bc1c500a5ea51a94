"""How `llr-asp serve` runs uvicorn: the HTTP implementation and the limits that hold before a
request reaches the application.

- h11, not httptools: httptools' parser has no limit on headers (one 8 MiB header and 20,000
  headers were accepted); h11 refuses a request head past `max_header_bytes` with 400 before it
  is parsed further. Measured (benchmarks/bench_serve.py): README, "The service under attack".
- a request head must arrive within `header_seconds` of the connection opening (or of its last
  answer), and a body may pause no longer than that between two reads: slow senders do not
  hold connections (uvicorn alone waits for ever for a first request);
- at most `max_connections` connections and requests a worker (uvicorn answers 503 past it);
- X-Forwarded-For/-Proto believed from the configured proxies only (`--proxy`); the public URL
  comes from `--public-url`, never from a request's headers.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
from pathlib import Path
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.errors import UsageError
from ..core.ruleset import RuleSet
from .settings import Settings


def check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address `serve` cannot listen on (a port in use, a host that is
    not this machine's), before anything says it is serving: bound here as uvicorn binds it
    (SO_REUSEADDR), and released at once."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"--host {host}: not an address of this machine ({error.strerror})") from None
    family, kind, protocol, _, address = found[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            why = "in use by another program" if error.errno == errno.EADDRINUSE else error.strerror
            raise UsageError(
                f"cannot listen on {host}:{port} ({why}); choose another --port, or stop what uses it"
            ) from None


def hand_to_workers(
    settings: Settings, rules: Path | None, issuers: tuple[str, ...], jwks: Path | None, no_auth: bool
) -> None:
    """What every worker process reads when it starts (uvicorn starts them afresh): the
    settings, the rules directory, the allowed CDS Hooks issuers and their keys, --no-auth."""
    from .app import RULES_ENV
    from .cds import ISSUERS_ENV, JWKS_ENV, NO_AUTH_ENV
    from .settings import ENV

    os.environ[ENV] = settings.to_json()
    if rules is not None:
        os.environ[RULES_ENV] = str(rules.resolve())
    os.environ[ISSUERS_ENV] = ",".join(issuers)
    if jwks is not None:
        os.environ[JWKS_ENV] = str(jwks.resolve())
    if no_auth:
        os.environ[NO_AUTH_ENV] = "1"


def start_notes(
    rules: RuleSet,
    settings: Settings,
    host: str,
    public_url_given: bool,
    authenticated: bool,
    no_auth: bool,
    issuers: tuple[str, ...] = (),
) -> list[str]:
    """What `serve` says as it starts: how CDS Hooks calls are authenticated, the policies whose
    order codes are not declared, and what listening beyond this machine means."""
    notes = []
    if no_auth:
        notes.append("WARNING: --no-auth: CDS Hooks calls are not authenticated; local use only")
    elif not authenticated:
        notes.append("note: no --cds-issuer and --cds-jwks: every CDS Hooks call will be refused")
    uncoded = [p.reference for p in rules.policies.values() if not rules.procedures.get(p.id)]
    if uncoded:
        notes.append(
            f"note: no order codes declared for {', '.join(uncoded)}: no CDS Hooks order will match (no "
            "card) until they are configured (procedure/4 in the rules: see rules/llr_icb.lp)"
        )
    strangers = sorted({iss for iss, _ in settings.fhir_servers} - set(issuers))
    if strangers and not no_auth:
        notes.append(f"note: --fhir-server for {', '.join(strangers)}, not a --cds-issuer: never used")
    if host not in ("127.0.0.1", "localhost", "::1"):
        notes.append(f"note: listening on {host}: reachable from other machines")
        if not public_url_given:
            notes.append(f"note: no --public-url: CDS Hooks tokens must name {settings.public_url}")
    return notes


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of uvicorn.run/uvicorn.Config for `settings`."""
    return {
        "http": f"{__name__}:BoundedH11Protocol",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.proxies) or "",
        "access_log": False,  # request lines would record what was asked about whom
        "log_level": "warning",
    }


@functools.lru_cache(maxsize=1)
def _header_seconds() -> float:
    return Settings.from_environment().header_seconds


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's head, and for each pause in its
    body (nginx's client_header_timeout and client_body_timeout): the connection is closed."""

    seconds: float | None = None  # None: $LLR_ASP_SERVICE's header_seconds (set by `serve`)
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in: the application has it
        elif state is h11.SEND_BODY or self._deadline is None:
            # a head has one deadline however it trickles in (slowloris sends a byte a second);
            # a body may pause that long between two reads
            self._arm()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        seconds = self.seconds if self.seconds is not None else _header_seconds()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()
