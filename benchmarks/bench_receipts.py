"""Benchmark for issue 35 (receipts; not a test: machines are shared and noisy). In process: the
service's ASGI app driven by Starlette's TestClient, nothing listening on any port.

1. --decisions (default 10,000) POST /api/v1/explain, one policy each (the bundled examples in
   turn, hip and knee alternately): each answer's latency, signing and appending included
   (p50, p99), and the cost of a receipt alone (sign + append, timed around the service's own
   `Receipts.issue`).
2. The log afterwards: as many receipts as decisions, an unbroken chain (`receipt audit`'s walk),
   and every receipt verified from its answers: signature, answers' hash, decision re-made.

Targets (issue 35): explain p50 <= 2 ms, p99 <= 10 ms with signing and appending, on two cores.
TestClient's own round trip is part of the latency in process: some eight hand-offs between its
thread and the app's event loop a request, each a write to the loop's wake-up pipe (about 0.5 ms
of a request's 2). `--http` measures the service itself: `llr-asp serve --workers 1` on
127.0.0.1, one keep-alive connection, the log read back from its state dir when it has stopped.

`--distinct` sends distinct random patients (bench_batch.py's cohort, one a decision) instead of
the bundled examples in turn, so that the verdict cache cannot answer from an earlier request.

`--baseline` runs the same requests with signing and appending replaced by nothing (each
answer's "receipt" a constant), to tell the receipt's share from TestClient's and the machine's.

`--database URL` keeps the log in PostgreSQL (as `llr-asp serve --database`) instead of the
SQLite file; the bench empties its receipts and counts after the warm-up (give it a database
of its own).

Run: python benchmarks/bench_receipts.py [--decisions 10000] [--http] [--distinct] [--baseline]
     [--database URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from llr_asp.core.documents import validate
from llr_asp.core.reasoner import Reasoner
from llr_asp.formats.receipts import Receipt, answers_hash, differences, public_keys
from llr_asp.web import create_app
from llr_asp.web.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
POLICIES = ("hip-resurfacing", "knee-resurfacing")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def in_process(
    app: Any, bodies: list[bytes], examples: list[bytes], decisions: int, baseline: bool, database: str | None
) -> tuple[list[float], list[float], list[tuple[bytes, str]]]:
    """Latencies, receipts' own times and (body, receipt) pairs of `decisions` explains through
    Starlette's TestClient, after a warm-up whose receipts are emptied from the log."""
    receipts, state = app.state.receipts, app.state.settings.state_dir
    issue, issuing = receipts.issue, []

    def timed_issue(*args: Any) -> str:
        if baseline:
            return "-"
        start = time.perf_counter()
        try:
            return str(issue(*args))
        finally:
            issuing.append(time.perf_counter() - start)

    receipts.issue = timed_issue
    given: list[tuple[bytes, str]] = []
    latencies = []
    with TestClient(app) as client:
        for n in range(200):  # warm-up, then the log starts afresh
            client.post("/api/v1/explain?policy=hip-resurfacing", content=examples[n % len(examples)])
        receipts.log.close()
        if database:
            import psycopg

            with psycopg.connect(database, autocommit=True) as db:
                db.execute("TRUNCATE receipts, anchor, counts")
        for suffix in ("", "-wal", "-shm"):
            (state / f"receipts.sqlite3{suffix}").unlink(missing_ok=True)
        receipts._opened = None
        issuing.clear()
        for n in range(decisions):
            body, policy = bodies[n % len(bodies)], POLICIES[n % 2]
            start = time.perf_counter()
            answer = client.post(f"/api/v1/explain?policy={policy}", content=body)
            latencies.append(time.perf_counter() - start)
            assert answer.status_code == 200, answer.text
            given.append((body, json.loads(answer.content)["receipt"]))
    return latencies, issuing, given


def over_http(
    state: Path, bodies: list[bytes], decisions: int, database: str | None
) -> tuple[list[float], list[float], list[tuple[bytes, str]]]:
    """The same through `llr-asp serve --workers 1` on 127.0.0.1, one keep-alive connection:
    every request is a decision with its receipt (no warm-up is left out of the log; the
    first WARM are left out of the latencies). A receipt's own time is not seen from outside."""
    from bench_serve import Server

    options = ["--state-dir", str(state), *(["--database", database] if database else [])]
    server = Server(1, *options)
    given: list[tuple[bytes, str]] = []
    latencies = []
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for n in range(decisions):
            body, policy = bodies[n % len(bodies)], POLICIES[n % 2]
            start = time.perf_counter()
            path, headers = f"/api/v1/explain?policy={policy}", {"Content-Type": "application/json"}
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            content = response.read()
            elapsed = time.perf_counter() - start
            assert response.status == 200, content[:300]
            if n >= WARM:
                latencies.append(elapsed)
            given.append((body, json.loads(content)["receipt"]))
    finally:
        server.stop()
    return latencies, [], given


WARM = 100
"""Requests over HTTP left out of the latencies (the server's first groundings)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--baseline", action="store_true", help="no signing, no appending")
    parser.add_argument("--database", help="a PostgreSQL URL for the log (emptied after the warm-up)")
    parser.add_argument("--http", action="store_true", help="through llr-asp serve over loopback")
    parser.add_argument("--distinct", action="store_true", help="distinct random patients, not the examples")
    arguments = parser.parse_args()
    if arguments.http and arguments.baseline:
        parser.error("--baseline is in process only: the server always signs and appends")
    decisions, baseline = arguments.decisions, arguments.baseline
    bodies = examples = [p.read_bytes() for p in EXAMPLES]
    with tempfile.TemporaryDirectory() as folder:
        if arguments.distinct:
            from bench_batch import cohort

            cohort(Path(folder) / "cohort.jsonl", decisions, seed=35)
            bodies = (Path(folder) / "cohort.jsonl").read_bytes().splitlines()
        state = Path(folder) / "state"
        if arguments.http:
            latencies, issuing, given = over_http(state, bodies, decisions, arguments.database)
            app = create_app(settings=Settings(state_dir=state, database=arguments.database))
            receipts = app.state.receipts  # the log the server wrote, read after it stopped
        else:
            app = create_app(settings=Settings(state_dir=state, database=arguments.database))
            receipts = app.state.receipts
            database = arguments.database
            latencies, issuing, given = in_process(app, bodies, examples, decisions, baseline, database)
        if baseline:
            p50, p99 = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
            mean = statistics.fmean(latencies) * 1e3
            print(
                f"BASELINE (no receipts), {decisions:,} explains: "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {mean:.2f} ms"
            )
            return
        log = receipts.log
        audit = log.audit()
        kept = list(log.receipts())
        keys = public_keys(log.jwks(), "log")
        start = time.perf_counter()
        reasoner, failures = Reasoner.load(), 0
        for (body, text), (_, stored) in zip(given, kept):
            receipt = Receipt.read(text)
            patient = validate(json.loads(body), reasoner.rules, "example")
            [decision] = reasoner.decide(patient, [reasoner.rules.policies[receipt.claims["policy"]]])
            row = log.find(receipt.hash)  # the salt its answers' hash is keyed with: the log's
            found = differences(receipt.claims, decision, answers_hash(patient, row.salt if row else None))
            failures += bool(found) or not receipt.signed_by(keys) or stored != text or row is None
        verifying = time.perf_counter() - start
        size = sum(p.stat().st_size for p in state.iterdir() if p.name.startswith("receipts"))
        if arguments.database:
            import psycopg

            with psycopg.connect(arguments.database) as db:
                [(size,)] = db.execute("SELECT pg_total_relation_size('receipts')").fetchall()
    ms = 1000.0
    store = "PostgreSQL" if arguments.database else "SQLite (WAL)"
    sent = "distinct random patients" if arguments.distinct else "the bundled examples in turn"
    harness = "llr-asp serve --workers 1, loopback keep-alive" if arguments.http else "TestClient, in process"
    print(f"decisions through POST /api/v1/explain ({harness}; log in {store}; {sent}): {decisions:,}")
    print(
        f"explain latency, signing and appending included: p50 {percentile(latencies, 0.5) * ms:.2f} ms, "
        f"p99 {percentile(latencies, 0.99) * ms:.2f} ms, mean {statistics.fmean(latencies) * ms:.2f} ms"
    )
    if issuing:
        print(
            "a receipt alone (sign + append in one transaction): "
            f"p50 {percentile(issuing, 0.5) * ms:.3f} ms, p99 {percentile(issuing, 0.99) * ms:.3f} ms"
        )
    print(
        f"log: {audit.receipts:,} receipts, {len(audit.breaks)} breaks; {len(given):,} answers given; "
        f"{size / 1e6:.1f} MB on disk"
    )
    print(f"verified from their answers: {len(given) - failures:,} of {len(given):,} in {verifying:.1f} s")
    if audit.receipts != decisions or len(kept) != len(given) or audit.breaks or failures:
        raise SystemExit("FAILED: the log does not hold every decision in an unbroken, verifiable chain")


if __name__ == "__main__":
    main()
