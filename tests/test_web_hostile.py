"""The service under attack and under load (issue "The service under attack and under load"):
bodies bounded while they stream, header limits, security headers on every error, no traceback
or value in the log, malformed FHIR shapes a clean 422, the event loop free while a hostile body
is parsed, and the caps on the reasoning queue, its time, batches, slow senders and connections.

In-process tests drive the application through httpx's ASGI transport; those about the HTTP
server itself run uvicorn on 127.0.0.1 in a thread, with exactly the options `llr-asp serve`
gives it (`server.uvicorn_options`), each bounded in requests and time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'llr-asp[web]'")
import httpx
from fastapi.testclient import TestClient
from serving import serving

from llr_asp import patient as patient_module
from llr_asp.web import api, create_app, server
from llr_asp.web.settings import ENV, Settings

EXAMPLES = Path(__file__).parent.parent / "examples"
RECORD = (EXAMPLES / "route-c1-pain.json").read_bytes()
CHUNK = 64 << 10
SMALL = Settings(max_form_body=1 << 20, max_batch_body=2 << 20, max_batches=1, reasoning_seconds=5.0)


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(settings=SMALL)


@pytest.fixture(scope="module")
def client(app: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def pulled(app: Any, url: str, head: bytes, megabytes: int, content_type: str) -> tuple[int, int]:
    """POST a body of `head` and `megabytes` MiB that the server pulls chunk by chunk (no
    Content-Length): the status, and how many bytes the server pulled before it answered."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for _ in range((megabytes << 20) // CHUNK):
            sent += CHUNK
            yield b"x" * CHUNK

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        reply = await http.post(url, content=body(), headers={"content-type": content_type})
    return reply.status_code, sent


MULTIPART = (
    b'--B\r\nContent-Disposition: form-data; name="upload"; filename="big.json"\r\n'
    b"Content-Type: application/json\r\n\r\n"
)


@pytest.mark.parametrize(
    ("url", "head", "content_type", "limit"),
    [
        ("/record", MULTIPART, "multipart/form-data; boundary=B", SMALL.max_form_body),
        ("/ask", b"record=", "application/x-www-form-urlencoded", SMALL.max_form_body),
        ("/api/v1/explain", b'{"id": "', "application/json", SMALL.max_body),
        ("/fhir/Questionnaire/$next-question", b'{"id": "', "application/fhir+json", SMALL.max_body),
        ("/api/v1/batch", b"", "application/x-ndjson", SMALL.max_batch_body),
    ],
)
def test_a_body_is_cut_off_at_its_limit_while_it_streams(
    app: Any, url: str, head: bytes, content_type: str, limit: int
) -> None:
    """A 16 MiB upload is refused (413) once it passes the route's limit, not spooled whole
    first (a 256 MiB file to /record was accepted in 1.6 s, then refused)."""
    status, sent = run(pulled(app, url, head, 16, content_type))
    assert status == 413 and sent <= limit + CHUNK


def test_a_declared_length_over_the_limit_is_refused_before_reading(app: Any) -> None:
    async def body() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            headers = {"content-length": str(64 << 20), "content-type": "multipart/form-data; boundary=B"}
            return await http.post("/record", content=body(), headers=headers)

    reply = run(post())
    assert reply.status_code == 413 and "over 1 MiB" in reply.text and "<html" in reply.text.lower()


def security_headers_of(response: httpx.Response) -> dict[str, str]:
    return {
        name: response.headers.get(name, "")
        for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "cache-control")
    }


def test_every_error_carries_the_security_headers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """413, 404, 405, 422, 401 and 500 as a 200: the headers are added outside the layer that
    turns errors into 500s (a 500 had none)."""
    engines = client.app.state.engines  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a fault")

    monkeypatch.setattr(engines.interviewer, "decide", broken)
    replies = {
        500: client.post("/api/v1/explain", content=RECORD),
        413: client.post("/api/v1/explain", content=b"x" * (2 << 20)),
        404: client.get("/nowhere"),
        405: client.get("/api/v1/explain"),
        422: client.post("/api/v1/explain", content=b"{not json"),
        401: client.get("/cds-services"),
    }
    for status, reply in replies.items():
        assert reply.status_code == status
        headers = security_headers_of(reply)
        assert "default-src 'self'" in headers["content-security-policy"], status
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store", status


def test_a_fault_is_logged_as_its_type_and_route_without_values(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engines = client.app.state.engines  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("Jane Doe, NHS 943 476 5919")

    monkeypatch.setattr(engines.interviewer, "decide", broken)
    with caplog.at_level(logging.INFO):
        assert client.post("/api/v1/explain", content=RECORD).status_code == 500
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "KeyError" in logged and "/api/v1/explain" in logged
    assert "Jane" not in logged and "943" not in logged and "Jane" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)  # no traceback: its frames hold values


@pytest.mark.parametrize("name", ["患者-7", "Ελένη", "Олег", "José Ñúñez"])
def test_the_letter_of_a_patient_named_in_any_script_downloads(client: TestClient, name: str) -> None:
    for form, suffix in (("text", "txt"), ("markdown", "md")):
        data = {"policy": "hip-resurfacing", "record": json.dumps({"id": name}), "format": form}
        reply = client.post("/letter", data=data)
        assert reply.status_code == 200, reply.text
        disposition = reply.headers["content-disposition"]
        assert disposition.isascii() and 'filename="llr-asp-' in disposition
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"llr-asp-{name.replace(' ', '-')}.{suffix}"
        assert name in reply.text  # the letter names the patient as written


def adaptive(**changes: Any) -> dict[str, Any]:
    """A $next-question QuestionnaireResponse for the hip policy (sex answered), with changes."""
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "item": [{"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}]}],
    }
    resource.update(changes)
    return resource


DEEP = "NESTED"  # stands for a value nested 950 deep, written into the body's text


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"resourceType": "Parameters", "parameter": 5}, "parameter"),
        (adaptive(item=5), "item"),
        (adaptive(item=[{"linkId": ["sex"]}]), "item[0]"),
        (adaptive(contained=[{"resourceType": "Questionnaire", "item": []}]), "id"),
        (
            adaptive(contained=[{"resourceType": "Questionnaire", "id": "q", "derivedFrom": {}}]),
            "derivedFrom",
        ),
        (adaptive(contained={"resourceType": "Questionnaire"}), "contained"),
        (adaptive(contained=[{"resourceType": "Questionnaire", "id": "q", "item": {}}]), "item"),
        (adaptive(extension=["not an extension"]), "extension[0]"),
        (adaptive(extension={"url": "x"}), "extension"),
        (adaptive(meta=DEEP), "nested"),
    ],
)
def test_malformed_next_question_bodies_are_400_naming_where(
    client: TestClient, body: dict[str, Any], where: str
) -> None:
    """400 with an OperationOutcome, as DTR requires of $next-question (issue 23)."""
    text = json.dumps(body).replace(json.dumps(DEEP), '{"a": ' * 950 + "{}" + "}" * 950)
    reply = client.post("/fhir/Questionnaire/$next-question", content=text)
    assert reply.status_code == 400, reply.text
    assert where in reply.json()["issue"][0]["diagnostics"]


async def _health_while(app: Any, slow_request: Any) -> tuple[float, float]:
    """When /healthz, asked 0.2 s after `slow_request` began, was answered, and when that one
    was (seconds from its start)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        begun = time.perf_counter()

        async def slow() -> float:
            await slow_request(http)
            return time.perf_counter() - begun

        async def health() -> float:
            await asyncio.sleep(0.2)  # the slow request is under way
            assert (await http.get("/healthz")).status_code == 200
            return time.perf_counter() - begun

        slow_done, health_done = await asyncio.gather(slow(), health())
    return health_done, slow_done


def test_a_large_body_is_parsed_off_the_event_loop(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a large body is parsed (here slowly), /healthz answers at once (a 1 MiB body with
    one unknown key stalled every other request of the worker for 0.3-0.6 s)."""
    real = api.parse

    def slow_parse(text: str, source: str) -> Any:
        time.sleep(1.0)
        return real(text, source)

    monkeypatch.setattr(api, "parse", slow_parse)
    big = json.dumps({"id": "p", "meta": {"notes": "n" * (100 << 10)}})

    async def explain(http: httpx.AsyncClient) -> None:
        assert (await http.post("/api/v1/explain", content=big)).status_code == 200

    health_done, slow_done = run(_health_while(app, explain))
    assert health_done < 0.7 < 1.0 < slow_done


def test_a_megabyte_key_gets_no_suggestion_work_and_is_not_echoed(
    rules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import difflib

    compared: list[int] = []
    real = difflib.get_close_matches

    def recording(word: str, *args: Any, **kwargs: Any) -> Any:
        compared.append(len(word))
        return real(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", recording)
    with pytest.raises(patient_module.InputError) as refused:
        patient_module.validate({"x" * (1 << 20): 1}, rules, "request body")
    assert len(str(refused.value)) < 300 and "1,048,576 characters" in str(refused.value)
    assert all(n < 1000 for n in compared)
    with pytest.raises(patient_module.InputError, match='did you mean "sex"'):
        patient_module.validate({"sexx": "male"}, rules, "request body")  # a typo is still helped


def slowed(app: Any, monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[float]:
    """Every decision takes `seconds` longer; the list records when each one began."""
    interviewer = app.state.engines.interviewer
    decide, begun = interviewer.decide, []

    def slow(*args: Any, **kwargs: Any) -> Any:
        begun.append(time.perf_counter())
        time.sleep(seconds)
        return decide(*args, **kwargs)

    monkeypatch.setattr(interviewer, "decide", slow)
    return begun


async def _explains(app: Any, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:
        return list(
            await asyncio.gather(*(http.post("/api/v1/explain", content=RECORD) for _ in range(count)))
        )


def test_past_the_queue_cap_a_request_is_503_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings=Settings(max_queue=2))
    begun = slowed(app, monkeypatch, 0.3)
    replies = run(_explains(app, 5))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 503, 503, 503] and len(begun) == 2
    assert "busy" in next(r for r in replies if r.status_code == 503).json()["error"]


def test_reasoning_that_takes_too_long_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings=Settings(reasoning_seconds=0.2))
    slowed(app, monkeypatch, 0.6)
    [reply] = run(_explains(app, 1))
    assert reply.status_code == 503 and "no answer within 0.2 s" in reply.json()["error"]


def test_a_request_whose_client_hung_up_while_it_waited_is_not_reasoned(
    app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    begun = slowed(app, monkeypatch, 0.5)

    async def both() -> list[dict[str, Any]]:
        first = asyncio.ensure_future(_explains(app, 1))
        while not begun:  # the first one reasons
            await asyncio.sleep(0.01)
        messages = iter([{"type": "http.request", "body": RECORD, "more_body": False}])

        async def receive() -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})  # then the client hangs up

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/v1/explain",
            "raw_path": b"/api/v1/explain",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
        }
        await app(scope, receive, send)
        await first
        return sent

    with caplog.at_level(logging.WARNING):
        run(both())
        time.sleep(0.3)  # the engines' thread has taken the abandoned call by now
    assert len(begun) == 1 and not caplog.records


def test_one_batch_at_a_time_past_the_cap_is_503(app: Any) -> None:
    async def both() -> tuple[int, int]:
        release = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield RECORD.replace(b"\n", b" ") + b"\n"
            await release.wait()

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.ensure_future(http.post("/api/v1/batch", content=slow_body()))
            await asyncio.sleep(0.2)
            second = await http.post("/api/v1/batch", content=RECORD.replace(b"\n", b" "))
            release.set()
            return (await first).status_code, second.status_code

    assert run(both()) == (200, 503)
    third = TestClient(app).post("/api/v1/batch", content=RECORD.replace(b"\n", b" "))
    assert third.status_code == 200  # the slot was given back


# --- the HTTP server itself: uvicorn on 127.0.0.1 with the options `llr-asp serve` gives it ---

SERVED = Settings(max_connections=6, header_seconds=0.5)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, int]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, SERVED.to_json())  # as `serve` hands them to its workers
        server._header_seconds.cache_clear()
        with serving(create_app(), log_config=None, **server.uvicorn_options(SERVED)) as port:
            yield "127.0.0.1", port
    server._header_seconds.cache_clear()


def exchange(address: tuple[str, int], parts: Iterator[bytes], seconds: float = 10) -> bytes:
    """Send `parts` until the server answers or hangs up; what it answered."""
    with socket.create_connection(address, timeout=seconds) as connection:
        for part in parts:
            try:
                connection.sendall(part)
            except OSError:  # it hung up: read what it said first
                break
            if select.select([connection], [], [], 0)[0]:
                break
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer


def request(*headers: bytes) -> Iterator[bytes]:
    yield b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    yield from headers
    yield b"\r\n"


def test_a_healthy_request_is_answered(served: tuple[str, int]) -> None:
    assert exchange(served, request(b"X-A: b\r\n" * 50)).startswith(b"HTTP/1.1 200")


def test_an_8_mib_header_is_refused(served: tuple[str, int]) -> None:
    huge = (b"X-Big: " + b"a" * CHUNK for _ in range(128))  # one header, sent in pieces
    assert exchange(served, request(*huge)).startswith(b"HTTP/1.1 400")


def test_20000_headers_are_refused(served: tuple[str, int]) -> None:
    assert exchange(served, request(*(b"X-%d: b\r\n" % n for n in range(20000)))).startswith(b"HTTP/1.1 400")


def test_a_slow_request_head_is_hung_up_on(served: tuple[str, int]) -> None:
    with socket.create_connection(served, timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        begun = time.monotonic()
        assert connection.recv(1024) == b"" and time.monotonic() - begun < 3


def test_a_request_head_sent_a_byte_at_a_time_is_hung_up_on(served: tuple[str, int]) -> None:
    """Slowloris: each byte in time, the whole head never; the head has one deadline."""
    with socket.create_connection(served, timeout=5) as connection:
        begun = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([connection], [], [], 0.1)[0]:
                break
        assert connection.recv(1024) == b"" and time.monotonic() - begun < 3


def test_past_the_connection_cap_a_request_is_503(served: tuple[str, int]) -> None:
    held = [socket.create_connection(served, timeout=5) for _ in range(SERVED.max_connections)]
    try:
        time.sleep(0.1)
        assert exchange(served, request()).startswith(b"HTTP/1.1 503")
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    assert exchange(served, request()).startswith(b"HTTP/1.1 200")


def test_a_client_that_hangs_up_mid_body_leaves_nothing_in_the_log(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for path in (b"/api/v1/explain", b"/record"):
            with socket.create_connection(served, timeout=5) as connection:
                connection.sendall(
                    b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n" % path
                )
                connection.sendall(b"Content-Type: application/x-www-form-urlencoded\r\n\r\nrecord=%7B")
                time.sleep(0.1)
        time.sleep(0.5)  # the server has seen both hang-ups
    assert not [r for r in caplog.records if r.exc_info or "Exception" in r.getMessage()]
    assert exchange(served, request()).startswith(b"HTTP/1.1 200")
