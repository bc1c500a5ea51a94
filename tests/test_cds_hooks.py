"""CDS Hooks: discovery, one card per call for an eligible, a refused and an undetermined patient
(an order as an EHR sends it), and authentication as the specification requires: every refused
token is 401 with nothing more said."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed")
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from llr_asp.ruleset import default_rules_dir  # noqa: E402
from llr_asp.web import cds, create_app  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "examples"
ISSUER = "https://ehr.example"
KEY = ec.generate_private_key(ec.SECP384R1())
CODE = {
    "system": "http://snomed.info/sct",
    "code": "test-hip-resurfacing",
    "display": "Hip resurfacing (test code)",
}
BASE = "http://testserver"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("cds")
    rules = folder / "rules"
    shutil.copytree(default_rules_dir(), rules)
    with (rules / "llr_icb.lp").open("a") as extra:  # the ICB's configuration: the order codes
        extra.write(
            f'procedure("hip-resurfacing", "{CODE["system"]}", "{CODE["code"]}", "{CODE["display"]}").\n'
        )
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES384"}]}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cds.ISSUERS_ENV, ISSUER)
        patch.setenv(cds.JWKS_ENV, str(folder / "jwks.json"))
        patch.delenv(cds.NO_AUTH_ENV, raising=False)
        app = create_app(rules)
    return TestClient(app)


def token(audience: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update({k: v for k, v in changes.items() if k not in ("alg", "kid", "key")})
    claims = {k: v for k, v in claims.items() if v is not None}
    if changes.get("alg") == "HS256":
        return jwt.encode(
            claims, "shared-secret-of-at-least-32-bytes!!", algorithm="HS256", headers={"kid": "k1"}
        )
    if changes.get("alg") == "none":
        return jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    return jwt.encode(
        claims,
        changes.get("key", KEY),
        algorithm="ES384",
        headers={"kid": changes.get("kid", "k1"), "typ": "JWT"},
    )


def auth(path: str, **changes: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(BASE + path, **changes)}"}


def call(example: str | None, gender: str | None = "male") -> dict[str, Any]:
    """An order-select call as an EHR sends it: a draft ServiceRequest, and the prefetch."""
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": "pat-1", "gender": gender}}
    if example is not None:
        document = json.loads((EXAMPLES / f"{example}.json").read_text())
        items = [
            {"linkId": f"{group}.{name}", "answer": [_answer(f"{group}.{name}", value)]}
            for group, fields in document.items()
            if isinstance(fields, dict) and group != "meta"
            for name, value in fields.items()
            if value is not None
        ]
        response = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}
        prefetch["answers"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": response}],
        }
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/1",
            "patientId": "pat-1",
            "selections": ["ServiceRequest/sr-1"],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "ServiceRequest",
                            "id": "sr-1",
                            "status": "draft",
                            "intent": "proposal",
                            "subject": {"reference": "Patient/pat-1"},
                            "code": {"coding": [CODE]},
                        }
                    }
                ],
            },
        },
        "prefetch": prefetch,
    }


def _answer(path: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, str):
        return {"valueCoding": {"code": value}}
    return {"valueInteger": value} if path == "knee.compartments_affected" else {"valueDecimal": value}


def test_discovery_lists_each_policy_for_both_hooks(client: TestClient) -> None:
    services = client.get("/cds-services", headers=auth("/cds-services")).json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        (p, h) for p in ("hip-resurfacing", "knee-resurfacing") for h in ("order-select", "order-sign")
    }
    assert all(s["prefetch"]["patient"] == "Patient/{{context.patientId}}" for s in services)


@pytest.mark.parametrize(
    ("example", "gender", "indicator", "summary"),
    [
        ("route-c1-pain", "male", "info", "Meets ARP 55 criteria"),
        (
            "refused-b-four-months",
            "male",
            "warning",
            "Does not meet ARP 55: B (Six months of documented conservative measures have failed) not met",
        ),
        (None, "male", "info", "ARP 55: 14 answers needed"),
        (
            "route-c4-sfi",
            "male",
            "warning",
            "Contested: meets ARP 55 only on the adopted reading; the ICB must confirm",
        ),
        (
            "route-c5-independence",
            "male",
            "warning",
            "Contested: another reading of ARP 55 would fund; adopted: B (Six months of documented "
            "conservative measures have failed) not met",
        ),
    ],
)
def test_one_card_per_call(
    client: TestClient, example: str | None, gender: str, indicator: str, summary: str
) -> None:
    path = "/cds-services/hip-resurfacing"
    reply = client.post(path, json=call(example, gender), headers=auth(path))
    assert reply.status_code == 200, reply.text
    [card] = reply.json()["cards"]
    assert (card["indicator"], card["summary"]) == (indicator, summary) and len(card["summary"]) < 140
    assert card["source"]["label"] == "NHS LLR ICB — ARP 55 Hip Resurfacing"
    assert card["source"]["topic"]["code"] == "hip-resurfacing"
    assert "“" in card["detail"] and {link["type"] for link in card["links"]} == {"absolute"}
    if summary.startswith("Contested"):  # never a plain verdict: the detail says which reading
        assert "ON THE ADOPTED READING" in card["detail"] and "ICB must confirm" in card["detail"]
        assert card["extension"]["robust"] is False
    elif indicator == "warning":
        assert "Individual Funding Request" in card["detail"]


def test_a_woman_is_refused_plainly_the_background_reading_is_for_analysts(client: TestClient) -> None:
    """The hip procedure is contra-indicated in women (the policy's metal-on-metal text): the
    reading of that sentence as background never reaches the clinician as a way to funding."""
    path = "/cds-services/hip-resurfacing"
    [card] = client.post(path, json=call("route-c1-pain", "female"), headers=auth(path)).json()["cards"]
    assert card["indicator"] == "warning" and not card["summary"].startswith("Contested")
    assert "contraindication.criterion" not in card["detail"] and card["extension"]["robust"] is True


def test_an_order_for_another_procedure_gets_no_card(client: TestClient) -> None:
    path = "/cds-services/knee-resurfacing"  # no code declared for the knee
    reply = client.post(path, json=call("route-c1-pain"), headers=auth(path))
    assert reply.json() == {"cards": []}


def test_no_prefetch_is_412(client: TestClient) -> None:
    path = "/cds-services/hip-resurfacing"
    body = {**call(None), "prefetch": {}}
    assert client.post(path, json=body, headers=auth(path)).status_code == 412


def test_feedback_is_counted(client: TestClient) -> None:
    path = "/cds-services/hip-resurfacing/feedback"
    reply = client.post(path, json={"feedback": [{"card": "x", "outcome": "accepted"}]}, headers=auth(path))
    assert reply.status_code == 200 and client.app.state.feedback["hip-resurfacing"] >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no token
        {"Authorization": "Basic abc"},
        "wrong aud",
        "alg none",
        "HS256",
        "expired",
        "unknown iss",
        "unknown kid",
        "another key",
        "no jti",
    ],
)
def test_refused_tokens_are_401_with_nothing_said(client: TestClient, headers: Any) -> None:
    path = "/cds-services"
    changes = {
        "wrong aud": {"aud": BASE + "/cds-services/other"},
        "alg none": {"alg": "none"},
        "HS256": {"alg": "HS256"},
        "expired": {"exp": int(time.time()) - 10, "iat": int(time.time()) - 400},
        "unknown iss": {"iss": "https://intruder.example"},
        "unknown kid": {"kid": "k9"},
        "another key": {"key": ec.generate_private_key(ec.SECP384R1())},
        "no jti": {"jti": None},
    }
    if isinstance(headers, str):
        headers = auth(path, **changes[headers])
    reply = client.get(path, headers=headers)
    assert reply.status_code == 401 and reply.json() == {"error": "unauthorized"}


def test_a_replayed_token_is_refused(client: TestClient) -> None:
    headers = auth("/cds-services")
    assert client.get("/cds-services", headers=headers).status_code == 200
    assert client.get("/cds-services", headers=headers).status_code == 401
