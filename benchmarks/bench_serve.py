"""Benchmark for the issue "The clinician's page and the JSON API" (not a test: machines are
shared and noisy). Every request goes to 127.0.0.1 only, bounded in count and time.

1. Latency: `llr-asp serve --workers 1`, sequential POST /api/v1/explain (both policies, the
   bundled examples in turn) over one keep-alive connection: p50 and p99.
   Targets: p50 <= 2 ms, p99 <= 10 ms.
2. Throughput: `llr-asp serve --workers 2`, 32 concurrent clients for --seconds: requests a
   second, errors, and the server's memory (every process) before and after. With Debian's
   `wrk` installed it drives the load (a client in C); otherwise Python threads do.
   Targets: >= 1,500 explains a second, 0 errors over at least 20,000 requests, flat memory.

Run: python benchmarks/bench_serve.py [--requests 3000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from timing import installed_cli

ROOT = Path(__file__).resolve().parent.parent
BODIES = [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.json"))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`llr-asp serve` on 127.0.0.1, started and stopped by this benchmark."""

    def __init__(self, workers: int, *options: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [installed_cli(), "serve", "--port", str(self.port), "--workers", str(workers), *options],
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the server did not start in 60 s")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers together."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def latency(requests: int) -> None:
    server = Server(workers=1)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        times = []
        for n in range(requests + 100):
            start = time.perf_counter()
            connection.request(
                "POST", "/api/v1/explain", BODIES[n % len(BODIES)], {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            if response.status != 200:
                raise SystemExit(f"status {response.status}")
            if n >= 100:  # after a warm-up
                times.append(elapsed)
    finally:
        server.stop()
    times.sort()
    p50, p99 = statistics.median(times), times[int(len(times) * 0.99)]
    print(f"latency, 1 worker, {requests} sequential explains (both policies), loopback keep-alive:")
    worst = times[-1] * 1e3
    print(
        f"  p50 {p50 * 1e3:.2f} ms (target <= 2)   p99 {p99 * 1e3:.2f} ms (target <= 10)   max {worst:.1f} ms"
    )


def throughput(seconds: int, clients: int) -> None:
    server = Server(workers=2)
    load = _wrk if shutil.which("wrk") else _threads
    try:
        idle = server.rss_mb()
        load(server.port, 3, clients)  # warm-up: each worker's engines thread and caches
        before = server.rss_mb()
        requests, errors, client = load(server.port, seconds, clients)
        after = server.rss_mb()
    finally:
        server.stop()
    print(f"throughput, 2 workers, {clients} concurrent clients for {seconds} s ({client}):")
    print(f"  {requests:,} requests, {requests / seconds:,.0f} explains/s (target >= 1,500), {errors} errors")
    print(
        f"  server memory (all processes): {idle:.0f} MB idle, {before:.0f} MB after a 3 s warm-up, "
        f"{after:.0f} MB after the run (target: flat)"
    )


def _wrk(port: int, seconds: int, clients: int) -> tuple[int, int, str]:
    bodies = ", ".join(json.dumps(b.decode()) for b in BODIES)
    script = f"""
local bodies = {{{bodies}}}
local n = 0
request = function()
  n = n + 1
  local headers = {{["Content-Type"] = "application/json"}}
  return wrk.format("POST", "/api/v1/explain", headers, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("RESULT %d %d\\n", summary.requests, failed))
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(clients),
                "-d",
                f"{seconds}s",
                "-s",
                lua.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(lua.name)
    requests, errors = next(line.split()[1:] for line in out.splitlines() if line.startswith("RESULT"))
    return int(requests), int(errors), "wrk"


def _threads(port: int, seconds: int, clients: int) -> tuple[int, int, str]:
    counts = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = i
        while time.monotonic() < stop:
            try:
                connection.request("POST", "/api/v1/explain", BODIES[n % len(BODIES)])
                response = connection.getresponse()
                response.read()
                counts[i] += 1
                errors[i] += response.status != 200
            except OSError:
                errors[i] += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), sum(errors), "Python threads"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests for latency")
    parser.add_argument("--seconds", type=int, default=15, help="duration of the throughput run")
    parser.add_argument("--clients", type=int, default=32)
    arguments = parser.parse_args()
    latency(arguments.requests)
    throughput(arguments.seconds, arguments.clients)
