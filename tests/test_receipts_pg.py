"""The receipt log in PostgreSQL (`--database`, issue 35): one chain for several hosts. Run
against a PostgreSQL the tests start (tests/postgres.py: Debian's `postgresql` package), in the
`postgres` tier; skipped, saying why, where there is none or psycopg is not installed.

Several processes appending at once leave one unbroken chain (no lost, duplicated or forked
link); audit finds a rewritten or deleted row; the service keeps its receipts there (a restart
keeps the chain; verify and activity read it); the database holds no patient id and no answer."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")

import psycopg
from fastapi.testclient import TestClient
from postgres import postgres_binaries, postgres_server
from typer.testing import CliRunner

from llr_asp.cli import app as cli
from llr_asp.formats.receipt_log import GENESIS, PostgresLog
from llr_asp.formats.receipts import Receipt, load_signer, make_key
from llr_asp.web import create_app
from llr_asp.web.settings import Settings

pytestmark = pytest.mark.postgres

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()
_numbers = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    binaries, why = postgres_binaries()
    if binaries is None:
        pytest.skip(why)
    with postgres_server() as url:
        yield url


@pytest.fixture
def database(server: str) -> str:
    """A database of the test's own on the module's server: its own log, its own chain."""
    name = f"t{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return server.replace("/llr?", f"/{name}?")


@pytest.fixture
def signer(tmp_path: Path) -> Any:
    make_key(tmp_path / "k.pem")
    return load_signer(tmp_path / "k.pem")


def _claims(prev: str, n: int, writer: int = 0, iat: int | None = None) -> dict[str, Any]:
    return {
        "iat": iat or int(time.time()),
        "jti": f"{writer:016x}{n:016x}",
        "policy": "hip-resurfacing",
        "family": "hip-resurfacing",
        "rules": "0" * 64,
        "decision": ("eligible", "not_eligible", "undetermined")[n % 3],
        "robust": n % 2 == 0,
        "possible": ["eligible"],
        "readings": [],
        "conflicts": [],
        "answers": "1" * 64,
        "prev": prev,
    }


def _writer(url: str, key: str, count: int, start: Any) -> None:
    log = PostgresLog(url)  # a process of its own: as another host would
    signer = load_signer(Path(key))
    start.wait()
    for n in range(count):
        log.append(lambda prev, n=n: signer.sign(_claims(prev, n, writer=os.getpid())))
    log.close()


def test_several_processes_append_one_unbroken_chain(database: str, signer: Any, tmp_path: Path) -> None:
    log = PostgresLog(database)
    log.add_key(signer.jwk)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_writer, args=(database, str(tmp_path / "k.pem"), 80, start)) for _ in range(4)
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    found = log.audit()
    assert found.receipts == 320 and found.breaks == (), found.breaks[:3]
    kept = list(log.receipts())
    jtis = [Receipt.read(text).claims["jti"] for _, text in kept]
    assert len(set(jtis)) == 320 and len({jti[:16] for jti in jtis}) == 4  # every writer's, none lost
    assert kept[0][0] == GENESIS and len({prev for prev, _ in kept}) == 320  # no fork
    counted = log.activity()
    assert sum(r["decisions"] for r in counted) == 320
    by_decision = {d: sum(r["decisions"] for r in counted if r["decision"] == d) for d in ("eligible",)}
    assert by_decision["eligible"] == 4 * len(range(0, 80, 3))


def test_audit_finds_a_rewritten_and_a_deleted_row(database: str, signer: Any) -> None:
    log = PostgresLog(database)
    log.add_key(signer.jwk)
    for n in range(5):
        log.append(lambda prev, n=n: signer.sign(_claims(prev, n)))
    ok = runner.invoke(cli, ["receipt", "audit", "--database", database])
    assert ok.exit_code == 0 and ok.stdout.startswith("unbroken: 5 receipts"), ok.output
    with psycopg.connect(database, autocommit=True) as db:
        [(text,)] = db.execute("SELECT receipt FROM receipts ORDER BY seq OFFSET 1 LIMIT 1").fetchall()
        claims = Receipt.read(text).claims
        redone = signer.sign({**claims, "robust": not claims["robust"]})  # re-signed, even
        db.execute("UPDATE receipts SET receipt = %s WHERE receipt = %s", (redone, text))
    rewritten = runner.invoke(cli, ["receipt", "audit", "--database", database])
    assert rewritten.exit_code == 1 and "break: receipt 3" in rewritten.stdout, rewritten.output
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("UPDATE receipts SET receipt = %s WHERE receipt = %s", (text, redone))  # put back
        assert log.audit().breaks == ()
        db.execute(
            "DELETE FROM receipts WHERE seq = (SELECT seq FROM receipts ORDER BY seq OFFSET 3 LIMIT 1)"
        )
    deleted = runner.invoke(cli, ["receipt", "audit", "--database", database])
    assert deleted.exit_code == 1 and "break: receipt 4" in deleted.stdout, deleted.output


def test_the_service_keeps_its_receipts_in_postgresql(database: str, tmp_path: Path) -> None:
    path = EXAMPLES / "route-c1-pain.json"
    settings = Settings(state_dir=tmp_path / "state", database=database)
    first = TestClient(create_app(settings=settings))
    given = [
        first.post(f"/api/v1/explain?policy={p}", content=path.read_bytes()).json()["receipt"]
        for p in ("hip-resurfacing", "knee-resurfacing", "hip-resurfacing")
    ]
    again = TestClient(create_app(settings=settings))  # a restart, or another host
    given.append(
        again.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()["receipt"]
    )
    assert Receipt.read(given[3]).claims["prev"] == Receipt.read(given[2]).hash
    assert not (tmp_path / "state" / "receipts.sqlite3").exists()  # the database holds the log
    audited = runner.invoke(cli, ["receipt", "audit", "--database", database])
    assert audited.exit_code == 0 and audited.stdout.startswith("unbroken: 4 receipts"), audited.output
    ok = runner.invoke(cli, ["receipt", "verify", given[1], "--answers", str(path), "--database", database])
    assert ok.exit_code == 0 and "the log holds it" in ok.stdout, ok.output
    rows = again.get("/api/v1/activity").json()
    assert sum(r["decisions"] for r in rows) == 4
    assert {(r["policy"], r["decisions"]) for r in rows} >= {("knee-resurfacing", 1)}
    csv = again.get("/api/v1/activity?format=csv").text
    listed = runner.invoke(cli, ["activity", "--database", database, "-f", "csv"])
    assert listed.exit_code == 0 and listed.stdout == csv


def test_the_database_holds_no_patient_id_and_no_answer(database: str, tmp_path: Path) -> None:
    client = TestClient(create_app(settings=Settings(state_dir=tmp_path / "state", database=database)))
    record = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    record["id"] = "NHS-9434765919-ZQX"
    record["conservative"]["months"] = 17.625
    record["meta"] = {"note": "Mrs Quaxley-Trundle"}
    for path in ("/api/v1/explain", "/api/v1/whatif", "/api/v1/next"):
        assert client.post(path, json=record).status_code == 200
    client.post("/result", data={"record": json.dumps(record)})
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("CHECKPOINT")  # every row on disk, in the files scanned below
        held = "".join(
            str(row)
            for table in ("receipts", "anchor", "counts", "keys")
            for row in db.execute(f"SELECT * FROM {table}").fetchall()  # fixed names
        )
        [(data,)] = db.execute("SHOW data_directory").fetchall()
        [(oid,)] = db.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchall()
    files = b"".join(p.read_bytes() for p in (Path(data) / "base" / str(oid)).iterdir() if p.is_file())
    decoded = "".join(
        json.dumps(Receipt.read(row).claims) for row in held.split("'") if row.startswith("eyJ")
    )
    assert decoded and b"hip-resurfacing" in files  # the tables are there, and were read
    for secret in ("NHS-9434765919-ZQX", "17.625", "Quaxley", "intense"):
        assert secret not in held and secret not in decoded and secret.encode() not in files, secret
