"""This checkout against a base commit, interleaved in one run, CPU time beside wall time (issue 39).

Not a test (machines are shared and noisy: the ratios of one run are what it reports). It clones
the repository at `--base` (default: where this branch left `main`) into a temporary directory
and measures each code base in turn, round after round, each in subprocesses that import their
own `llr_asp` (PYTHONPATH):

1. `explain EXAMPLE --format json` as a whole process: wall time (median of the rounds);
2. in process, one decision of a random patient (a cohort of distinct patients, so that no
   verdict cache helps unless two patients fall alike): CPU per decision, for one policy and for
   every policy, with the verdict cache's hit rate where there is one;
3. batch: CPU per row of `batch COHORT -p hip-resurfacing --jobs 1` on `--lines` random lines
   (bench_batch.py's cohort), the whole process; and the plain-Python floor on the same lines;
4. the service: `serve --workers 1`, `--requests` sequential POST /api/v1/explain of distinct
   random patients over one keep-alive connection: the server's CPU per request (from
   /proc/PID/stat), p50 and p99 latency, and the rate 16 client threads reach in `--seconds`.

Run: python benchmarks/bench_ab.py [--base REF] [--rounds 3] [--lines 100000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import RULES, cohort, plain_python

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "undetermined-new-referral.json"
TICK = os.sysconf("SC_CLK_TCK")


def env_for(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code)}


def explain_wall(code: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "llr_asp", "explain", EXAMPLE, "--format", "json"],
        cwd=code / "examples",
        env=env_for(code),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


IN_PROCESS = """
import json, sys, time
from llr_asp import Reasoner
from llr_asp.core.documents import validate
from llr_asp.core.patient import parse
lines = open(sys.argv[1]).read().splitlines()
reasoner = Reasoner.load()
rules = reasoner.rules
patients = [validate(parse(line, "cohort"), rules, "cohort") for line in lines]
first = list(rules.policies.values())[:1]
for p in patients[:20]:
    reasoner.decide(p, first); reasoner.decide(p)
out = {}
for name, chosen in (("one", first), ("every", None)):
    cache = getattr(reasoner, "verdicts", None)
    if cache is not None:
        cache.hits = cache.misses = 0
    start = time.process_time()
    for p in patients[20:]:
        reasoner.decide(p, chosen)
    out[name] = (time.process_time() - start) / (len(patients) - 20)
    out[name + "_hits"] = cache.hit_rate if cache is not None else None
print(json.dumps(out))
"""


def in_process(code: Path, lines: Path) -> dict[str, Any]:
    said = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(lines)],
        env=env_for(code),
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(said.stdout)  # type: ignore[no-any-return]


def batch_cpu(code: Path, lines: Path, count: int) -> tuple[float, float]:
    """CPU seconds per row and wall seconds of one `batch -p hip-resurfacing --jobs 1` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "llr_asp", "batch", str(lines), "-p", "hip-resurfacing", "--jobs", "1"],
        cwd=code,
        env=env_for(code),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / count, wall


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def service(code: Path, bodies: list[bytes], requests: int, seconds: int) -> dict[str, float]:
    port = free_port()
    state = tempfile.mkdtemp()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llr_asp",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--state-dir",
            state,
        ],
        cwd=code,
        env=env_for(code),
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/healthz")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def post(body: bytes, on: http.client.HTTPConnection = connection) -> None:
            on.request("POST", "/api/v1/explain", body, {"Content-Type": "application/json"})
            response = on.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"status {response.status}")

        for body in bodies[-200:]:  # warm-up: other patients than those measured
            post(body)
        times = []
        cpu = cpu_of(server.pid)
        for body in bodies[:requests]:
            start = time.perf_counter()
            post(body)
            times.append(time.perf_counter() - start)
        cpu = (cpu_of(server.pid) - cpu) / requests
        times.sort()
        counts = [0] * 16
        stop = time.monotonic() + seconds

        def client(i: int) -> None:
            own = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            n = i
            while time.monotonic() < stop:
                post(bodies[n % len(bodies)], own)
                counts[i] += 1
                n += 16

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=15)
        shutil.rmtree(state, ignore_errors=True)
    return {
        "cpu": cpu,
        "p50": statistics.median(times),
        "p99": times[int(len(times) * 0.99)],
        "rate": sum(counts) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default=None, help="git ref (default: where this branch left main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--explains", type=int, default=10, help="whole explain processes a round")
    parser.add_argument("--lines", type=int, default=100_000, help="batch lines")
    parser.add_argument("--patients", type=int, default=2_000, help="in-process decisions a round")
    parser.add_argument("--requests", type=int, default=3_000, help="sequential service requests a round")
    parser.add_argument("--seconds", type=int, default=8, help="the 16-client run, a round")
    options = parser.parse_args()
    base_ref = (
        options.base
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        base = work / "base"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(base)], check=True)
        subprocess.run(["git", "-C", str(base), "checkout", "--quiet", base_ref], check=True)
        this = work / "this"
        shutil.copytree(ROOT, this, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info"))
        sides = {"base": base, "this": this}
        hip = work / "hip.jsonl"
        cohort(hip, options.lines, seed=1)
        patients = work / "patients.jsonl"
        cohort(patients, options.patients + 20, seed=2)
        bodies = []
        served = work / "served.jsonl"
        cohort(served, options.requests + 200, seed=3)
        bodies = [line.encode() for line in served.read_text().splitlines()]
        results: dict[str, dict[str, list[Any]]] = {s: {} for s in sides}

        def note(side: str, key: str, value: Any) -> None:
            results[side].setdefault(key, []).append(value)

        floor_cpu = []
        for _ in range(options.rounds):
            start = time.process_time()
            plain_python(hip, work / "plain.jsonl")
            floor_cpu.append((time.process_time() - start) / options.lines)
            for side, code in sides.items():
                for _ in range(options.explains):
                    note(side, "explain", explain_wall(code))
                found = in_process(code, patients)
                for key, value in found.items():
                    note(side, key, value)
                cpu, wall = batch_cpu(code, hip, options.lines)
                note(side, "batch_cpu", cpu)
                note(side, "batch_wall", wall)
                for key, value in service(code, bodies, options.requests, options.seconds).items():
                    note(side, "serve_" + key, value)
            print(
                f"round done: {json.dumps({s: {k: v[-1] for k, v in r.items()} for s, r in results.items()})}"
            )

    def med(side: str, key: str) -> float:
        values = [v for v in results[side][key] if v is not None]
        return statistics.median(values) if values else float("nan")

    rows = [
        ("explain --format json, whole process (wall, ms)", "explain", 1e3),
        ("in process, one policy, CPU ms a decision", "one", 1e3),
        ("in process, every policy, CPU ms a decision", "every", 1e3),
        ("batch -p hip --jobs 1, CPU µs a row", "batch_cpu", 1e6),
        ("batch -p hip --jobs 1, wall s", "batch_wall", 1),
        ("service, server CPU ms an explain", "serve_cpu", 1e3),
        ("service p50 ms (sequential)", "serve_p50", 1e3),
        ("service p99 ms (sequential)", "serve_p99", 1e3),
        ("service, 1 worker, 16 clients: explains/s", "serve_rate", 1),
    ]
    print(f"\nthis checkout against {base_ref[:7]}, {options.rounds} interleaved rounds (medians):")
    print(f"  {'':52} {'base':>9} {'this':>9} {'this/base':>9}")
    for label, key, scale in rows:
        old, new = med("base", key) * scale, med("this", key) * scale
        print(f"  {label:52} {old:9.3f} {new:9.3f} {new / old:9.2f}")
    for side in sides:
        hits = [med(side, k) for k in ("one_hits", "every_hits")]
        if all(h == h for h in hits):
            print(
                f"  {side}: verdict cache hit rate, distinct random patients: {hits[0]:.1%} / {hits[1]:.1%}"
            )
    floor = statistics.median(floor_cpu) * 1e6
    print(
        f"  plain-Python floor (every policy, no missing): {floor:.1f} µs CPU a row; "
        f"batch -p hip this/floor {med('this', 'batch_cpu') * 1e6 / floor:.1f}x, "
        f"base/floor {med('base', 'batch_cpu') * 1e6 / floor:.1f}x"
    )
    print(f"  (rules: {len(RULES.policies)} policies)")


if __name__ == "__main__":
    main()
