"""Benchmark for the issue "The service under attack and under load" (not a test: machines are
shared and noisy). `llr-asp serve` on 127.0.0.1 while hostile clients run for a bounded time;
meanwhile a prober asks /healthz on a fresh connection every 50 ms and a clinician's client
sends sequential explains over one keep-alive connection. Reports p50/p99/max of both, what the
hostile clients were answered, and whether the server wrote any traceback.

The hostile mix, each in a process of its own, in a loop until the time is up:
  unknown-key  a 1 MiB record with one unknown key (difflib's suggestion over the whole key)
  empties      340,000 empty objects (just under 1 MiB)
  deep         a $next-question body nested 950 deep
  upload       a 64 MiB file streamed to /record (chunked)
  big-header   one 8 MiB header
  headers      20,000 headers
  hang-up      half a body, then the connection closed
  slowloris    20 connections sending a byte of their request head every second
  load         2 clients sending explains as fast as they are answered (--load)
and, from issue 38, each from another loopback address (127.0.0.2: the honest clients are
127.0.0.1, and the per-client connection bound is per address):
  abandoned    20 POST /result sent and dropped at once, each try (issue 38 HIGH 2)
  idle         40 idle connections held open, reopened when closed (MEDIUM 4)
  drip         2 uploads to /api/v1/batch dripping a byte every 0.5 s (MEDIUM 6)
  no-read      100 /openapi.json asked on one connection, never read (MEDIUM 5)
  smuggle      Content-Length with Transfer-Encoding (first red team)
  long-line    a 200 KB request line (first red team)
(The gzip bomb through fhirServer needs a signed CDS call and an EHR: tests/test_cds_prefetch.py.)

Each attacker but load waits --pause (50 ms) between tries: a hostile mix, not a flood of
connections (that is for a load balancer's connection limits, and would measure only how busy
the attackers keep this machine's two cores).

Target: /healthz and honest explain p99 under 100 ms throughout; no honest request refused; no
500, no traceback in the log.

Run: python benchmarks/bench_hostile.py [--seconds 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import select
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench_serve import BODIES, free_port
from timing import installed_cli

ROOT = Path(__file__).resolve().parent.parent


def _post(port: int, path: str, body: bytes, content_type: str = "application/json") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body, {"Content-Type": content_type})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its living descendants (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


HOSTILE = ("127.0.0.2", 0)
"""The issue 38 attackers' own address (still this machine's loopback)."""


def _connect(port: int, source: tuple[str, int] | None = None) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30, source_address=source)


def _raw(
    port: int, parts: list[bytes] | object, close_early: bool = False, source: tuple[str, int] | None = None
) -> int:
    """Send raw bytes; the status answered (0: none, the connection was closed)."""
    with _connect(port, source) as connection:
        try:
            for part in parts:  # type: ignore[attr-defined]
                connection.sendall(part)
        except OSError:
            pass
        if close_early:
            return 0
        try:
            head = connection.recv(64)
        except OSError:
            return 0
    return int(head.split()[1]) if head.startswith(b"HTTP/") else 0


# the bodies are made once: the attackers' own work would otherwise take the cores they share
UNKNOWN_KEY = json.dumps({"x" * ((1 << 20) - 20): 1}).encode()
EMPTIES = b"[" + b",".join([b"{}"] * 340_000) + b"]"  # just under 1 MiB
DEEP = (
    '{"resourceType": "QuestionnaireResponse", "status": "in-progress", "meta": '
    + '{"a": ' * 950
    + "{}"
    + "}" * 950
    + "}"
).encode()
BIG_HEADER = b"X-Big: " + b"a" * (8 << 20) + b"\r\n"
MANY_HEADERS = b"".join(b"X-%d: b\r\n" % n for n in range(20_000))


def unknown_key(port: int) -> int:
    return _post(port, "/api/v1/explain", UNKNOWN_KEY)


def empties(port: int) -> int:
    return _post(port, "/api/v1/explain", EMPTIES)


def deep(port: int) -> int:
    return _post(port, "/fhir/Questionnaire/$next-question", DEEP, "application/fhir+json")


def upload(port: int) -> int:
    head = (
        b"POST /record HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=B\r\n\r\n"
    )
    part = b'--B\r\nContent-Disposition: form-data; name="upload"; filename="big.json"\r\n\r\n'
    chunk = b"x" * (64 << 10)

    def parts() -> object:
        yield head
        yield b"%x\r\n%s\r\n" % (len(part), part)
        for _ in range(1024):  # 64 MiB
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

    return _raw(port, parts())


def big_header(port: int) -> int:
    return _raw(port, [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", BIG_HEADER, b"\r\n"])


def headers(port: int) -> int:
    return _raw(port, [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", MANY_HEADERS, b"\r\n"])


def hang_up(port: int) -> int:
    head = b"POST /api/v1/explain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    return _raw(port, [head, b'{"id": "' + b"x" * 50_000], close_early=True)


def load(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = Counter[int]()
    for n in range(200):
        connection.request("POST", "/api/v1/explain", BODIES[n % len(BODIES)])
        response = connection.getresponse()
        response.read()
        statuses[response.status] += 1
    return statuses.most_common(1)[0][0]


FORM = b"policy=hip-resurfacing&record=%7B%7D"


def abandoned(port: int) -> int:
    head = (
        b"POST /result HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(FORM)
    )
    for _ in range(20):
        _raw(port, [head + FORM], close_early=True, source=HOSTILE)
    return 0


def drip(port: int) -> int:
    head = b"POST /api/v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"

    def parts() -> object:
        yield head
        for _ in range(600):
            yield b" "
            time.sleep(0.5)

    return _raw(port, parts(), source=HOSTILE)


def no_read(port: int) -> int:
    with _connect(port, HOSTILE) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            connection.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 100)
            time.sleep(10)  # never reading
        except OSError:
            return 0
    return 0


def smuggle(port: int) -> int:
    return _raw(
        port,
        [
            b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        ],
        source=HOSTILE,
    )


def long_line(port: int) -> int:
    return _raw(port, [b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"], source=HOSTILE)


ATTACKS = {
    "abandoned": abandoned,
    "drip": drip,
    "no-read": no_read,
    "smuggle": smuggle,
    "long-line": long_line,
    "unknown-key": unknown_key,
    "empties": empties,
    "deep": deep,
    "upload": upload,
    "big-header": big_header,
    "headers": headers,
    "hang-up": hang_up,
    "load": load,
}


def attacker(
    name: str, port: int, until: float, pause: float, results: multiprocessing.Queue[tuple[str, Counter[int]]]
) -> None:
    attack, statuses = ATTACKS[name], Counter[int]()
    while time.time() < until:
        try:
            statuses[attack(port)] += 1
        except OSError:
            statuses[0] += 1
        if name != "load":
            time.sleep(pause)
    results.put((name, statuses))  # once: a process with queued items cannot end unread


def slowloris(port: int, until: float, results: multiprocessing.Queue[tuple[str, Counter[int]]]) -> None:
    """20 connections, each sending one byte of its request head a second; reconnecting when
    the server hangs up (counted as status 0)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    open_: list[tuple[socket.socket, int]] = []
    closed = Counter[int]()
    while time.time() < until:
        while len(open_) < 20:
            try:
                open_.append((socket.create_connection(("127.0.0.1", port), timeout=5), 0))
            except OSError:
                break
        kept = []
        for connection, sent in open_:
            try:
                connection.sendall(request[sent : sent + 1])
                kept.append((connection, sent + 1))
            except OSError:
                connection.close()
                closed[0] += 1
        open_ = kept
        time.sleep(1.0)
    for connection, _ in open_:
        connection.close()
    closed[-1] += 0
    results.put(("slowloris", closed))


def idle(port: int, until: float, results: multiprocessing.Queue[tuple[str, Counter[int]]]) -> None:
    """40 idle connections from 127.0.0.2, reopened when the server closes them."""
    held: list[socket.socket] = []
    outcome = Counter[int]()
    while time.time() < until:
        while len(held) < 40:
            try:
                held.append(_connect(port, HOSTILE))
            except OSError:
                outcome[0] += 1
                break
        time.sleep(0.5)
        kept = []
        for connection in held:
            readable = select.select([connection], [], [], 0)[0]
            if readable:
                try:
                    head = connection.recv(64)
                except OSError:
                    head = b""
                outcome[int(head.split()[1]) if head.startswith(b"HTTP/") else 0] += 1
                connection.close()
            else:
                kept.append(connection)
        held = kept
    for connection in held:
        connection.close()
    results.put(("idle", outcome))


REFUSED: Counter[int] = Counter()
"""The statuses other than 200 the honest clients were answered (each should be none)."""


def probe(port: int, until: float, path: str, keep_alive: bool) -> list[float]:
    """Times of `path` (GET /healthz on a fresh connection every 50 ms, or POST explains in turn
    on one keep-alive connection)."""
    times, n = [], 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < until:
        start = time.perf_counter()
        try:
            if not keep_alive:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", path)
            else:
                connection.request("POST", path, BODIES[n % len(BODIES)])
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                times.append(time.perf_counter() - start)
            else:
                REFUSED[response.status] += 1
        except OSError:
            times.append(float("inf"))
            REFUSED[0] += 1
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n += 1
        if not keep_alive:
            connection.close()
            time.sleep(0.05)
    return times


def summary(name: str, times: list[float]) -> str:
    times = sorted(times)
    if not times:
        return f"{name}: no answers"
    p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    return (
        f"{name}: {len(times)} answers, p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, "
        f"max {times[-1] * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds each attacker waits between tries")
    parser.add_argument("--load", type=int, default=2, help="clients sending explains as fast as answered")
    parser.add_argument(
        "--only",
        action="append",
        choices=[*ATTACKS, "slowloris", "idle"],
        help="run only this attacker (repeatable): to see which one costs the honest clients most",
    )
    arguments = parser.parse_args()
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    server = subprocess.Popen(
        [
            installed_cli(),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(arguments.workers),
            "--no-auth",
            "--proxy",
            "127.0.0.9",  # no proxy here: 127.0.0.1 and 127.0.0.2 are clients like any other
        ],
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start in 60 s")
        quiet = probe(port, time.time() + 3, "/healthz", keep_alive=False)
        until = time.time() + arguments.seconds
        results: multiprocessing.Queue[tuple[str, Counter[int]]] = multiprocessing.Queue()
        chosen = set(arguments.only or [*ATTACKS, "slowloris", "idle"])
        processes = [
            multiprocessing.Process(target=attacker, args=(name, port, until, arguments.pause, results))
            for name in ATTACKS
            if name in chosen
            for _ in range(arguments.load if name == "load" else 2 if name == "drip" else 1)
        ]
        processes += [
            multiprocessing.Process(target=target, args=(port, until, results))
            for name, target in (("slowloris", slowloris), ("idle", idle))
            if name in chosen
        ]
        cpu_before, started = cpu_seconds(server.pid), time.monotonic()
        for process in processes:
            process.start()
        time.sleep(0.5)  # the attacks are under way
        measured: dict[str, list[float]] = {}
        explains = threading.Thread(
            target=lambda: measured.setdefault("explain", probe(port, until, "/api/v1/explain", True))
        )
        explains.start()
        health = probe(port, until, "/healthz", keep_alive=False)
        explains.join()
        server_cpu = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - started)
        answered: dict[str, Counter[int]] = {}
        for _ in processes:
            try:
                name, statuses = results.get(timeout=60)
            except queue.Empty:
                break
            answered.setdefault(name, Counter()).update(statuses)
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    finally:
        server.terminate()
        server.wait(timeout=30)
    log.seek(0)
    written = log.read()
    print(f"llr-asp serve --workers {arguments.workers}, hostile mix for {arguments.seconds} s:")
    print("  " + summary("/healthz, quiet, fresh connections", quiet))
    print("  " + summary("/healthz under attack, fresh connections", health) + "   (target p99 < 100 ms)")
    print("  " + summary("explain under attack, one keep-alive client", measured.get("explain", [])))
    print(f"  the server's CPU under attack: {server_cpu:.2f} cores of {os.cpu_count()}")
    for name, statuses in sorted(answered.items()):
        counts = ", ".join(
            f"{status or 'closed by the server'}: {count}"
            for status, count in sorted(statuses.items())
            if count
        )
        print(f"  {name:12} {counts}")
    refused = ", ".join(f"{status or 'no answer'}: {count}" for status, count in sorted(REFUSED.items()))
    print(f"  honest requests refused: {refused or 'none'}")
    tracebacks = written.count("Traceback")
    print(f"  server log: {len(written.splitlines())} lines, {tracebacks} tracebacks")


if __name__ == "__main__":
    main()
