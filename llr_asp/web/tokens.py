"""CDS Hooks bearer tokens: who may call, with which key, and each token used once.

A token is verified as the CDS Hooks specification requires: alg ES384 or RS384 only, typ JWT,
its `kid` in the configured JWKS *and* that key of the kind the token's alg names (an EC P-384
key for ES384, an RSA key for RS384, and the key's own `alg` if it declares one) and published
for signatures (not `"use": "enc"`; `key_ops`, if given, with "verify"), `iss` a string
on the allow-list, `aud` the configured public URL of the endpoint, `exp` and `iat` numbers at
most five minutes apart, and a `jti` not used before. Anything else is refused: 401 with
`WWW-Authenticate: Bearer` (RFC 6750 §3: `error="invalid_token"` and one fixed description for
every refused token, no error for a call without one), the reason never told, the token never
echoed. Clocks differ: `exp`, `iat` and `nbf` are checked with LEEWAY seconds of leeway (an
EHR whose clock runs a few seconds fast, or the CDS Hooks sandbox, which rounds `iat` to the
nearest second, is not refused now and then), and a used id is kept that much past `exp`.

Keys rotate: the JWKS file is looked at again (its size, mtime and inode) at most once every
JWKS_CHECK_SECONDS, and re-read when it changed (or on SIGHUP: `Authority.reload`); a new file
that cannot be read as a JWKS leaves the last good keys in use, said in one log line. A worker
that starts with no readable JWKS serves with no keys (every CDS Hooks call 401) and /healthz
says so, rather than failing to start again and again.

Used token ids are kept until their token expires, where every worker sees them: a SQLite file
(WAL) in the state directory, or Redis when several hosts share the load. A restart forgets
nothing; a token replayed on another worker is refused there too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

MAX_LIFETIME = 300
"""The longest `exp - iat` accepted, in seconds: the five minutes the specification recommends."""
LEEWAY = 30
"""Seconds of clock difference allowed on `exp`, `iat` and `nbf` (PyJWT's leeway)."""
MAX_JTI = 256
JWKS_CHECK_SECONDS = 1.0
"""How often, at most, the JWKS file is looked at for a change."""
log = logging.getLogger("uvicorn.error")
KINDS = {"ES384": ("EC", "P-384"), "RS384": ("RSA", None)}
"""The algorithms allowed, and the kind of key (kty, crv) each must be checked with."""


class Unauthorized(Exception):
    """A call whose token fails verification (the reason is not told to the caller)."""


class NoToken(Unauthorized):
    """A call with no bearer token at all (RFC 6750 §3.1: then no error code is said)."""


class StoreUnavailable(Exception):
    """The store of used token ids cannot be reached: no token can be checked now (503)."""


class UsedTokens(Protocol):
    def first_use(self, key: str, until: float) -> bool:
        """Record `key` as used until `until` (epoch seconds); False if it already was."""


@dataclass(frozen=True)
class Key:
    kid: str
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own alg, if it declares one
    key: Any  # the public key, as PyJWT verifies with it
    use: Any = None  # the JWK's `use`, if it declares one ("sig" or "enc", RFC 7517 §4.2)
    ops: Any = None  # the JWK's `key_ops`, if it declares them (RFC 7517 §4.3)

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> Key:
        import jwt

        return cls(
            str(jwk["kid"]),
            str(jwk.get("kty")),
            jwk.get("crv"),
            jwk.get("alg"),
            jwt.PyJWK(jwk).key,
            jwk.get("use"),
            jwk.get("key_ops"),
        )

    def verifies(self, alg: str) -> bool:
        """Whether a token signed with `alg` may be checked with this key: a key of the kind
        `alg` names, published for signatures (a key whose `use` is "enc", or whose `key_ops`
        do not include "verify", is for something else: jose refuses it, and so does this)."""
        kty, crv = KINDS[alg]
        published = self.use in (None, "sig") and (
            self.ops is None or (isinstance(self.ops, list) and "verify" in self.ops)
        )
        return published and self.kty == kty and (crv is None or self.crv == crv) and self.alg in (None, alg)


def read_jwks(path: Path) -> dict[str, Key]:
    """The keys of a JWKS file by kid; a file that is not one is a UsageError naming what to fix
    (`serve` reads it before starting its workers, each of which would fail alike)."""
    import jwt

    from ..core.errors import UsageError

    def unusable(where: str, fix: str) -> UsageError:
        return UsageError(f"--cds-jwks {path}: {where}: {fix}")

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise unusable("cannot be read", f"{error.strerror}; give a file llr-asp may read") from None
    except UnicodeDecodeError:
        raise unusable("not a JSON file", "not UTF-8 text; give the EHRs' JWKS") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise unusable("not a JSON file", f"{error}; give the EHRs' JWKS") from None
    listed = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(listed, list):
        raise unusable("$", 'a JWKS is an object with a list "keys"')
    keys: dict[str, Key] = {}
    for n, jwk in enumerate(listed):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            raise unusable(f"$.keys[{n}]", 'each key needs a "kid" (the id tokens name it by)')
        try:
            keys[jwk["kid"]] = Key.from_jwk(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise unusable(
                f"$.keys[{n}]", "not a public key PyJWT can read (an EC P-384 or RSA JWK)"
            ) from None
    return keys


@dataclass
class Authority:
    """Who may call: the allowed issuers, their keys (a JWKS file), and the used token ids."""

    issuers: frozenset[str]
    keys: dict[str, Key]
    used: UsedTokens | None = None  # None: opened by `opener` on the first token checked
    opener: Any = None  # () -> UsedTokens
    enabled: bool = True
    jwks: Path | None = None  # the file the keys are read from (re-read when it changes)
    problem: str | None = None  # why the file could not be read, while no good keys were
    _stamp: tuple[int, int, int] | None = None
    _checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, issuers: frozenset[str], jwks: Path | None, opener: Any) -> Authority:
        authority = cls(issuers, {}, opener=opener, jwks=jwks)
        authority.reload()
        return authority

    def reload(self) -> None:
        """Read the JWKS file again (SIGHUP, or a change seen): the new keys, or, if the file
        cannot be read as a JWKS, the last good ones kept, said in one log line."""
        from ..core.errors import UsageError

        if self.jwks is None:
            return
        self._stamp = _stamp(self.jwks)
        try:
            self.keys = read_jwks(self.jwks)
        except UsageError as error:
            kept = "the keys read before are still used" if self.keys else "no CDS Hooks call is accepted"
            log.error("llr-asp: %s; %s", error, kept)
            if not self.keys:
                self.problem = str(error)
            return
        self.problem = None

    def _fresh(self) -> None:
        """Re-read the JWKS file if it changed (looked at once every JWKS_CHECK_SECONDS)."""
        if self.jwks is None:
            return
        now = time.monotonic()
        if now - self._checked < JWKS_CHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            if _stamp(self.jwks) != self._stamp:
                self.reload()

    def verify(self, authorization: str | None, audience: str) -> str | None:
        """Raise Unauthorized unless `authorization` carries a valid token for `audience`, not
        used before (and from now on, used); its issuer (None when calls are not authenticated)."""
        if not self.enabled:
            return None
        claims = self.claims(authorization, audience)
        key = hashlib.sha256(f"{claims['iss']}\n{claims['jti']}".encode()).hexdigest()
        if not self._used().first_use(key, float(claims["exp"]) + LEEWAY):  # as long as it is accepted
            raise Unauthorized("replayed jti")
        return str(claims["iss"])

    def claims(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, once its signature and every claim have been checked."""
        import jwt

        if not authorization or not authorization.startswith("Bearer "):
            raise NoToken("no bearer token")
        self._fresh()
        token = authorization[len("Bearer ") :]
        try:
            header = jwt.get_unverified_header(token)
            alg, kid = header.get("alg"), header.get("kid")
            if alg not in KINDS or header.get("typ", "JWT") != "JWT" or not isinstance(kid, str):
                raise Unauthorized("algorithm, type or kid")
            key = self.keys.get(kid)
            if key is None or not key.verifies(alg):  # never an EC key to RSA code, or back
                raise Unauthorized("unknown kid, or a key of another kind than alg")
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=audience,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error)) from None
        iss, jti, exp, iat = claims["iss"], claims["jti"], claims["exp"], claims["iat"]
        if not isinstance(iss, str) or iss not in self.issuers:
            raise Unauthorized("issuer")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
            raise Unauthorized("jti")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (exp, iat)):
            raise Unauthorized("exp or iat not a number")
        if exp - iat > MAX_LIFETIME:
            raise Unauthorized("lifetime over five minutes")
        return claims

    def _used(self) -> UsedTokens:
        with self._lock:
            if self.used is None:
                self.used = self.opener()
            return self.used


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when a file is replaced or rewritten: its inode, size and mtime."""
    try:
        status = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (status.st_ino, status.st_size, status.st_mtime_ns)


class SqliteUsedTokens:
    """Used token ids in one SQLite file (WAL), shared by the worker processes of a host.

    A write takes milliseconds; a file another process keeps locked for longer (a backup tool,
    a stuck worker) is answered at once as unavailable (503) rather than by making every call
    wait its turn for the lock: `BUSY_SECONDS` at most for the first, then none for `REST_SECONDS`."""

    PURGE_SECONDS = 60.0
    BUSY_SECONDS = 1.0
    REST_SECONDS = 2.0

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                path, timeout=self.BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of the process
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID"
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"{path}: {error}") from None
        self._lock = threading.Lock()
        self._purged = 0.0
        self._resting_until = 0.0  # after a busy file: the store answers unavailable till then

    def first_use(self, key: str, until: float) -> bool:
        now = time.time()
        with self._lock:
            if time.monotonic() < self._resting_until:
                raise StoreUnavailable("the used-token store was locked by another process a moment ago")
            try:
                if now - self._purged > self.PURGE_SECONDS:
                    self._db.execute("DELETE FROM used WHERE until < ?", (now,))
                    self._purged = now
                # a row whose token has expired is stale: the id may be used afresh
                cursor = self._db.execute(
                    "INSERT INTO used VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET until = excluded.until "
                    "WHERE used.until < ?",
                    (key, until, now),
                )
            except sqlite3.Error as error:
                self._resting_until = time.monotonic() + self.REST_SECONDS
                raise StoreUnavailable(str(error)) from None
            return cursor.rowcount == 1


class RedisUsedTokens:
    """Used token ids in Redis (SET NX with the token's expiry), for several hosts."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def first_use(self, key: str, until: float) -> bool:
        import redis

        try:
            return bool(self._client.set(f"llr-asp:jti:{key}", b"1", nx=True, exat=int(until) + 1))
        except redis.RedisError as error:
            raise StoreUnavailable(type(error).__name__) from None
