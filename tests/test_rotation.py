"""Keys that rotate and secrets kept out of sight (issue 38 item 3): the JWKS re-read when its
file changes (or on SIGHUP), the last good keys kept when the new file is broken, a worker that
starts with a broken one serving with /healthz saying so; the Redis URL's password never on the
command line; a state directory another user owns or may write refused."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed")
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serving import free_port  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from llr_asp.cli import app as cli  # noqa: E402
from llr_asp.core.errors import UsageError  # noqa: E402
from llr_asp.web import cds, create_app, tokens  # noqa: E402
from llr_asp.web.settings import REDIS_ENV, Settings, check_state_dir, redis_url  # noqa: E402

ISSUER = "https://ehr.example"
BASE = "http://testserver"
OLD, NEW = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())


def jwks(*pairs: tuple[str, Any]) -> str:
    keys = [
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": kid, "alg": "ES384"}
        for kid, key in pairs
    ]
    return json.dumps({"keys": keys})


def token(kid: str, key: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": BASE + "/cds-services",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid})}


def replace(path: Path, text: str) -> None:
    """Written as an operator rotates: a new file moved over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, Path]:
    file = tmp_path / "jwks.json"
    file.write_text(jwks(("old", OLD)))
    monkeypatch.setenv(cds.ISSUERS_ENV, ISSUER)
    monkeypatch.setenv(cds.JWKS_ENV, str(file))
    monkeypatch.delenv(cds.NO_AUTH_ENV, raising=False)
    monkeypatch.setattr(tokens, "JWKS_CHECK_SECONDS", 0.0)
    app = create_app(settings=Settings(public_url=BASE, state_dir=tmp_path / "state"))
    return TestClient(app), file


def test_a_rotated_jwks_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The revoked key was still accepted and the new one refused (read once per worker)."""
    client, file = served(tmp_path, monkeypatch)
    assert client.get("/cds-services", headers=token("old", OLD)).status_code == 200
    replace(file, jwks(("new", NEW)))
    assert client.get("/cds-services", headers=token("old", OLD)).status_code == 401
    assert client.get("/cds-services", headers=token("new", NEW)).status_code == 200


def test_a_broken_new_jwks_keeps_the_last_good_keys_with_one_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, file = served(tmp_path, monkeypatch)
    replace(file, '{"keys": [ half written')
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert client.get("/cds-services", headers=token("old", OLD)).status_code == 200
    said = [r.getMessage() for r in caplog.records if "jwks" in r.getMessage().lower()]
    assert len(said) == 1 and "still used" in said[0]
    assert client.get("/healthz").json()["status"] == "ok"


def test_a_worker_that_starts_with_a_broken_jwks_serves_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its replacement crash-looped while /healthz said ok."""
    file = tmp_path / "jwks.json"
    file.write_text("not a JWKS")
    monkeypatch.setenv(cds.ISSUERS_ENV, ISSUER)
    monkeypatch.setenv(cds.JWKS_ENV, str(file))
    client = TestClient(create_app(settings=Settings(public_url=BASE, state_dir=tmp_path / "state")))
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and "--cds-jwks" in health["problem"]
    assert client.get("/cds-services", headers=token("old", OLD)).status_code == 401
    assert client.post("/api/v1/explain", json={}).status_code == 200


def test_the_redis_password_is_never_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="LLR_ASP_REDIS_URL"):
        redis_url("redis://:secret@127.0.0.1:6379/0", None)
    assert redis_url("redis://127.0.0.1:6379/0", None) == "redis://127.0.0.1:6379/0"
    secret = tmp_path / "redis-url"
    secret.write_text("redis://:secret@127.0.0.1:6379/0\n")
    secret.chmod(0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        redis_url(None, secret)
    secret.chmod(0o600)
    assert redis_url(None, secret) == "redis://:secret@127.0.0.1:6379/0"
    monkeypatch.setenv(REDIS_ENV, "redis://:other@127.0.0.1:6379/1")
    assert redis_url(None, None) == "redis://:other@127.0.0.1:6379/1"


def test_a_state_dir_others_may_write_is_refused_in_one_line(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="others may write"):
        check_state_dir(shared)
    result = CliRunner().invoke(cli, ["serve", "--port", str(free_port()), "--state-dir", str(shared)])
    assert result.exit_code != 0 and "others may write" in result.output
    assert "Traceback" not in result.output
    shared.chmod(0o700)
    check_state_dir(shared)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here")
def test_sighup_never_stops_a_one_worker_service(tmp_path: Path) -> None:
    """SIGHUP killed a one-worker service mid-batch; now it re-reads the keys and serves on."""
    port = free_port()
    (tmp_path / "state").mkdir(mode=0o700)
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llr_asp",
            "serve",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/healthz"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    return bool(reply.status == 200)
            except OSError:
                return False

        deadline = time.monotonic() + 60
        while not healthy():
            assert service.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        service.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert service.poll() is None and healthy()
    finally:
        service.terminate()
        service.wait(timeout=30)
