"""What a deployment of `llr-asp serve` configures, in one place: the public base URL (the
audience of CDS Hooks tokens and the base of card links), where used token ids are kept (a
SQLite file in the state directory, or Redis for several hosts), which proxies may set
forwarded headers, which browser origins may call the machine endpoints (CORS), and the limits
on requests, connections, reasoning and the EHR FHIR server calls a CDS Hooks service makes.

`llr-asp serve` writes these to the environment as JSON, for the worker processes uvicorn starts;
`create_app(settings=...)` takes them directly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import UsageError
from ..core.files import default_state_dir as default_state_dir  # (where it was)
from ..core.patient import MAX_BYTES
from .cors import checked_origin

ENV = "LLR_ASP_SERVICE"
"""The settings of `llr-asp serve`, as JSON, for the worker processes uvicorn starts."""


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://127.0.0.1:8000"
    """The service's base URL as its callers name it: a CDS Hooks token's `aud` must be this
    followed by the path called, and card links start with it. Never taken from the request's
    own Host or X-Forwarded-* headers."""
    state_dir: Path | None = None
    """Where the SQLite file of used token ids lives, shared by every worker (default: a
    per-user cache directory)."""
    signing_key: Path | None = None
    """The PEM Ed25519 private key that signs decision receipts (default: `receipt-key.pem` in
    the state directory, made on first start)."""
    keep_days: int | None = None
    """Receipts older than this many days are deleted from the log (None: kept for ever); the
    activity counts are kept."""
    database: str | None = None
    """A PostgreSQL URL (`--database`): the receipt log kept there, one chain for several hosts,
    instead of `receipts.sqlite3` in the state directory."""
    redis: str | None = None
    """A Redis URL: used token ids kept there instead, for several hosts behind one balancer."""
    proxies: tuple[str, ...] = ("127.0.0.1",)
    """The addresses whose X-Forwarded-For/-Proto headers uvicorn believes."""
    cors_origins: tuple[str, ...] = ()
    """The browser origins allowed to call /cds-services, /fhir/ and /api/ (`*`: any); none by
    default, so no cross-origin call is allowed (`cors.py`)."""
    fhir_servers: tuple[tuple[str, str], ...] = ()
    """The FHIR base URLs each CDS Hooks issuer's calls may name as `fhirServer` (`--fhir-server
    ISS=URL`, repeated): (issuer, base URL) pairs. A call's fhirServer is fetched from only when
    it is one of its token's issuer's (compared exactly, a trailing slash aside); nothing else is
    ever fetched (`prefetch.py`)."""
    dtr_launch_url: str | None = None
    """The launch URL of the EHR's SMART form filler (a Da Vinci DTR app, `--dtr-launch-url`):
    with it, every card also carries a `smart` link there, its appContext naming the policy's
    Questionnaire and the order; without it, only the `absolute` link to llr-asp's own page."""
    fhir_seconds: float = 3.0
    """The longest a CDS Hooks call waits for the EHR's FHIR server, when it fetches what the
    prefetch lacks itself (`prefetch.py`); past it, 412."""
    max_body: int = MAX_BYTES
    """A JSON body (a patient record, a FHIR resource, a CDS Hooks call)."""
    max_form_body: int = 4 * MAX_BYTES
    """A page form: a 1 MiB record, URL-encoded, is up to three times as long."""
    max_batch_body: int = 100 << 20
    """A cohort body (JSON Lines) to /api/v1/batch or its summary, spooled to a temporary file as
    it arrives."""
    max_header_bytes: int = 16 << 10
    """The request line and headers together (h11's incomplete-event limit): past it, 400."""
    max_connections: int = 512
    """Open connections and requests a worker takes; past it, 503 at once."""
    header_seconds: float = 10.0
    """A connection that has not sent a whole request head this long after it opened (or after
    its last answer) is closed: slow senders do not hold connections."""
    min_body_rate: int = 16 << 10
    """Bytes a second a request body must average once `header_seconds` have passed since it
    began: a body dripped a byte a second no longer holds a cohort slot for as long as it likes
    (the pause deadline catches only pauses); past it, the connection is closed."""
    max_client_connections: int = 32
    """Open connections a worker takes from one client address (the configured proxies aside:
    behind one, the proxy must bound each client); past it, 503 at once and closed."""
    write_seconds: float = 30.0
    """The longest a response may wait for its client to read (the socket's buffer full); past
    it, the connection is dropped: a client that never reads holds no worker, nor SIGTERM."""
    shutdown_seconds: float = 30.0
    """On SIGTERM, requests under way have this long to finish; then the worker stops."""
    reasoning_seconds: float = 10.0
    """A request waits this long for the reasoning (queue included); past it, 503."""
    max_queue: int = 64
    """Requests waiting for a worker's reasoning thread; past it, 503 at once."""
    max_batches: int = 2
    """Cohort requests (batch and its summary) a worker runs at once (each spools up to
    max_batch_body); past it, 503."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise UsageError(
                f"--public-url {self.public_url}: give the base URL callers use, e.g. https://llr.example.nhs.uk"
            )
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.dtr_launch_url is not None:
            launch = urlsplit(self.dtr_launch_url)
            if launch.scheme not in ("http", "https") or not launch.netloc or launch.fragment:
                raise UsageError(
                    f"--dtr-launch-url {self.dtr_launch_url}: give the SMART launch URL of the EHR's "
                    "form filler, e.g. https://dtr.example.nhs.uk/launch"
                )
        object.__setattr__(self, "cors_origins", tuple(checked_origin(o) for o in self.cors_origins))
        object.__setattr__(
            self, "fhir_servers", tuple((iss, checked_fhir_base(url)) for iss, url in self.fhir_servers)
        )

    def fhir_bases(self, issuer: str | None) -> frozenset[str]:
        """The FHIR base URLs a call whose token `issuer` signed may have fetched from (every
        configured one when CDS Hooks calls are not authenticated, --no-auth: local use)."""
        return frozenset(url for iss, url in self.fhir_servers if issuer is None or iss == issuer)

    @property
    def used_tokens_file(self) -> Path:
        return (self.state_dir or default_state_dir()) / "used-tokens.sqlite3"

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        values["state_dir"] = None if self.state_dir is None else str(self.state_dir)
        values["signing_key"] = None if self.signing_key is None else str(self.signing_key)
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        values: dict[str, Any] = json.loads(text)
        if values.get("state_dir") is not None:
            values["state_dir"] = Path(values["state_dir"])
        if values.get("signing_key") is not None:
            values["signing_key"] = Path(values["signing_key"])
        values["proxies"] = tuple(values.get("proxies", ()))
        values["cors_origins"] = tuple(values.get("cors_origins", ()))
        values["fhir_servers"] = tuple(tuple(pair) for pair in values.get("fhir_servers", ()))
        return cls(**values)

    @classmethod
    def from_environment(cls) -> Settings:
        text = os.environ.get(ENV)
        return cls.from_json(text) if text else cls()


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def checked_fhir_base(url: str) -> str:
    """A FHIR base URL an operator allows (`--fhir-server`): https (http only to this machine's
    loopback), no query, fragment or credentials; without its trailing slash."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    secure = parts is not None and (parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK))
    if parts is None or not host or not secure or parts.query or parts.fragment or "@" in parts.netloc:
        raise UsageError(
            f"--fhir-server {url}: give an EHR's FHIR base URL, https (http only on this machine), "
            "e.g. https://ehr.example.nhs.uk/fhir"
        )
    return url.rstrip("/")


def fhir_server_option(given: str) -> tuple[str, str]:
    """`--fhir-server ISS=URL`: the issuer (as its tokens' iss says it) and a FHIR base URL its
    calls may name. Split at the last "=" (a base URL has no query, so holds none)."""
    issuer, equals, url = given.rpartition("=")
    if not equals or not issuer:
        raise UsageError(
            f"--fhir-server {given}: give ISS=URL, the issuer (as --cds-issuer) and the FHIR base URL "
            "its CDS Hooks calls may name as fhirServer"
        )
    return issuer, checked_fhir_base(url)


REDIS_ENV = "LLR_ASP_REDIS_URL"
"""The Redis URL, password included, out of the command line (which every local user can read)."""


def redis_url(given: str | None, file: Path | None) -> str | None:
    """The Redis URL of `--redis URL` (no password: the command line is public), `--redis-file
    FILE` (the URL on its first line; a file only its owner may read), or $LLR_ASP_REDIS_URL."""
    if given is not None:
        try:
            secret = urlsplit(given).password
        except ValueError:
            secret = None
        if secret:
            raise UsageError(
                f"--redis: the URL holds a password, which every user of this machine can read in the "
                f"process list; give it in ${REDIS_ENV} or --redis-file FILE"
            )
        return given
    if file is not None:
        try:
            status = file.stat()
            text = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(
                f"--redis-file {file}: cannot be read ({error}); give the Redis URL's file"
            ) from None
        if status.st_mode & 0o077:
            raise UsageError(f"--redis-file {file}: others may read it; chmod 600 {file}")
        return text.splitlines()[0] if text else None
    return os.environ.get(REDIS_ENV) or None


def check_state_dir(path: Path) -> None:
    """Refuse a state directory another user owns or may write (its used token ids could be
    deleted, and tokens replayed): one line saying how to fix it."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return  # created, 0700, when first used
    except OSError as error:
        raise UsageError(f"--state-dir {path}: cannot be read ({error.strerror})") from None
    if hasattr(os, "getuid") and status.st_uid != os.getuid():
        raise UsageError(f"--state-dir {path}: owned by another user; give a directory of this user's own")
    if status.st_mode & 0o022:
        raise UsageError(f"--state-dir {path}: others may write to it; chmod go-w {path}")
