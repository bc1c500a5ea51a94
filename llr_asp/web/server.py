"""How `llr-asp serve` runs uvicorn: the HTTP implementation and the limits that hold before a
request reaches the application.

- h11, not httptools: httptools' parser has no limit on headers (one 8 MiB header and 20,000
  headers were accepted); h11 refuses a request head past `max_header_bytes` with 400 before it
  is parsed further. Measured (benchmarks/bench_serve.py): README, "The service under attack".
- a request head must arrive within `header_seconds` of the connection opening (or of its last
  answer), and a body may pause no longer than that between two reads: slow senders do not
  hold connections (uvicorn alone waits for ever for a first request);
- at most `max_connections` connections and requests a worker (uvicorn answers 503 past it),
  and `max_client_connections` from one client address (503 past it; the configured proxies
  are exempt: behind one, the proxy bounds each client);
- a request body averages at least `min_body_rate` bytes a second once `header_seconds` have
  passed (a body dripped a byte a second is closed), and a response whose client does not read
  it for `write_seconds` is dropped; SIGTERM waits at most `shutdown_seconds` for requests;
- a request with both Content-Length and Transfer-Encoding is refused (400, and the connection
  closed: no second request is read from it), a request line past the head limit is 414 and
  headers past it 431, each answered before the connection is closed, not reset;
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
from typing import Any, ClassVar

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
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_seconds)),
        "proxy_headers": True,
        "forwarded_allow_ips": list(settings.proxies) or "",
        "access_log": False,  # request lines would record what was asked about whom
        "log_level": "warning",
    }


@functools.lru_cache(maxsize=1)
def _settings() -> Settings:
    return Settings.from_environment()


def _header_seconds() -> float:
    return _settings().header_seconds


_header_seconds.cache_clear = _settings.cache_clear  # type: ignore[attr-defined]

BUSY = b"the server has too many connections from this address; try again in a moment"
REFUSALS = {
    414: b"the request line is too long; send the record in a POST body",
    431: b"the request headers are too large",
    400: b"a request may not carry both Content-Length and Transfer-Encoding",
    503: BUSY,
}
PHRASES = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
PHRASES[503] = b"Service Unavailable"


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's head, and for each pause in its
    body (nginx's client_header_timeout and client_body_timeout): the connection is closed."""

    seconds: float | None = None  # None: $LLR_ASP_SERVICE's header_seconds (set by `serve`)
    settings: Settings | None = None  # None: $LLR_ASP_SERVICE's (set by `serve`)
    clients: ClassVar[dict[str, int]] = {}  # open connections by client address, in this worker
    _deadline: asyncio.TimerHandle | None = None
    _writing: asyncio.TimerHandle | None = None
    _client: str | None = None
    _body_began: float | None = None
    _body_bytes = 0

    def _limits(self) -> Settings:
        return self.settings if self.settings is not None else _settings()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        limits = self._limits()
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if client is not None and client not in limits.proxies:
            if self.clients.get(client, 0) >= limits.max_client_connections:
                self._refuse(503)
                return
            self.clients[client] = self.clients.get(client, 0) + 1
            self._client = client
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            self._body_bytes += len(data)
        try:
            self.conn.receive_data(data)
        except RuntimeError:  # more bytes after the connection was given up on: ignored
            return
        self._unset_keepalive_if_required()
        if self._head_too_large():
            return
        self.handle_events()
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in: the application has it
            self._body_began = None
        elif state is h11.SEND_BODY:
            if self._too_slow_body():
                return
            self._arm()  # a body may pause that long between two reads
        elif self._deadline is None:
            # a head has one deadline however it trickles in (slowloris sends a byte a second)
            self._arm()

    def _head_too_large(self) -> bool:
        """A request head past the limit: 414 if its request line is, else 431, answered before
        the connection is closed (h11 alone answered 400 and reset the connection)."""
        limit = self._limits().max_header_bytes
        if self.conn.their_state is not h11.IDLE or len(self.conn.trailing_data[0]) <= limit:
            return False  # (a head and its body may come in one read: only the head counts)
        buffered = self.conn.trailing_data[0]
        end = buffered.find(b"\r\n\r\n")
        if 0 <= end <= limit:
            return False
        line_end = buffered.find(b"\r\n", 0, limit)
        self._refuse(414 if line_end < 0 else 431)
        return True

    def _too_slow_body(self) -> bool:
        """A body that averages under min_body_rate once header_seconds have passed: closed."""
        now = self.loop.time()
        if self._body_began is None:
            self._body_began, self._body_bytes = now, 0
            return False
        limits = self._limits()
        grace = self.seconds if self.seconds is not None else limits.header_seconds
        if now - self._body_began > grace + self._body_bytes / limits.min_body_rate:
            self._disarm()
            self.transport.close()
            return True
        return False

    def handle_events(self) -> None:
        """uvicorn's, after refusing a request that gives both Content-Length and
        Transfer-Encoding (h11 follows Transfer-Encoding; a proxy in front may follow the other,
        and read a second, smuggled request where this one ends)."""
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            head = self.conn.trailing_data[0]
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                names = {line.split(b":", 1)[0].strip().lower() for line in head[:end].split(b"\r\n")[1:]}
                if b"content-length" in names and b"transfer-encoding" in names:
                    self._refuse(400)
                    return
        super().handle_events()

    def _refuse(self, status: int) -> None:
        """Answer `status` in one line, then close: the client's write side is read to its end
        (briefly) first, so that the answer is not lost to a reset."""
        body = REFUSALS[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (status, PHRASES[status], len(body), body)
        )
        self._disarm()
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        self.conn = h11.Connection(h11.SERVER)  # what else arrives is dropped (data_received)
        self.conn.receive_data(b"")
        self.loop.call_later(1.0, transport.close)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._writing is None:
            self._writing = self.loop.call_later(self._limits().write_seconds, self._not_read)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._writing is not None:
            self._writing.cancel()
            self._writing = None

    def _not_read(self) -> None:
        self._writing = None
        self.transport.abort()  # the client does not read its response: drop it

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._writing is not None:
            self._writing.cancel()
            self._writing = None
        if self._client is not None:
            left = self.clients.get(self._client, 1) - 1
            if left > 0:
                self.clients[self._client] = left
            else:
                self.clients.pop(self._client, None)
            self._client = None
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
