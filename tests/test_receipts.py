"""Decision receipts (DESIGN §6, §8; issue 35): the canonical JSON they hash answers in (RFC
8785's own examples), a receipt on every surface a decision leaves by, verification that passes
for the same answers and fails for one changed value, another rule set, a forged signature; the
log's hash chain (audit finds a break; a restart and two writers keep it whole) and what its
file holds (no patient id, no answer)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import multiprocessing
import os
import re
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from llr_asp.cli import app as cli
from llr_asp.core.documents import validate
from llr_asp.formats.receipt_log import GENESIS, SCHEMA, SqliteLog
from llr_asp.formats.receipts import (
    Receipt,
    ReceiptError,
    Signer,
    answers_hash,
    canonical,
    claims_of,
    load_signer,
    make_key,
    new_salt,
    number,
)
from llr_asp.web import create_app
from llr_asp.web.settings import Settings

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()

# -- RFC 8785 -----------------------------------------------------------------------------------

APPENDIX_B = [  # RFC 8785 Appendix B: IEEE 754 doubles and their canonical text
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_numbers_are_written_as_rfc_8785_appendix_b_says(bits: str, expected: str) -> None:
    assert number(struct.unpack(">d", bytes.fromhex(bits))[0]) == expected


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_have_no_canonical_form(bits: str) -> None:
    with pytest.raises(ValueError):
        number(struct.unpack(">d", bytes.fromhex(bits))[0])


def test_the_rfc_8785_example_is_canonicalised_byte_for_byte() -> None:
    """§3.2.2's input, parsed as JSON, and §3.2.3's output."""
    given = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert canonical(given) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


def test_keys_sort_by_utf16_code_units_as_rfc_8785_sorts_them() -> None:
    """§3.2.3's sorting example: by UTF-16 code units, so the emoji (a surrogate pair) comes
    before U+FB33, though its code point is greater."""
    given = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    order = [v for _, v in sorted((canonical(given).index(f'"{v}"'), v) for v in given.values())]
    assert order == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_what_has_no_canonical_json_is_refused() -> None:
    for bad in ("\ud800", {"\udc00": 1}, 2**53 + 1):
        with pytest.raises(ValueError):
            canonical(bad)
    assert canonical(2**53) == "9007199254740992" and canonical(6.0) == canonical(6) == "6"


def test_the_answers_hash_ignores_id_policy_meta_and_order(rules: Any) -> None:
    record = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    same = {**dict(reversed(list(record.items()))), "id": "another", "meta": {"note": "x"}}
    same.pop("policy", None)
    assert answers_hash(validate(record, rules, "a")) == answers_hash(validate(same, rules, "b"))
    changed = json.loads(json.dumps(record))
    changed["conservative"]["months"] = changed["conservative"]["months"] + 1
    assert answers_hash(validate(changed, rules, "c")) != answers_hash(validate(record, rules, "a"))


# -- the service --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("receipts") / "state"


@pytest.fixture(scope="module")
def client(state: Path) -> TestClient:
    return TestClient(create_app(settings=Settings(state_dir=state)))


def verify(receipt: str, answers: Path, *more: str) -> Any:
    return runner.invoke(cli, ["receipt", "verify", receipt, "--answers", str(answers), *more])


def test_an_explain_receipt_verifies_and_one_changed_value_fails(
    client: TestClient, state: Path, tmp_path: Path
) -> None:
    path = EXAMPLES / "route-c1-pain.json"
    body = client.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()
    receipt = Receipt.read(body["receipt"])
    claims = receipt.claims
    assert (claims["decision"], claims["robust"], claims["possible"]) == (
        body["decision"],
        body["robust"],
        body["possible"],
    )
    assert claims["rules"] == body["rules"] and claims["policy"] == claims["family"] == "hip-resurfacing"
    assert receipt.kid in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(client.get("/.well-known/jwks.json").text)
    saved = tmp_path / "receipt.jws"
    saved.write_text(body["receipt"])

    ok = verify(str(saved), path, "--jwks", str(jwks), "--state-dir", str(state))
    assert ok.exit_code == 0 and ok.stdout.startswith("all agree"), ok.output
    assert verify(body["receipt"], path, "--state-dir", str(state)).exit_code == 0  # the log's keys
    answer = tmp_path / "answer.json"  # the API's answer itself, as saved
    answer.write_text(json.dumps(body))
    assert verify(str(answer), path, "--state-dir", str(state)).exit_code == 0
    both = tmp_path / "both.json"  # two policies' answers: which receipt is meant is not said
    both.write_text(json.dumps([body, body]))
    several = verify(str(both), path, "--jwks", str(jwks))
    assert several.exit_code == 2 and "give one policy's" in several.stderr

    record = json.loads(path.read_text())
    record["pain"]["severity"] = "moderate"  # one value changed: the hash, and the decision
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(record))
    failed = verify(str(saved), changed, "--jwks", str(jwks), "--state-dir", str(state))
    assert failed.exit_code == 1 and "differs: the answers' hash" in failed.stdout, failed.output
    assert "differs: decision" in failed.stdout


def test_a_forged_or_foreign_signature_fails(client: TestClient, tmp_path: Path) -> None:
    salt = ("--salt", "0" * 32)  # neither receipt is in a log
    path = EXAMPLES / "route-c1-pain.json"
    body = client.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(client.get("/.well-known/jwks.json").text)
    head, payload, signature = body["receipt"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["decision"] = "not_eligible"  # a claim changed after signing
    tampered = base64.urlsafe_b64encode(canonical(claims).encode()).rstrip(b"=").decode()
    forged = verify(f"{head}.{tampered}.{signature}", path, "--jwks", str(jwks), *salt)
    assert forged.exit_code == 1 and "differs: signature" in forged.stdout, forged.output
    make_key(tmp_path / "mine.pem")  # a receipt signed by a key the service never listed
    mine = load_signer(tmp_path / "mine.pem")
    foreign = mine.sign({**Receipt.read(body["receipt"]).claims})
    result = verify(foreign, path, "--jwks", str(jwks), *salt)
    assert result.exit_code == 1 and "its key is not listed" in result.stdout


def test_another_rule_set_fails_naming_the_rules(client: TestClient, tmp_path: Path, rules: Any) -> None:
    """A receipt made under other rules (here: claims naming another sha256) is not verified by
    this rule set."""
    path = EXAMPLES / "route-c1-pain.json"
    make_key(tmp_path / "k.pem")
    signer = load_signer(tmp_path / "k.pem")
    record = validate(json.loads(path.read_text()), rules, "x")
    [decision] = __import__("llr_asp").Reasoner(rules).decide(record, [rules.policies["hip-resurfacing"]])
    salt = new_salt()
    claims = {**claims_of(decision, answers_hash(record, salt), None), "rules": "ab" * 32}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signer.jwk]}))
    result = verify(signer.sign(claims), path, "--jwks", str(jwks), "--salt", salt)
    assert result.exit_code == 1 and "differs: the rule set's sha256" in result.stdout


def test_a_receipt_with_a_claim_more_or_less_is_not_one(tmp_path: Path) -> None:
    """A receipt holds exactly its claims: one more (a patient id slipped in) or one fewer is
    refused, even signed by a listed key."""
    make_key(tmp_path / "k.pem")
    signer = load_signer(tmp_path / "k.pem")
    claims = {**_claims(GENESIS, 1)}
    assert Receipt.read(signer.sign(claims)).claims == claims
    less = dict(claims)
    del less["conflicts"]
    for bad in ({**claims, "patient": "NHS-9434765919"}, less):
        with pytest.raises(ReceiptError, match="must be exactly"):
            Receipt.read(signer.sign(bad))


def test_bad_verify_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = EXAMPLES / "route-c1-pain.json"
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    for args in (
        ["not-a-receipt", "--answers", str(path), "--jwks", str(tmp_path / "jwks.json")],
        ["a.b.c", "--answers", str(path)],  # no keys given
    ):
        result = runner.invoke(cli, ["receipt", "verify", *args])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output


def test_every_surface_carries_a_receipt(client: TestClient) -> None:
    body = (EXAMPLES / "refused-b-four-months.json").read_bytes()
    for path in ("/api/v1/explain", "/api/v1/whatif"):
        answer = client.post(path, content=body).json()
        for each in answer if isinstance(answer, list) else [answer]:
            assert Receipt.read(each["receipt"]).claims["decision"] == each["decision"]
    page = client.post("/result", data={"record": body.decode(), "policy": "hip-resurfacing"})
    assert page.status_code == 200
    [(jti, receipt)] = re.findall(
        r"receipt ([0-9a-f]{32})</label>\s*<textarea[^>]*>([^<]+)</textarea>", page.text
    )
    assert Receipt.read(receipt).claims["jti"] == jti
    assert f"Decision receipt: {jti}" in page.text  # in the letter's footer
    letter = client.post("/letter", data={"record": body.decode(), "policy": "hip-resurfacing"})
    assert re.search(r"Decision receipt: [0-9a-f]{32}", letter.text)


def _activity_total(client: TestClient) -> int:
    return sum(r["decisions"] for r in client.get("/api/v1/activity").json())


def _page_receipts(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="receipt" value="([^"]+)">', page)


def test_a_page_decision_and_its_letter_download_are_one_receipt(client: TestClient) -> None:
    """The letter's form sends back the page's receipts: the download names them and is not
    counted again. Both policies (no policy chosen): two decisions, two receipts, not four."""
    body = (EXAMPLES / "refused-b-four-months.json").read_text()
    before = _activity_total(client)
    page = client.post("/result", data={"record": body, "policy": "all"})
    given = _page_receipts(page.text)
    assert len(given) == 2 and _activity_total(client) == before + 2
    ids = {Receipt.read(r).claims["jti"] for r in given}
    for format in ("text", "markdown"):
        letter = client.post(
            "/letter", data={"record": body, "policy": "all", "format": format, "receipt": given}
        )
        assert set(re.findall(r"Decision receipt: ([0-9a-f]{32})", letter.text)) == ids, letter.text
    assert _activity_total(client) == before + 2  # one decision, one receipt: none for the letters


def test_a_letter_does_not_take_a_receipt_it_cannot_vouch_for(
    client: TestClient, state: Path, tmp_path: Path
) -> None:
    """A receipt sent back that another patient's answers made, that another key signed, that
    this service's key signed but its log does not hold, or that is no receipt is not named: the
    letter's decision gets its own."""
    path = EXAMPLES / "refused-b-four-months.json"
    form = {"record": path.read_text(), "policy": "hip-resurfacing"}
    [mine] = _page_receipts(client.post("/result", data=form).text)
    claims = Receipt.read(mine).claims
    other = json.loads(path.read_text())
    other["conservative"]["months"] = 5  # the same decision, other answers
    [theirs] = _page_receipts(client.post("/result", data={**form, "record": json.dumps(other)}).text)
    make_key(tmp_path / "k.pem")
    foreign = load_signer(tmp_path / "k.pem").sign(claims)
    unlogged = load_signer(state / "receipt-key.pem").sign({**claims, "jti": "f" * 32})
    for sent in (theirs, foreign, unlogged, "not-a-receipt"):
        before = _activity_total(client)
        letter = client.post("/letter", data={**form, "receipt": [sent]})
        [named] = re.findall(r"Decision receipt: ([0-9a-f]{32})", letter.text)
        refused = Receipt.read(sent).claims["jti"] if sent.count(".") == 2 else None
        assert named != refused and _activity_total(client) == before + 1, sent[:40]


def test_a_completed_interview_carries_its_receipt_a_step_on_the_way_none(client: TestClient) -> None:
    done = client.post(
        "/api/v1/next?policy=hip-resurfacing", content=(EXAMPLES / "route-c1-pain.json").read_bytes()
    )
    assert done.json()["question"] is None and Receipt.read(done.json()["receipt"])
    asking = client.post("/api/v1/next?policy=hip-resurfacing", json={}).json()
    assert asking["question"] is not None and "receipt" not in asking


def test_activity_counts_decisions_and_names_no_patient(client: TestClient, state: Path) -> None:
    before = sum(r["decisions"] for r in client.get("/api/v1/activity").json())
    client.post(
        "/api/v1/explain?policy=knee-resurfacing", content=(EXAMPLES / "route-c1-pain.json").read_bytes()
    )
    rows = client.get("/api/v1/activity").json()
    assert sum(r["decisions"] for r in rows) == before + 1
    assert set(rows[0]) == {"month", "policy", "family", "decision", "robust", "decisions"}
    csv = client.get("/api/v1/activity?format=csv")
    assert csv.text.splitlines()[0] == "month,policy,family,decision,robust,decisions"
    assert client.get("/api/v1/activity?format=xml").status_code == 422
    result = runner.invoke(cli, ["activity", "--state-dir", str(state), "-f", "csv"])
    assert result.exit_code == 0 and result.stdout == csv.text


def test_the_log_holds_no_patient_id_and_no_answer(tmp_path: Path) -> None:
    client = TestClient(create_app(settings=Settings(state_dir=tmp_path / "state")))
    record = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    record["id"] = "NHS-9434765919-ZQX"
    record["conservative"]["months"] = 17.625
    record["meta"] = {"note": "Mrs Quaxley-Trundle"}
    for path in ("/api/v1/explain", "/api/v1/whatif", "/api/v1/next"):
        assert client.post(path, json=record).status_code == 200
    client.post("/result", data={"record": json.dumps(record)})
    held = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    log = SqliteLog(tmp_path / "state" / "receipts.sqlite3")
    decoded = "".join(json.dumps(Receipt.read(text).claims) for _, text in log.receipts())
    assert decoded and b"receipt" in held  # the tables are there, and were read
    for secret in ("NHS-9434765919-ZQX", "17.625", "Quaxley", "intense"):
        assert secret.encode() not in held and secret not in decoded, secret


# -- the chain ----------------------------------------------------------------------------------


def test_audit_walks_an_unbroken_chain_and_finds_a_break(tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = TestClient(create_app(settings=Settings(state_dir=state)))
    body = (EXAMPLES / "route-c1-pain.json").read_bytes()
    receipts = [
        client.post("/api/v1/explain?policy=hip-resurfacing", content=body).json()["receipt"]
        for _ in range(4)
    ]
    claims = [Receipt.read(r).claims for r in receipts]
    assert claims[0]["prev"] == GENESIS and all(
        c["prev"] == Receipt.read(r).hash for c, r in zip(claims[1:], receipts)
    )
    ok = runner.invoke(cli, ["receipt", "audit", "--state-dir", str(state)])
    assert ok.exit_code == 0 and ok.stdout.startswith("unbroken: 4 receipts"), ok.output
    db = sqlite3.connect(state / "receipts.sqlite3")
    db.execute("DELETE FROM receipts WHERE seq = 2")  # a link taken out
    db.commit()
    db.close()
    broken = runner.invoke(cli, ["receipt", "audit", "--state-dir", str(state)])
    assert broken.exit_code == 1 and "break: receipt 2" in broken.stdout, broken.output
    missing = verify(receipts[1], EXAMPLES / "route-c1-pain.json", "--state-dir", str(state))
    assert missing.exit_code == 1 and "holds no such receipt" in missing.stdout


def test_a_rewritten_receipt_breaks_the_chain(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3")
    make_key(tmp_path / "k.pem")
    signer = load_signer(tmp_path / "k.pem")
    log.add_key(signer.jwk)
    for n in range(3):
        log.append(lambda prev, n=n: signer.sign(_claims(prev, n)))
    assert log.audit().breaks == ()
    db = sqlite3.connect(tmp_path / "log.sqlite3")
    [(text,)] = db.execute("SELECT receipt FROM receipts WHERE seq = 2").fetchall()
    redone = signer.sign({**Receipt.read(text).claims, "decision": "not_eligible"})  # re-signed, even
    db.execute("UPDATE receipts SET receipt = ? WHERE seq = 2", (redone,))
    db.commit()
    assert any("receipt 3" in b for b in log.audit().breaks)  # the next link names the old hash


def test_a_restart_keeps_the_chain_and_the_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    body = (EXAMPLES / "route-c1-pain.json").read_bytes()
    first = TestClient(create_app(settings=Settings(state_dir=state)))
    a = first.post("/api/v1/explain?policy=hip-resurfacing", content=body).json()["receipt"]
    assert oct((state / "receipt-key.pem").stat().st_mode & 0o777) == "0o600"
    again = TestClient(create_app(settings=Settings(state_dir=state)))
    b = again.post("/api/v1/explain?policy=hip-resurfacing", content=body).json()["receipt"]
    assert (
        Receipt.read(b).claims["prev"] == Receipt.read(a).hash and Receipt.read(a).kid == Receipt.read(b).kid
    )


def test_a_rotated_key_stays_listed_and_its_receipts_verify(tmp_path: Path) -> None:
    state, body = tmp_path / "state", (EXAMPLES / "route-c1-pain.json").read_bytes()
    keys = []
    for name in ("old.pem", "new.pem"):
        make_key(tmp_path / name)
        keys.append(load_signer(tmp_path / name).kid)
    old = TestClient(create_app(settings=Settings(state_dir=state, signing_key=tmp_path / "old.pem")))
    receipt = old.post("/api/v1/explain?policy=hip-resurfacing", content=body).json()["receipt"]
    new = TestClient(create_app(settings=Settings(state_dir=state, signing_key=tmp_path / "new.pem")))
    after = new.post("/api/v1/explain?policy=hip-resurfacing", content=body).json()["receipt"]
    assert Receipt.read(after).kid == keys[1]
    assert {k["kid"] for k in new.get("/.well-known/jwks.json").json()["keys"]} == set(keys)
    assert verify(receipt, EXAMPLES / "route-c1-pain.json", "--state-dir", str(state)).exit_code == 0
    assert runner.invoke(cli, ["receipt", "audit", "--state-dir", str(state)]).exit_code == 0


def test_keep_days_deletes_old_receipts_and_the_chain_still_audits(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3")
    make_key(tmp_path / "k.pem")
    signer = load_signer(tmp_path / "k.pem")
    log.add_key(signer.jwk)
    for n in range(3):
        log.append(lambda prev, n=n: signer.sign(_claims(prev, n, iat=1_000_000 + n)))
    assert log.purge(before=1_000_002) == 2
    log.append(lambda prev: signer.sign(_claims(prev, 9)))
    found = log.audit()
    assert found.receipts == 2 and found.breaks == () and found.first != GENESIS
    assert sum(r["decisions"] for r in log.activity()) == 4  # the counts outlast the receipts


def _claims(prev: str, n: int, iat: int | None = None, writer: int = 0) -> dict[str, Any]:
    return {
        "iat": iat or int(time.time()),
        "jti": f"{writer:016x}{n:016x}",
        "policy": "hip-resurfacing",
        "family": "hip-resurfacing",
        "rules": "0" * 64,
        "decision": "eligible",
        "robust": True,
        "possible": ["eligible"],
        "readings": [],
        "conflicts": [],
        "answers": "1" * 64,
        "prev": prev,
    }


def _writer(path: str, key: str, count: int, start: Any) -> None:
    log = SqliteLog(Path(path))
    signer = load_signer(Path(key))
    start.wait()
    for n in range(count):
        log.append(lambda prev, n=n: signer.sign(_claims(prev, n, writer=os.getpid())))


@pytest.mark.whole
def test_two_writers_append_without_a_lost_or_duplicated_link(tmp_path: Path) -> None:
    make_key(tmp_path / "k.pem")
    signer: Signer = load_signer(tmp_path / "k.pem")
    log = SqliteLog(tmp_path / "log.sqlite3")
    log.add_key(signer.jwk)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)  # both begin together, once both are up (a spawn takes a while)
    writers = [
        context.Process(
            target=_writer, args=(str(tmp_path / "log.sqlite3"), str(tmp_path / "k.pem"), 150, start)
        )
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    found = log.audit()
    assert found.receipts == 300 and found.breaks == ()
    jtis = [Receipt.read(text).claims["jti"] for _, text in log.receipts()]
    assert len(set(jtis)) == 300
    pids = {jti[:16] for jti in jtis}
    assert len(pids) == 2  # both wrote


def test_explain_receipt_signs_locally(tmp_path: Path) -> None:
    made = runner.invoke(cli, ["receipt", "key", str(tmp_path / "k.pem")])
    assert made.exit_code == 0
    (tmp_path / "jwks.json").write_text(made.stdout)
    path = EXAMPLES / "route-c1-pain.json"
    result = runner.invoke(
        cli,
        ["explain", str(path), "-p", "hip-resurfacing", "-f", "json", "--receipt", str(tmp_path / "k.pem")],
    )
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)["receipt"]
    assert Receipt.read(receipt).claims["prev"] is None
    (tmp_path / "decision.json").write_text(result.stdout)  # the receipt with its salt beside it
    assert verify(str(tmp_path / "decision.json"), path, "--jwks", str(tmp_path / "jwks.json")).exit_code == 0
    alone = verify(receipt, path, "--jwks", str(tmp_path / "jwks.json"))  # no salt: one line, exit 2
    assert alone.exit_code == 2 and "--salt HEX" in alone.stderr, alone.output
    letter = runner.invoke(
        cli,
        ["explain", str(path), "-p", "hip-resurfacing", "-f", "letter", "--receipt", str(tmp_path / "k.pem")],
    )
    assert re.search(r"Decision receipt: [0-9a-f]{32}", letter.stdout)
    os.chmod(tmp_path / "k.pem", 0o644)
    loose = runner.invoke(cli, ["explain", str(path), "--receipt", str(tmp_path / "k.pem")])
    assert loose.exit_code == 2 and "chmod 600" in loose.stderr


# -- --database: what is refused before any PostgreSQL is reached ------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["receipt", "audit", "--database", "postgresql://llr:s3cret@db/llr"], "holds a password"),
        (["activity", "--database", "mysql://db/llr"], "give a PostgreSQL URL"),
        (["receipt", "audit", "--database", "postgresql://llr@/llr?host=/nonexistent-llr"], "--database"),
        (["activity", "--database", "postgresql://llr@/x", "--state-dir", "."], "not both"),
    ],
)
def test_a_bad_database_is_one_line_and_exit_2(args: list[str], said: str) -> None:
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and said in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "s3cret" not in result.stderr


def _free_port() -> str:
    with socket.socket() as probe:  # a free port: serve checks it first
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_serve_refuses_an_unreachable_database_before_serving(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    port = _free_port()
    result = runner.invoke(
        cli,
        [
            "serve",
            "--port",
            port,
            "--state-dir",
            str(tmp_path),
            "--database",
            "postgresql://llr@/x?host=/nonexistent-llr",
        ],
    )
    assert result.exit_code == 2 and result.stderr.startswith("llr-asp: error: --database"), result.output
    assert len(result.stderr.strip().splitlines()) == 1


# -- receipt verify --jwks URL ------------------------------------------------------------------


@pytest.fixture
def keys_server(client: TestClient) -> Iterator[str]:
    """A server on 127.0.0.1 answering the service's JWKS at /jwks, and the ways a JWKS URL can
    go wrong at the others."""
    served = client.get("/.well-known/jwks.json").content

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/slow":
                time.sleep(1.5)
            body = {
                "/jwks": served,
                "/slow": served,
                "/big": b" " * (2 << 20) + served,
                "/html": b"<html>keys</html>",
            }.get(self.path)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/jwks")
                self.end_headers()
                return
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client stopped reading: as it should, past the cap
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_verify_fetches_the_service_keys_from_a_url(
    client: TestClient, keys_server: str, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llr_asp.formats import receipts as module

    path = EXAMPLES / "route-c1-pain.json"
    receipt = client.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()[
        "receipt"
    ]
    ok = verify(receipt, path, "--jwks", f"{keys_server}/jwks", "--state-dir", str(state))
    assert ok.exit_code == 0 and ok.stdout.startswith("all agree"), ok.output
    monkeypatch.setattr(module, "JWKS_SECONDS", 0.5)
    for where, said in (
        ("/big", "over 1024 KiB"),
        ("/redirect", "answered 302"),
        ("/missing", "answered 404"),
        ("/html", "not JSON"),
        ("/slow", "no answer within 0.5 s"),
        ("x", "give a file or an http(s) URL"),
    ):
        url = f"{keys_server}{where}" if where != "x" else "ftp://127.0.0.1/jwks"
        result = verify(receipt, path, "--jwks", url, "--state-dir", str(state))
        assert result.exit_code == 2 and said in result.stderr, (where, result.output)
        assert len(result.stderr.strip().splitlines()) == 1


# -- the answers' hash is keyed: a receipt alone confirms no guess --------------------------------


def test_a_receipt_alone_confirms_no_guessed_answers(
    client: TestClient, state: Path, tmp_path: Path, rules: Any
) -> None:
    """Whoever holds a receipt (and not the log) tries every likely answer set, the true one
    among them, hashed as the receipt's answers used to be: none matches. With the salt the log
    keeps, the true answers do, and only they."""
    path = EXAMPLES / "route-c1-pain.json"
    receipt = client.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()[
        "receipt"
    ]
    claims = Receipt.read(receipt).claims
    guesses = [validate(json.loads(p.read_text()), rules, p.name) for p in sorted(EXAMPLES.glob("*.json"))]
    [truth] = [g for p, g in zip(sorted(EXAMPLES.glob("*.json")), guesses) if p == path]
    assert not [g for g in guesses if answers_hash(g) == claims["answers"]]  # the plain hash finds nothing
    salt = runner.invoke(cli, ["receipt", "salt", receipt, "--state-dir", str(state)]).stdout.strip()
    assert len(salt) == 32 and salt not in receipt and salt not in json.dumps(claims)  # not in the receipt
    assert [g for g in guesses if answers_hash(g, salt) == claims["answers"]] == [truth]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(client.get("/.well-known/jwks.json").text)
    alone = verify(receipt, path, "--jwks", str(jwks))
    assert alone.exit_code == 2 and "--salt HEX" in alone.stderr and len(alone.stderr.splitlines()) == 1
    given = verify(receipt, path, "--jwks", str(jwks), "--salt", salt)
    assert given.exit_code == 0 and given.stdout.startswith("all agree"), given.output
    wrong = verify(receipt, path, "--jwks", str(jwks), "--salt", "ab" * 16)
    assert wrong.exit_code == 1 and "differs: the answers' hash" in wrong.stdout, wrong.output
    for bad_salt in ("not-hex", "ab", salt + "00"):  # not hex; too short to key anything; too long
        bad = verify(receipt, path, "--jwks", str(jwks), "--salt", bad_salt)
        assert bad.exit_code == 2 and "not a receipt's salt" in bad.stderr, bad.output
    absent = runner.invoke(cli, ["receipt", "salt", receipt, "--state-dir", str(tmp_path / "other")])
    assert absent.exit_code == 2


def test_a_log_from_before_salts_keeps_verifying(tmp_path: Path, rules: Any) -> None:
    """A log written before salts (no salt column; receipts hashing the answers plainly) is
    brought up to date on opening, and its receipts still verify; new ones are salted."""
    state = tmp_path / "state"
    state.mkdir()
    make_key(state / "receipt-key.pem")
    signer = load_signer(state / "receipt-key.pem")
    old = sqlite3.connect(state / "receipts.sqlite3")
    old.executescript(SCHEMA.replace(",\n    salt TEXT\n", "\n"))
    path = EXAMPLES / "route-c1-pain.json"
    record = validate(json.loads(path.read_text()), rules, "x")
    [decision] = __import__("llr_asp").Reasoner(rules).decide(record, [rules.policies["hip-resurfacing"]])
    legacy = signer.sign(claims_of(decision, answers_hash(record), GENESIS))
    old.execute(
        "INSERT INTO receipts (hash, prev, iat, receipt) VALUES (?, ?, ?, ?)",
        (Receipt.read(legacy).hash, GENESIS, 1, legacy),
    )
    old.execute("INSERT INTO keys VALUES (?, ?, 1)", (signer.kid, json.dumps(signer.jwk)))
    old.commit()
    old.close()
    client = TestClient(create_app(settings=Settings(state_dir=state)))
    new = client.post("/api/v1/explain?policy=hip-resurfacing", content=path.read_bytes()).json()["receipt"]
    for receipt in (legacy, new):
        result = verify(receipt, path, "--state-dir", str(state))
        assert result.exit_code == 0, result.output
    assert Receipt.read(new).claims["answers"] != answers_hash(record)  # salted
    assert runner.invoke(cli, ["receipt", "audit", "--state-dir", str(state)]).exit_code == 0


def test_database_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else found(name, *a)
    )
    url = "postgresql://llr@/x?host=/nonexistent-llr"
    for args in (
        ["activity", "--database", url],
        ["serve", "--state-dir", str(tmp_path), "--port", _free_port(), "--database", url],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2 and "needs the postgres extra (psycopg): pip install" in result.stderr, (
            result.output
        )
