"""The receipt log: every receipt the service signs, in a hash chain, in one SQLite file (WAL)
that all the workers of a host append to.

Appending is one write transaction (BEGIN IMMEDIATE: one writer at a time across processes)
that reads the last receipt's hash, has the receipt signed naming it as `prev`, and inserts it;
`prev` is UNIQUE, so two receipts can never name the same predecessor (a fork), and no append
is lost. The rows hold the receipts (claims: no patient id, no answer, no token) and, for the
activity counts, their policy, decision, robustness and month; counts live in a table of their
own, so they outlast `--keep-days`. Past `keep_days`, old receipts are deleted; the hash of the
last one deleted is kept as the chain's new start (`anchor`), so an audit still sees an
unbroken chain. The public keys that signed receipts are kept too (`/.well-known/jwks.json`
lists them all, rotated ones included).
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    receipt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anchor (one INTEGER PRIMARY KEY CHECK (one = 1), hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counts (
    month TEXT NOT NULL, policy TEXT NOT NULL, family TEXT NOT NULL, decision TEXT NOT NULL,
    robust INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (month, policy, family, decision, robust)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (kid TEXT PRIMARY KEY, jwk TEXT NOT NULL, added INTEGER NOT NULL);
"""


class LogUnavailable(Exception):
    """The log cannot be written now: the decision is not given out without its receipt (503)."""


@dataclass(frozen=True)
class Audit:
    """What walking the chain found: the receipts read, and every break, one line each."""

    receipts: int
    breaks: tuple[str, ...]
    first: str | None = None  # the hash the first kept receipt names as prev
    last: str | None = None  # the last receipt's hash


@dataclass
class ReceiptLog:
    """The log in the SQLite file `path`; `keep_days` None keeps receipts for ever."""

    path: Path
    keep_days: int | None = None
    _db: sqlite3.Connection = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _purged: float = 0.0

    def __post_init__(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of the process
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise LogUnavailable(f"{self.path}: {error}") from None

    @classmethod
    def existing(cls, path: Path) -> ReceiptLog:
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
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise LogUnavailable(str(error)) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def append(self, sign: Callable[[str], str]) -> str:
        """Sign a receipt naming the last one's hash (`sign(prev)`) and append it, in one
        transaction; the receipt."""
        try:
            with self._writing() as db:
                prev = self._last(db)
                receipt = sign(prev)
                claims = Receipt.read(receipt).claims
                db.execute(
                    "INSERT INTO receipts (hash, prev, iat, receipt) VALUES (?, ?, ?, ?)",
                    (receipt_hash(receipt), prev, claims["iat"], receipt),
                )
                db.execute(
                    "INSERT INTO counts VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                    (
                        _month(claims["iat"]),
                        claims["policy"],
                        claims["family"],
                        claims["decision"],
                        int(claims["robust"]),
                    ),
                )
                if self.keep_days is not None and time.monotonic() - self._purged > PURGE_SECONDS:
                    self._purge(db, time.time() - self.keep_days * 86400)
                    self._purged = time.monotonic()
        except sqlite3.Error as error:
            raise LogUnavailable(str(error)) from None
        return receipt

    @staticmethod
    def _last(db: sqlite3.Connection) -> str:
        row = db.execute("SELECT hash FROM receipts ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            row = db.execute("SELECT hash FROM anchor").fetchone()
        return str(row[0]) if row is not None else GENESIS

    def purge(self, before: float) -> int:
        """Delete the receipts issued before `before` (epoch seconds); how many."""
        with self._writing() as db:
            return self._purge(db, before)

    @staticmethod
    def _purge(db: sqlite3.Connection, before: float) -> int:
        last = db.execute(
            "SELECT seq, hash FROM receipts WHERE iat < ? ORDER BY seq DESC LIMIT 1", (before,)
        ).fetchone()
        if last is None:
            return 0
        # everything up to the last old receipt goes (a receipt is never kept past an older one)
        gone = db.execute("DELETE FROM receipts WHERE seq <= ?", (last[0],)).rowcount
        db.execute(
            "INSERT INTO anchor VALUES (1, ?) ON CONFLICT DO UPDATE SET hash = excluded.hash", (last[1],)
        )
        return int(gone)

    def add_key(self, jwk: Mapping[str, str]) -> None:
        """List a signing key's public JWK (kept after the key is rotated out)."""
        try:
            with self._writing() as db:
                db.execute(
                    "INSERT INTO keys VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (jwk["kid"], json.dumps(dict(jwk), sort_keys=True), int(time.time())),
                )
        except sqlite3.Error as error:
            raise LogUnavailable(str(error)) from None

    def jwks(self) -> dict[str, Any]:
        """Every public key that has signed receipts of this log, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT jwk FROM keys ORDER BY added DESC, kid").fetchall()
        return {"keys": [json.loads(row[0]) for row in rows]}

    def receipts(self) -> Iterator[tuple[str, str]]:
        """Every kept receipt with the prev its row names, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT prev, receipt FROM receipts ORDER BY seq").fetchall()
        yield from ((str(prev), str(receipt)) for prev, receipt in rows)

    def find(self, hash: str) -> tuple[str, str] | None:
        """The receipt of this hash and the prev its row names, if the log keeps it."""
        with self._lock:
            row = self._db.execute("SELECT prev, receipt FROM receipts WHERE hash = ?", (hash,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def audit(self) -> Audit:
        """Walk the chain: each receipt readable, signed by a listed key, naming the previous
        one's hash as its prev (the first, the anchor or the genesis), no link twice."""
        keys = public_keys(self.jwks(), str(self.path))
        with self._lock:
            anchor = self._db.execute("SELECT hash FROM anchor").fetchone()
        expected = str(anchor[0]) if anchor is not None else GENESIS
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
        with self._lock:
            rows = self._db.execute(
                "SELECT month, policy, family, decision, robust, n FROM counts "
                "ORDER BY month, policy, family, decision, robust DESC"
            ).fetchall()
        return [
            {"month": m, "policy": p, "family": f, "decision": d, "robust": bool(r), "decisions": n}
            for m, p, f, d, r, n in rows
        ]


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
