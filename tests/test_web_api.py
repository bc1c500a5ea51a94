"""The JSON API of `llr-asp serve`: every endpoint, every error status, and the same JSON as the
CLI's `--format json` on every example and on random patients."""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'llr-asp[web]'")
import httpx
from fastapi.testclient import TestClient
from helpers import unreceipted
from test_batch import random_patient
from tiers import a_few
from typer.testing import CliRunner

from llr_asp import RuleSet
from llr_asp.cli import app as cli
from llr_asp.web import create_app, server

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
runner = CliRunner()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def cli_json(*args: str, stdin: str | None = None) -> Any:
    result = runner.invoke(cli, list(args), input=stdin)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", a_few(EXAMPLES, 3, ids=lambda p: p.stem))
def test_explain_whatif_and_next_equal_the_cli_on_every_example(client: TestClient, path: Path) -> None:
    body = path.read_bytes()
    for command in ("explain", "next"):
        assert unreceipted(client.post(f"/api/v1/{command}", content=body).json()) == cli_json(
            command, str(path), "-f", "json"
        )
    hip = cli_json("whatif", str(path), "-p", "hip-resurfacing", "-f", "json", "--limit", "3")
    assert (
        unreceipted(client.post("/api/v1/whatif?policy=hip-resurfacing&limit=3", content=body).json()) == hip
    )


@pytest.mark.whole
def test_random_patients_get_the_cli_decision(client: TestClient, rules: RuleSet) -> None:
    rng = random.Random(14)
    for n in range(25):
        document = json.dumps({"id": f"r{n}", **random_patient(rng, rules)})
        assert unreceipted(client.post("/api/v1/explain", content=document).json()) == cli_json(
            "explain", "-", "-f", "json", stdin=document
        )


def test_batch_streams_json_lines_as_the_cli(client: TestClient, tmp_path: Path) -> None:
    lines = [p.read_text().replace("\n", " ") for p in EXAMPLES[:6]] + [
        "{broken",
        '{"pain": {"severity": "Severe"}}',
    ]
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text("\n".join(lines) + "\n")
    response = client.post("/api/v1/batch?policy=all", content=cohort.read_bytes())
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    got = [json.loads(line) for line in response.text.splitlines()]
    result = runner.invoke(cli, ["batch", str(cohort), "-j", "1"])
    expected = [json.loads(line) for line in result.stdout.splitlines()]
    for line in expected:  # the CLI names the file, the API the line
        if "error" in line:
            line["error"] = line["error"].replace(f"{cohort}:", "line:", 1)
    assert got == expected


def test_a_lone_surrogate_in_a_record_comes_back_as_it_was_sent(client: TestClient) -> None:
    """JSON lets a record escape half a UTF-16 pair; UTF-8 cannot carry it, so it is sent back
    escaped (the API's JSON, the page's hidden record) and reads back as the same string."""
    record = '{"id": "\\ud800", "sex": "male"}'
    for command in ("explain", "next", "whatif"):
        answer = client.post(f"/api/v1/{command}", content=record)
        assert answer.status_code == 200 and {a["patient"] for a in answer.json()} == {"\ud800"}
    page = client.post("/ask", data={"policy": "hip-resurfacing", "record": record})
    assert page.status_code == 200
    kept = re.search(r'name="record" value="([^"]*)"', page.text)
    assert kept is not None and json.loads(html.unescape(kept.group(1))) == json.loads(record)


def test_policies_schema_and_health(client: TestClient, rules: RuleSet) -> None:
    assert client.get("/api/v1/policies").json() == cli_json("policies", "-f", "json")
    assert client.get("/api/v1/schema").json() == cli_json("schema")
    assert client.get("/healthz").json() == {"status": "ok", "rules": rules.digest}
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/explain", "/api/v1/whatif", "/api/v1/next", "/api/v1/batch"} <= set(spec["paths"])
    assert spec["components"]["schemas"]["PatientRecord"]["title"] == "llr-asp patient record"


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "words"),
    [
        (
            "post",
            "/api/v1/explain",
            '{"conservative": {"months": "six"}}',
            422,
            "conservative.months: expected a number",
        ),
        ("post", "/api/v1/explain", "{not json", 422, "invalid JSON"),
        ("post", "/api/v1/explain", '{"pain.severity": "mild"}', 422, "fields nest"),
        ("post", "/api/v1/explain?policy=nope", "{}", 404, 'unknown policy "nope"'),
        ("post", "/api/v1/batch?policy=nope", "{}", 404, 'unknown policy "nope"'),
        ("post", "/api/v1/whatif?limit=x", "{}", 422, "limit"),
        ("post", "/api/v1/whatif?limit=0", "{}", 422, "limit"),
        ("post", "/api/v1/next", b"\xff\xfe", 422, "not UTF-8"),
        ("post", "/api/v1/explain", "x" * (2 << 20), 413, "over 1 MiB"),
    ],
)
def test_errors_are_the_cli_line_with_the_right_status(
    client: TestClient, method: str, url: str, body: Any, status: int, words: str
) -> None:
    response = getattr(client, method)(url, content=body)
    assert response.status_code == status
    [error] = response.json().values()
    assert list(response.json()) == ["error"] and words in error and "\n" not in error


def test_a_fault_is_500_without_a_stack_trace(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engines = client.app.state.engines  # type: ignore[attr-defined]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engines.interviewer, "decide", broken)
    response = TestClient(client.app, raise_server_exceptions=False).post("/api/v1/explain", content="{}")
    assert response.status_code == 500 and "secret" not in response.text and "Traceback" not in response.text


def test_reasoning_leaves_the_event_loop_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one request reasons (here slowly), the server answers others: the reasoning runs
    on the engines' thread, not on the event loop."""
    app = create_app()
    started = threading.Event()
    decide = app.state.engines.interviewer.decide

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(1.0)
        return decide(*args, **kwargs)

    monkeypatch.setattr(app.state.engines.interviewer, "decide", slow)

    async def both() -> tuple[float, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            begun = time.perf_counter()

            async def explain() -> float:
                assert (await client.post("/api/v1/explain", content="{}")).status_code == 200
                return time.perf_counter() - begun

            async def health() -> float:
                while not started.is_set():
                    await asyncio.sleep(0.01)
                assert (await client.get("/healthz")).status_code == 200
                return time.perf_counter() - begun

            slow_answer, health_answer = await asyncio.gather(explain(), health())
            return slow_answer, health_answer

    slow_answer, health_answer = asyncio.run(both())
    # answered while the slow one still reasoned (inline, /healthz would wait for its 1 s);
    # measured against the slow answer, not the clock, so a loaded machine does not fail it
    assert health_answer + 0.5 < slow_answer


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/"), client.get("/healthz"), client.post("/api/v1/explain", content="{}")):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert client.post("/api/v1/explain", content="{}").headers["cache-control"] == "no-store"


def test_docs_are_served_from_this_process(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_the_page_keeps_answers_out_of_urls(client: TestClient) -> None:
    html = client.get("/").text
    assert 'method="get"' not in html.lower() and html.count('method="post"') == 3
    page = client.post("/ask", data={"policy": "hip-resurfacing", "record": "{}"}).text
    assert 'action="/ask"' in page and "What is the patient&#39;s sex?" in page


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` without the web extra ends with the pip command for this installation, as pip
    recorded it; a clone keeps llr-asp's name as its folder by default, so the command for it
    holds `llr-asp[web]` and only the exact bare name would be the index's (which serves none)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    from llr_asp.cli import install

    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2 and result.stderr.endswith(f": {install.install_command('web')}\n")
    # the suite runs from an installation pip recorded, and no index serves llr-asp: never the bare name
    assert install.install_command("web") != "pip install 'llr-asp[web]'"
    # a clone in the folder its name gives (issue 36): `…/llr-asp[web]` is that folder, not the index
    clone = {"url": "file:///home/gp/llr-asp", "dir_info": {"editable": True}}
    monkeypatch.setattr(install, "origin", lambda: clone)
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2 and result.stderr.endswith(": pip install -e '/home/gp/llr-asp[web]'\n")


def test_other_commands_do_not_import_the_web_stack(tmp_path: Path) -> None:
    import subprocess
    import sys

    web = ("fastapi", "starlette", "uvicorn", "jinja2")
    probe = (
        f"import sys; from llr_asp.cli import main; sys.argv = ['llr-asp', 'explain', {str(EXAMPLES[0])!r}];\n"
        "try: main()\nexcept SystemExit: pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {web!r}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("[]")


def test_whatif_has_a_time_limit(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from llr_asp.web import api

    monkeypatch.setattr(api, "WHATIF_SECONDS", 0.0)  # every search is over its time at once
    body = (EXAMPLES[0].parent / "refused-b-four-months.json").read_bytes()
    response = client.post("/api/v1/whatif?policy=hip-resurfacing", content=body)
    assert response.status_code == 503 and "took too long" in response.json()["error"]


def test_serve_checks_its_options_before_it_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from llr_asp.web import cds

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append({"app": app, **options}))
    isolated_environment(monkeypatch)
    missing = runner.invoke(cli, ["serve", "--cds-jwks", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "--cds-jwks" in missing.stderr and started == []
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    result = runner.invoke(
        cli, ["serve", "--cds-issuer", "https://ehr.example", "--cds-jwks", str(jwks), "--port", "8123"]
    )
    assert result.exit_code == 0, result.stderr
    [options] = started
    assert (options["app"], options["factory"], options["host"], options["port"]) == (
        "llr_asp.web:create_app",
        True,
        "127.0.0.1",
        8123,
    )
    assert options["access_log"] is False  # nothing about a request is logged
    import os

    assert os.environ[cds.ISSUERS_ENV] == "https://ehr.example" and os.environ[cds.JWKS_ENV] == str(
        jwks.resolve()
    )
    unguarded = runner.invoke(cli, ["serve", "--no-auth"])
    assert "WARNING: --no-auth" in unguarded.stderr


@pytest.mark.parametrize(
    ("jwks", "said"),
    [
        ("{not json", "not a JSON file: Expecting property name enclosed in double quotes"),
        ("\udcff", "not a JSON file: not UTF-8 text"),
        ('[{"kid": "k"}]', '$: a JWKS is an object with a list "keys"'),
        ('{"keys": {"kid": "k"}}', '$: a JWKS is an object with a list "keys"'),
        ('{"keys": [{"kty": "EC", "crv": "P-384"}]}', '$.keys[0]: each key needs a "kid"'),
        ('{"keys": [{"kid": 7, "kty": "EC"}]}', '$.keys[0]: each key needs a "kid"'),
        (
            '{"keys": [{"kid": "k", "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}',
            "$.keys[0]: not a public key",
        ),
        ('{"keys": [{"kid": "k", "kty": "none"}]}', "$.keys[0]: not a public key"),
    ],
)
def test_serve_refuses_a_jwks_it_cannot_read_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jwks: str, said: str
) -> None:
    """Each worker would otherwise fail at start-up with a traceback (bug: only the file's
    existence was checked)."""
    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(app))
    isolated_environment(monkeypatch)
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks.encode("utf-8", "surrogateescape"))
    result = runner.invoke(cli, ["serve", "--cds-issuer", "https://ehr.example", "--cds-jwks", str(path)])
    assert result.exit_code == 2 and started == [], result.stderr
    assert result.stderr.startswith(f"llr-asp: error: --cds-jwks {path}: {said}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_serve_hands_its_settings_and_limits_to_uvicorn_and_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    from llr_asp.web.settings import ENV, Settings

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(options))
    isolated_environment(monkeypatch)
    arguments = [
        "serve",
        "--no-auth",
        "--public-url",
        "https://llr.example.nhs.uk/",
        "--state-dir",
        str(tmp_path),
    ]
    arguments += ["--redis", "redis://127.0.0.1:6390/0", "--proxy", "10.0.0.5", "--max-header-kib", "8"]
    arguments += ["--cors-origin", "https://sandbox.cds-hooks.org"]
    arguments += ["--min-body-kib-per-second", "4", "--write-seconds", "12", "--shutdown-seconds", "5"]
    result = runner.invoke(cli, [*arguments, "--max-batch-mib", "20", "--max-connections", "100"])
    assert result.exit_code == 0, result.stderr
    [options] = started
    assert options["http"] == "llr_asp.web.server:BoundedH11Protocol"  # h11: header limits
    assert (options["h11_max_incomplete_event_size"], options["limit_concurrency"]) == (8 << 10, 100)
    assert options["forwarded_allow_ips"] == ["10.0.0.5"] and options["access_log"] is False
    import os

    settings = Settings.from_environment()  # what every worker reads
    assert settings.public_url == "https://llr.example.nhs.uk" and settings.state_dir == tmp_path
    assert (settings.redis, settings.max_batch_body) == ("redis://127.0.0.1:6390/0", 20 << 20)
    assert settings.cors_origins == ("https://sandbox.cds-hooks.org",)
    assert (settings.min_body_rate, settings.write_seconds, settings.shutdown_seconds) == (4 << 10, 12.0, 5.0)
    assert options["timeout_graceful_shutdown"] == 5
    assert os.environ[ENV] == settings.to_json()
    bad = runner.invoke(cli, ["serve", "--no-auth", "--public-url", "llr.example.nhs.uk"])
    assert bad.exit_code == 2 and "--public-url" in bad.stderr and len(started) == 1
    bad = runner.invoke(cli, ["serve", "--no-auth", "--cors-origin", "https://ehr.example/app"])
    assert bad.exit_code == 2 and "--cors-origin" in bad.stderr and len(started) == 1


def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `serve` writes to the environment for its workers is undone after the test (set,
    then deleted: monkeypatch restores only what it changed), so no later app of this process
    runs without authentication or with another's settings."""
    from llr_asp.web import cds
    from llr_asp.web.app import RULES_ENV
    from llr_asp.web.settings import ENV

    for name in (cds.ISSUERS_ENV, cds.JWKS_ENV, cds.NO_AUTH_ENV, RULES_ENV, ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    # uvicorn.run is replaced and nothing listens: the port is not this test's to find free
    monkeypatch.setattr(server, "check_address", lambda host, port: None)


def test_serve_in_use_is_one_line_before_anything_says_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import uvicorn

    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(app))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["serve", "--port", str(port), "--no-auth"])
    assert result.exit_code == 2 and started == [] and "serving" not in result.stderr
    assert result.stderr == (
        f"llr-asp: error: cannot listen on 127.0.0.1:{port} (in use by another program); choose another "
        "--port, or stop what uses it\n"
    )
    wrong = runner.invoke(cli, ["serve", "--host", "no-such-host.invalid", "--no-auth"])
    assert wrong.exit_code == 2 and "--host no-such-host.invalid: not an address" in wrong.stderr
