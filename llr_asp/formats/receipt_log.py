"""The receipt log: every receipt the service signs, in a hash chain, kept in a database that
all the workers append to: a SQLite file (WAL) in the state directory for the workers of one
host, or PostgreSQL (`--database postgresql://…`) for several hosts.

One chain logic (`ReceiptLog`) over two stores (`SqliteLog`, `PostgresLog`), which differ only
in how they connect, make their tables and serialise writers. Appending is one write
transaction that holds the log's write lock (SQLite: BEGIN IMMEDIATE, one writer at a time
across processes; PostgreSQL: LOCK TABLE receipts IN EXCLUSIVE MODE, one writer at a time
across hosts, readers not blocked), reads the last receipt's hash, has the receipt signed
naming it as `prev`, and inserts it; `prev` is UNIQUE, so two receipts can never name the same
predecessor (a fork), and no append is lost. The rows hold the receipts (claims: no patient id,
no answer, no token) and, for the activity counts, their policy, decision, robustness and
month; counts live in a table of their own, so they outlast `--keep-days`. Past `keep_days`,
old receipts are deleted; the hash of the last one deleted is kept as the chain's new start
(`anchor`), so an audit still sees an unbroken chain. The public keys that signed receipts are
kept too (`/.well-known/jwks.json` lists them all, rotated ones included).
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .receipts import Receipt, ReceiptError, public_keys, receipt_hash

GENESIS = "0" * 64
"""The `prev` of a log's first receipt."""
PURGE_SECONDS = 3600.0
"""How often, at most, receipts past their keeping are deleted."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prev TEXT NOT NULL UNIQUE,
    iat INTEGER NOT NULL,
    receipt TEXT NOT NULL,
    salt TEXT
);
CREATE TABLE IF NOT EXISTS anchor (one INTEGER PRIMARY KEY CHECK (one = 1), hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counts (
    month TEXT NOT NULL, policy TEXT NOT NULL, family TEXT NOT NULL, decision TEXT NOT NULL,
    robust INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (month, policy, family, decision, robust)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (kid TEXT PRIMARY KEY, jwk TEXT NOT NULL, added INTEGER NOT NULL);
"""
"""SQLite's tables. `salt`: the key of the receipt's answers' hash (hex; NULL in rows written
before salts, whose receipts hash the answers plainly): kept here only, never in the receipt."""

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prev TEXT NOT NULL UNIQUE,
    iat BIGINT NOT NULL,
    receipt TEXT NOT NULL,
    salt TEXT
);
ALTER TABLE receipts ADD COLUMN IF NOT EXISTS salt TEXT;
CREATE TABLE IF NOT EXISTS anchor (one INTEGER PRIMARY KEY CHECK (one = 1), hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counts (
    month TEXT NOT NULL, policy TEXT NOT NULL, family TEXT NOT NULL, decision TEXT NOT NULL,
    robust INTEGER NOT NULL, n BIGINT NOT NULL,
    PRIMARY KEY (month, policy, family, decision, robust)
);
CREATE TABLE IF NOT EXISTS keys (kid TEXT PRIMARY KEY, jwk TEXT NOT NULL, added BIGINT NOT NULL);
"""
"""PostgreSQL's tables: the same columns; `seq` from an identity, taken under the write lock, so
in the order of the chain."""

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""Runs one SQL statement (`?` placeholders) in the transaction at hand; the rows it returns."""


class LogUnavailable(Exception):
    """The log cannot be written now: the decision is not given out without its receipt (503)."""


@dataclass(frozen=True)
class Kept:
    """A receipt as the log keeps it: the prev its row names, the receipt, its salt (if any)."""

    prev: str
    receipt: str
    salt: str | None


@dataclass(frozen=True)
class Audit:
    """What walking the chain found: the receipts read, and every break, one line each."""

    receipts: int
    breaks: tuple[str, ...]
    first: str | None = None  # the hash the first kept receipt names as prev
    last: str | None = None  # the last receipt's hash


class ReceiptLog(ABC):
    """A hash chain of receipts, whatever keeps it; `keep_days` None keeps receipts for ever.

    The chain (append, purge, audit) and the counts are written once, here, in SQL that both
    stores run; a store gives a transaction (`_transaction`: serialised against every other
    writer when `write`) and says what its errors are."""

    where: str
    """What the log is, for messages: the SQLite file, or the database URL without its password."""
    keep_days: int | None
    errors: tuple[type[BaseException], ...] = ()
    """The store's own errors: any of them while writing is LogUnavailable (a 503)."""

    def __init__(self, keep_days: int | None) -> None:
        self.keep_days = keep_days
        self._purged = 0.0

    @abstractmethod
    def _transaction(self, write: bool) -> AbstractContextManager[Run]:
        """One transaction; when `write`, no other writer of the log (any process, any host)
        runs until it ends."""

    @abstractmethod
    def close(self) -> None: ...

    def _writing(self) -> AbstractContextManager[Run]:
        return self._transaction(True)

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._transaction(False) as run:
                return run(sql, parameters)
        except self.errors as error:
            raise LogUnavailable(f"{self.where}: {_first_line(error)}") from None

    def append(self, sign: Callable[[str], str], salt: str | None = None) -> str:
        """Sign a receipt naming the last one's hash (`sign(prev)`) and append it with the salt
        its answers' hash was keyed with, in one transaction; the receipt."""
        try:
            with self._writing() as run:
                prev = _last(run)
                receipt = sign(prev)
                claims = Receipt.read(receipt).claims
                run(
                    "INSERT INTO receipts (hash, prev, iat, receipt, salt) VALUES (?, ?, ?, ?, ?)",
                    (receipt_hash(receipt), prev, claims["iat"], receipt, salt),
                )
                run(
                    "INSERT INTO counts VALUES (?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (month, policy, family, decision, robust) DO UPDATE SET n = counts.n + 1",
                    (
                        _month(claims["iat"]),
                        claims["policy"],
                        claims["family"],
                        claims["decision"],
                        int(claims["robust"]),
                    ),
                )
                if self.keep_days is not None and time.monotonic() - self._purged > PURGE_SECONDS:
                    _purge(run, time.time() - self.keep_days * 86400)
                    self._purged = time.monotonic()
        except self.errors as error:
            raise LogUnavailable(f"{self.where}: {_first_line(error)}") from None
        return receipt

    def purge(self, before: float) -> int:
        """Delete the receipts issued before `before` (epoch seconds); how many."""
        with self._writing() as run:
            return _purge(run, before)

    def add_key(self, jwk: Mapping[str, str]) -> None:
        """List a signing key's public JWK (kept after the key is rotated out)."""
        try:
            with self._writing() as run:
                run(
                    "INSERT INTO keys VALUES (?, ?, ?) ON CONFLICT (kid) DO NOTHING",
                    (jwk["kid"], json.dumps(dict(jwk), sort_keys=True), int(time.time())),
                )
        except self.errors as error:
            raise LogUnavailable(f"{self.where}: {_first_line(error)}") from None

    def jwks(self) -> dict[str, Any]:
        """Every public key that has signed receipts of this log, newest first."""
        rows = self._read("SELECT jwk FROM keys ORDER BY added DESC, kid")
        return {"keys": [json.loads(row[0]) for row in rows]}

    def receipts(self) -> Iterator[tuple[str, str]]:
        """Every kept receipt with the prev its row names, oldest first."""
        rows = self._read("SELECT prev, receipt FROM receipts ORDER BY seq")
        yield from ((str(prev), str(receipt)) for prev, receipt in rows)

    def find(self, hash: str) -> Kept | None:
        """The receipt of this hash, the prev its row names and its salt, if the log keeps it."""
        rows = self._read("SELECT prev, receipt, salt FROM receipts WHERE hash = ?", (hash,))
        if not rows:
            return None
        prev, receipt, salt = rows[0]
        return Kept(str(prev), str(receipt), None if salt is None else str(salt))

    def audit(self) -> Audit:
        """Walk the chain: each receipt readable, signed by a listed key, naming the previous
        one's hash as its prev (the first, the anchor or the genesis), no link twice."""
        keys = public_keys(self.jwks(), self.where)
        anchor = self._read("SELECT hash FROM anchor")
        expected = str(anchor[0][0]) if anchor else GENESIS
        first, breaks, count = expected, [], 0
        for n, (prev, text) in enumerate(self.receipts(), 1):
            count = n
            try:
                receipt = Receipt.read(text)
            except ReceiptError as error:
                breaks.append(f"receipt {n}: {error}")
                expected = receipt_hash(text)
                continue
            jti = receipt.claims["jti"]
            if not receipt.signed_by(keys):
                breaks.append(f"receipt {n} ({jti}): its signature does not verify with a listed key")
            if receipt.claims["prev"] != prev:
                breaks.append(f"receipt {n} ({jti}): its signed prev is not the prev its row names")
            if prev != expected:
                breaks.append(
                    f"receipt {n} ({jti}): names {prev[:16]}… as its prev, but the receipt before it "
                    f"hashes to {expected[:16]}…"
                )
            expected = receipt.hash
        return Audit(count, tuple(breaks), first, expected if count else None)

    def activity(self) -> list[dict[str, Any]]:
        """Decisions counted by month, policy, family, decision and robustness."""
        rows = self._read(
            "SELECT month, policy, family, decision, robust, n FROM counts "
            "ORDER BY month, policy, family, decision, robust DESC"
        )
        return [
            {"month": m, "policy": p, "family": f, "decision": d, "robust": bool(r), "decisions": int(n)}
            for m, p, f, d, r, n in rows
        ]


def _last(run: Run) -> str:
    """The hash the next receipt names as its prev: the last receipt's, else the anchor's, else
    the genesis."""
    rows = run("SELECT hash FROM receipts ORDER BY seq DESC LIMIT 1", ())
    if not rows:
        rows = run("SELECT hash FROM anchor", ())
    return str(rows[0][0]) if rows else GENESIS


def _purge(run: Run, before: float) -> int:
    last = run("SELECT seq, hash FROM receipts WHERE iat < ? ORDER BY seq DESC LIMIT 1", (int(before),))
    if not last:
        return 0
    seq, hash = last[0]
    # everything up to the last old receipt goes (a receipt is never kept past an older one)
    [(gone,)] = run("SELECT COUNT(*) FROM receipts WHERE seq <= ?", (seq,))
    run("DELETE FROM receipts WHERE seq <= ?", (seq,))
    run("INSERT INTO anchor VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET hash = excluded.hash", (hash,))
    return int(gone)


class SqliteLog(ReceiptLog):
    """The log in the SQLite file `path` (WAL), shared by the workers of one host."""

    errors = (sqlite3.Error,)

    def __init__(self, path: Path, keep_days: int | None = None) -> None:
        super().__init__(keep_days)
        self.path = path
        self.where = str(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of the process
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(receipts)")}
            if "salt" not in columns:  # a log from before salts: its rows keep NULL
                self._db.execute("ALTER TABLE receipts ADD COLUMN salt TEXT")
        except (OSError, sqlite3.Error) as error:
            raise LogUnavailable(f"{self.path}: {error}") from None

    @classmethod
    def existing(cls, path: Path) -> SqliteLog:
        """A log that must be there already (`receipt audit`, `activity`): a UsageError if not."""
        from ..core.errors import UsageError

        if not path.is_file():
            raise UsageError(f"{path}: no receipt log here; give the --state-dir of `llr-asp serve`")
        try:
            return cls(path)
        except LogUnavailable as error:
            raise UsageError(f"{error}; give the --state-dir of `llr-asp serve`") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Run]:
        def run(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
            return self._db.execute(sql, parameters).fetchall()

        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as error:
                raise LogUnavailable(f"{self.path}: {error}") from None
            try:
                yield run
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


DATABASE_SCHEMES = ("postgresql", "postgres")


def redacted(url: str) -> str:
    """A database URL as messages may show it: without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return "the database URL"


class PostgresLog(ReceiptLog):
    """The log in a PostgreSQL database (`postgresql://…`), shared by the workers of several
    hosts: one chain, appends serialised by a table lock that readers do not wait for. The
    connection is made again after it breaks (a restarted server): the append that found it
    broken is a 503, the next one works."""

    def __init__(self, url: str, keep_days: int | None = None, connect_seconds: int = 10) -> None:
        super().__init__(keep_days)
        try:
            import psycopg
        except ImportError:
            raise LogUnavailable("psycopg is not installed (the postgres extra)") from None
        self.url = url
        self.where = redacted(url)
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self._connect_seconds = connect_seconds
        self._lock = threading.Lock()
        self._db: Any = None
        try:
            with self._lock:
                db = self._connection()
                with db.transaction():
                    # one creator at a time: CREATE TABLE IF NOT EXISTS races with itself
                    db.execute("SELECT pg_advisory_xact_lock(hashtext('llr-asp receipt log schema'))")
                    for statement in filter(str.strip, PG_SCHEMA.split(";")):
                        db.execute(statement)
        except psycopg.Error as error:
            raise LogUnavailable(f"{self.where}: {_first_line(error)}") from None

    def _connection(self) -> Any:
        if self._db is None or self._db.closed or self._db.broken:
            self._db = self._psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self._connect_seconds,
                application_name="llr-asp receipts",
            )
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Run]:
        with self._lock:
            db = self._connection()

            def run(sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
                cursor = db.execute(sql.replace("?", "%s"), tuple(parameters))
                return list(cursor.fetchall()) if cursor.description is not None else []

            with db.transaction():
                if write:
                    # one writer at a time, on every host; SELECTs (audit, activity) go on
                    db.execute("LOCK TABLE receipts IN EXCLUSIVE MODE")
                yield run


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def open_log(database: str | None, state_file: Path, keep_days: int | None = None) -> ReceiptLog:
    """The service's log: PostgreSQL at `database` when given, else the SQLite file `state_file`."""
    if database is not None:
        return PostgresLog(database, keep_days)
    return SqliteLog(state_file, keep_days)


def existing_log(database: str | None, state_file: Path) -> ReceiptLog:
    """A log that must be there already (`receipt audit`, `verify`, `activity`): a UsageError
    in one line if it is not, or cannot be reached."""
    from ..core.errors import UsageError

    if database is None:
        return SqliteLog.existing(state_file)
    checked_database(database)
    try:
        return PostgresLog(database)
    except LogUnavailable as error:
        raise UsageError(f"--database: {error}") from None


def checked_database(url: str) -> str:
    """`--database URL`: a postgresql:// URL without a password (the command line is public:
    give it in ~/.pgpass or $PGPASSWORD, as libpq reads them)."""
    from ..core.errors import UsageError

    try:
        parts = urlsplit(url)
        secret = parts.password
    except ValueError:
        parts, secret = None, None
    if parts is None or parts.scheme not in DATABASE_SCHEMES:
        raise UsageError(
            f"--database {redacted(url)}: give a PostgreSQL URL, e.g. postgresql://llr@db.example.nhs.uk/llr"
        )
    if secret:
        raise UsageError(
            f"--database {redacted(url)}: the URL holds a password, which every user of this machine "
            "can read in the process list; give it in ~/.pgpass or $PGPASSWORD"
        )
    return url


def _month(iat: int) -> str:
    return datetime.datetime.fromtimestamp(iat, datetime.timezone.utc).strftime("%Y-%m")


ACTIVITY_COLUMNS = ("month", "policy", "family", "decision", "robust", "decisions")


def activity_csv(rows: list[dict[str, Any]]) -> str:
    """The activity counts as CSV, a header line first."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, ACTIVITY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "robust": "true" if row["robust"] else "false"} for row in rows)
    return out.getvalue()
