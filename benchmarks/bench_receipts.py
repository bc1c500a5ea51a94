"""Benchmark for issue 35 (receipts; not a test: machines are shared and noisy). In process: the
service's ASGI app driven by Starlette's TestClient, nothing listening on any port.

1. --decisions (default 10,000) POST /api/v1/explain, one policy each (the bundled examples in
   turn, hip and knee alternately): each answer's latency, signing and appending included
   (p50, p99), and the cost of a receipt alone (sign + append, timed around the service's own
   `Receipts.issue`).
2. The log afterwards: as many receipts as decisions, an unbroken chain (`receipt audit`'s walk),
   and every receipt verified from its answers: signature, answers' hash, decision re-made.

Targets (issue 35): explain p50 <= 2 ms, p99 <= 10 ms with signing and appending, on two cores.
TestClient's own round trip (a thread and an event loop per call) is part of the latency here;
bench_serve.py measures the service over HTTP.

`--baseline` runs the same requests with signing and appending replaced by nothing (each
answer's "receipt" a constant), to tell the receipt's share from TestClient's and the machine's.

`--database URL` keeps the log in PostgreSQL (as `llr-asp serve --database`) instead of the
SQLite file; the bench empties its receipts and counts after the warm-up (give it a database
of its own).

Run: python benchmarks/bench_receipts.py [--decisions 10000] [--baseline] [--database URL]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--baseline", action="store_true", help="no signing, no appending")
    parser.add_argument("--database", help="a PostgreSQL URL for the log (emptied after the warm-up)")
    arguments = parser.parse_args()
    decisions, baseline = arguments.decisions, arguments.baseline
    bodies = [p.read_bytes() for p in EXAMPLES]
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state"
        app = create_app(settings=Settings(state_dir=state, database=arguments.database))
        receipts = app.state.receipts
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
                client.post("/api/v1/explain?policy=hip-resurfacing", content=bodies[n % len(bodies)])
            receipts.log.close()
            if arguments.database:
                import psycopg

                with psycopg.connect(arguments.database, autocommit=True) as db:
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
    print(f"decisions through POST /api/v1/explain (TestClient, in process; log in {store}): {decisions:,}")
    print(
        f"explain latency, signing and appending included: p50 {percentile(latencies, 0.5) * ms:.2f} ms, "
        f"p99 {percentile(latencies, 0.99) * ms:.2f} ms, mean {statistics.fmean(latencies) * ms:.2f} ms"
    )
    print(
        f"a receipt alone (sign + append in one transaction): p50 {percentile(issuing, 0.5) * ms:.3f} ms, "
        f"p99 {percentile(issuing, 0.99) * ms:.3f} ms"
    )
    print(
        f"log: {audit.receipts:,} receipts, {len(audit.breaks)} breaks; {len(given):,} answers given; "
        f"{size / 1e6:.1f} MB on disk"
    )
    print(f"verified from their answers: {len(given) - failures:,} of {len(given):,} in {verifying:.1f} s")
    if audit.receipts != decisions or audit.breaks or failures:
        raise SystemExit("FAILED: the log does not hold every decision in an unbroken, verifiable chain")


if __name__ == "__main__":
    main()
