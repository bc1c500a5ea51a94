"""CDS Hooks as the clinical systems that call it will: requests shaped as the specification's,
the hook library's and Da Vinci CRD's examples (`artefacts.py`), tokens signed as the CDS Hooks
sandbox signs them, and every answer held to the specification's rules (`conformance.py`).

Each test is one conformance check of issue 23, named after the rule it holds the service to.
They use only the service's HTTP surface (and the test FHIR server of `fhirserver.py`), so the
same file run against an older checkout counts the checks that held there.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
jwt = pytest.importorskip("jwt", reason="PyJWT is not installed")
import test_cds_hooks  # noqa: E402
from artefacts import (  # noqa: E402
    FEEDBACK_EXAMPLES,
    HIP,
    OTHER,
    SANDBOX_ISSUER,
    SANDBOX_ORIGIN,
    adaptive_start,
    failed_fetch,
    order_select,
    order_sign,
    patient_resource,
    sandbox_token,
    searchset,
    service_request,
)
from conformance import (  # noqa: E402
    discovery_problems,
    empty_elements,
    fhir_problems,
    required_card_problems,
    response_problems,
)
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from fhirserver import Ehr, allowing, serving  # noqa: E402

from llr_asp.core.ruleset import default_rules_dir  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "examples"
BASE = "http://testserver"
KEY = ec.generate_private_key(ec.SECP384R1())
KID = str(uuid.uuid4())  # the sandbox's kid is a UUID (jwt-generator.js)
SERVICE = "/cds-services/hip-resurfacing-order-sign"
SELECT = "/cds-services/hip-resurfacing-order-select"


def configure(folder: Path) -> Path:
    """An ICB's configuration in `folder`: the rules with a hip resurfacing order code, and the
    JWKS of the sandbox-like EHR (shaped as the sandbox's build/.well-known/jwks.json)."""
    shutil.copytree(default_rules_dir(), folder / "rules")
    with (folder / "rules" / "llr_icb.lp").open("a") as extra:
        extra.write(
            f'procedure("hip-resurfacing", "{HIP["system"]}", "{HIP["code"]}", "{HIP["display"]}").\n'
        )
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    (folder / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "use": "sig", "kid": KID, "alg": "ES384"}]})
    )
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return configure(tmp_path_factory.mktemp("conformance"))


def make_app(folder: Path, **settings: Any) -> Any:
    return test_cds_hooks.make_app(folder, SANDBOX_ISSUER, **settings)


@pytest.fixture(scope="module")
def client(folder: Path) -> TestClient:
    return TestClient(make_app(folder))


def signed(path: str, now: float | None = None, **changes: Any) -> dict[str, str]:
    """A sandbox token for `path`, made at `now` (default: this whole second, so that its
    rounding never puts iat ahead of the clock: that is a check of its own)."""
    now = math.floor(time.time()) if now is None else now
    return {"Authorization": f"Bearer {sandbox_token(BASE + path, KEY, KID, now, **changes)}"}


def answers_of(example: str, patient: str) -> dict[str, Any]:
    """The answers of an example record as a QuestionnaireResponse about `patient`."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": "2026-01-10T09:00:00Z",
        "item": test_cds_hooks.answer_items(example),
    }


def sign_call(example: str | None, gender: str = "male", patient: str = "123") -> dict[str, Any]:
    """An order-sign call (CRDServiceRequest.json's shape) for a hip resurfacing order, with the
    prefetch an EHR sends for every template: the Patient, the answers of `example` (null: none
    recorded), and no adaptive form's answers (null)."""
    prefetch = {
        "patient": patient_resource(patient, gender),
        "answers": searchset(answers_of(example, patient)) if example else None,
        "adaptiveAnswers": None,
    }
    return order_sign([service_request("2468", HIP, patient)], prefetch, patient)


def test_discovery_has_what_the_specification_requires(client: TestClient) -> None:
    """Discovery: hook, id and description for every service, prefetch templates as strings,
    nothing null or empty (current.md "Discovery", "Use of JSON")."""
    body = client.get("/cds-services", headers=signed("/cds-services")).json()
    assert discovery_problems(body) == []
    assert {(s["id"], s["hook"]) for s in body["services"]} == {
        (f"{p}-{h}", h)
        for p in ("hip-resurfacing", "knee-resurfacing")
        for h in ("order-select", "order-sign")
    }


def test_discovery_says_the_cds_hooks_version(client: TestClient) -> None:
    """CDS Hooks 3.0 (HL7/cds-hooks index.md, "Response"): `version`, the semantic version of the
    specification implemented, RECOMMENDED; `hookVersion` that of the hook library's hook."""
    services = client.get("/cds-services", headers=signed("/cds-services")).json()["services"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", s["version"]) and s["hookVersion"] == "1.0" for s in services)


def test_prefetch_templates_search_by_patient(client: TestClient) -> None:
    """The templates use `patient=` as every example of the specification does, and only the
    query features its "Prefetch query restrictions" recommend: no `_tag` (issue 33)."""
    services = client.get("/cds-services", headers=signed("/cds-services")).json()["services"]
    for template in (t for s in services for t in s["prefetch"].values()):
        path, _, query = template.partition("?")
        assert path in ("Patient/{{context.patientId}}", "QuestionnaireResponse"), template
        names = [pair.split("=")[0] for pair in query.split("&") if pair]
        assert set(names) <= {"patient", "questionnaire", "status", "_sort", "_count"}, template
        assert not query or "patient={{context.patientId}}" in query
        assert not query or ("status=completed,amended" in query and "_sort=-authored" in query)


def cards_of_every_example(client: TestClient) -> list[dict[str, Any]]:
    cards = []
    for example in sorted(p.stem for p in EXAMPLES.glob("*.json")):
        for gender in ("male", "female"):
            reply = client.post(SERVICE, json=sign_call(example, gender), headers=signed(SERVICE))
            assert reply.status_code == 200, reply.text
            cards += reply.json()["cards"]
    return cards


@pytest.fixture(scope="module")
def example_cards(client: TestClient) -> list[dict[str, Any]]:
    """The cards of every example, as a man and as a woman (two cards an example)."""
    return cards_of_every_example(client)


def test_every_card_has_a_uuid_of_its_own(example_cards: list[dict[str, Any]]) -> None:
    """A card's uuid is its unique identifier, which feedback names (current.md "Card
    Attributes", "Feedback"); the 3.0 models type it as a UUID."""
    assert len(example_cards) == 2 * len(list(EXAMPLES.glob("*.json")))  # one a call
    uuids = [card["uuid"] for card in example_cards]
    assert all(str(uuid.UUID(u)) == u for u in uuids) and len(set(uuids)) == len(uuids)


def test_cards_have_what_the_specification_requires(example_cards: list[dict[str, Any]]) -> None:
    """A summary under 140 characters, an indicator of info, warning or critical, a source with
    its label, Markdown detail, links with label, url and type (current.md "Card Attributes")."""
    assert [p for card in example_cards for p in required_card_problems(card)] == []


def test_cards_have_no_empty_element(example_cards: list[dict[str, Any]]) -> None:
    """ "JSON elements SHALL NOT be null or empty" (current.md "Use of JSON"): no `"missing": []`."""
    assert [p for card in example_cards for p in empty_elements(card, "card")] == []


def test_card_extension_keys_are_namespaced(example_cards: list[dict[str, Any]]) -> None:
    """Extension structures named for global uniqueness (current.md "Extensions"), as CRD names
    its `davinci-crd.` keys."""
    assert all(key.startswith("llr-asp.") for card in example_cards for key in card.get("extension", {}))
    assert response_problems({"cards": example_cards}) == []  # every rule at once


def test_cards_carry_the_verdict_and_its_robustness(example_cards: list[dict[str, Any]]) -> None:
    """The namespaced extension keeps the decision, whether every reading agrees, and what the
    readings reach; a card that is not robust says "Contested" and warns (issue 21)."""
    for card in example_cards:
        extension = card["extension"]
        assert extension["llr-asp.decision"] in extension["llr-asp.possible"]
        assert extension["llr-asp.robust"] == (len(extension["llr-asp.possible"]) == 1)
        if not extension["llr-asp.robust"]:  # the doubt first, after an urgent route's action
            doubt = "Sources disagree" if "llr-asp.conflicts" in extension else "Contested"
            assert re.match(rf"((Maybe u|U)rgent \([^)]*\): [^.]*\. )?{doubt}", card["summary"]), card[
                "summary"
            ]
            assert card["indicator"] == "warning"


def test_card_links_open_a_page_for_the_clinician(
    client: TestClient, example_cards: list[dict[str, Any]]
) -> None:
    """A link is loaded "via GET, in a browser context" (current.md "Link"): it opens a page,
    never raw JSON; the Questionnaire for the EHR's form filler is in the extension."""
    for link in {link["url"]: link for card in example_cards for link in card.get("links", [])}.values():
        assert link["type"] in ("absolute", "smart") and link["url"].startswith(BASE)
        page = client.get(link["url"][len(BASE) :])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert {card["extension"]["llr-asp.questionnaire"] for card in example_cards} == {
        f"{BASE}/fhir/Questionnaire/hip-resurfacing-adaptive"
    }


DTR_LAUNCH = "https://dtr.example/launch"


def test_a_card_launches_the_ehrs_form_filler_as_dtr_expects(folder: Path) -> None:
    """Issue 33: beside the `absolute` link to llr-asp's page, a `smart` link to the configured
    DTR app, its appContext a JSON string naming the policy's Questionnaire (a canonical the
    service's FHIR search finds) and the order (CRD's "Launch SMART application" card)."""
    launching = TestClient(make_app(folder, dtr_launch_url=DTR_LAUNCH))
    [card] = launching.post(SERVICE, json=sign_call("route-c1-pain"), headers=signed(SERVICE)).json()["cards"]
    absolute, smart = card["links"]
    assert absolute["type"] == "absolute" and absolute["url"].startswith(BASE)
    assert smart["type"] == "smart" and smart["url"] == DTR_LAUNCH
    context = json.loads(smart["appContext"])
    assert context["order"] == "ServiceRequest/2468"
    [named] = context["questionnaire"]
    found = launching.get("/fhir/Questionnaire", params={"url": named}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["hip-resurfacing-adaptive"]


def test_without_a_form_filler_configured_a_card_has_no_smart_link(
    example_cards: list[dict[str, Any]],
) -> None:
    assert all([link["type"] for link in card["links"]] == ["absolute"] for card in example_cards)


@pytest.mark.parametrize("url", ["dtr.example/launch", "ftp://dtr.example/launch", "https://dtr.example/#x"])
def test_a_launch_url_that_is_not_one_is_refused_in_one_line(url: str) -> None:
    from llr_asp.core.errors import UsageError
    from llr_asp.web.settings import Settings

    with pytest.raises(UsageError, match="--dtr-launch-url"):
        Settings(dtr_launch_url=url)


def test_an_order_sign_call_shaped_as_crd_gets_one_card(client: TestClient) -> None:
    """CRDServiceRequest.json: an order-sign call with fhirServer, fhirAuthorization, a
    collection Bundle of draft orders, and null for prefetch data the EHR does not have."""
    call = sign_call("route-c1-pain")
    call["context"]["draftOrders"]["entry"].insert(0, service_request("1357", OTHER))
    reply = client.post(SERVICE, json=call, headers=signed(SERVICE))
    [card] = reply.json()["cards"]
    assert card["summary"] == "Meets ARP 55 criteria"


def test_an_order_for_no_policy_gets_no_card(client: TestClient) -> None:
    """CRD's mammography order: no policy of llr-asp decides it, so no guidance (empty cards)."""
    call = order_sign([service_request("1357", OTHER)], {"patient": patient_resource("123")})
    assert client.post(SERVICE, json=call, headers=signed(SERVICE)).json() == {"cards": []}


def test_a_prefetch_with_null_for_data_the_ehr_lacks_is_decided(client: TestClient) -> None:
    """ "If the CDS Client has no data to populate a template prefetch key, the prefetch template
    key MUST have a value of null" (current.md): null answers are no answers, not an error."""
    [card] = client.post(SERVICE, json=sign_call(None), headers=signed(SERVICE)).json()["cards"]
    assert card["summary"] == "ARP 55: no answers found; answer the ARP 55 questions"


def test_a_prefetch_about_another_patient_is_not_decided(client: TestClient) -> None:
    """The Patient prefetched for CRD's order is another than context.patientId: no decision."""
    call = sign_call("route-c1-pain")
    call["prefetch"]["patient"]["id"] = "456"
    [card] = client.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
    assert "another patient" in card["summary"] and "Meets" not in card["summary"]


@pytest.mark.parametrize(
    ("selections", "cards"),
    [
        (["ServiceRequest/hip-1"], 1),
        (["ServiceRequest/scan-2"], 0),
        (["ServiceRequest/scan-2", "ServiceRequest/hip-1"], 1),
    ],
    ids=["the hip order selected", "only another order selected", "both selected"],
)
def test_order_select_answers_the_newly_selected_orders(
    client: TestClient, selections: list[str], cards: int
) -> None:
    """order-select (the hook library): "Decision support should focus on the 'selected'
    orders"; a hip order drafted earlier in the session gets no card again on every selection."""
    orders = [service_request("hip-1", HIP, "1288992"), service_request("scan-2", OTHER, "1288992")]
    prefetch = {
        "patient": patient_resource("1288992"),
        "answers": searchset(answers_of("route-c1-pain", "1288992")),
    }
    call = order_select(orders, selections, prefetch)
    reply = client.post(SELECT, json=call, headers=signed(SELECT))
    assert reply.status_code == 200 and len(reply.json()["cards"]) == cards


def unprefetched(client: TestClient) -> Any:
    call = order_select([service_request("hip-1", HIP, "1288992")], ["ServiceRequest/hip-1"], None)
    return client.post(SELECT, json=call, headers=signed(SELECT))


def test_no_prefetch_and_no_fhir_server_is_412(client: TestClient) -> None:
    """412 when the service cannot get the data it needs (current.md "HTTP Status Codes")."""
    assert unprefetched(client).status_code == 412


def test_the_412_carries_an_operation_outcome(client: TestClient) -> None:
    """CDS Hooks 3.0, "Returning OperationOutcome": a non-2xx answer SHOULD carry one."""
    reply = unprefetched(client)
    assert reply.json()["resourceType"] == "OperationOutcome" and fhir_problems(reply.json()) == []


def test_the_service_fetches_what_the_prefetch_lacks(client: TestClient) -> None:
    """CRDServiceRequest3.json: fhirServer and fhirAuthorization, no prefetch. The service
    fetches from the EHR's FHIR server itself, with the bearer token given, and asks only the
    queries its prefetch templates declare."""
    ehr = Ehr(patients={"123": patient_resource("123")}, responses=[answers_of("route-c1-pain", "123")])
    with serving(ehr), allowing(client.app, SANDBOX_ISSUER, ehr.base):
        call = order_sign([service_request("2468", HIP)], None)
        call["fhirServer"] = ehr.base
        reply = client.post(SERVICE, json=call, headers=signed(SERVICE))
    assert reply.status_code == 200, reply.text
    assert reply.json()["cards"][0]["summary"] == "Meets ARP 55 criteria"
    templates = client.get("/cds-services", headers=signed("/cds-services")).json()["services"][0]["prefetch"]
    asked = {
        (path, tuple(sorted((k, tuple(v)) for k, v in query.items()))) for path, query, _ in ehr.requests
    }
    declared = set()
    for template in templates.values():
        path, _, query = template.replace("{{context.patientId}}", "123").partition("?")
        pairs = sorted((k, (v,)) for k, v in (pair.split("=", 1) for pair in query.split("&") if pair))
        declared.add(("/fhir/" + path, tuple(pairs)))
    assert asked == declared
    assert {auth for _, _, auth in ehr.requests} == {"Bearer some-opaque-fhir-access-token"}


def test_a_fhir_server_that_does_not_answer_in_time_is_412(folder: Path) -> None:
    """The fetch has a deadline (`fhir_seconds`): a server that holds its answer back is a 412
    in time, never a hung card."""
    slow = TestClient(make_app(folder, fhir_seconds=0.5))
    ehr = Ehr(patients={"123": patient_resource("123")}, delay=3.0)
    with serving(ehr), allowing(slow.app, SANDBOX_ISSUER, ehr.base):
        call = order_sign([service_request("2468", HIP)], None)
        call["fhirServer"] = ehr.base
        started = time.monotonic()
        reply = slow.post(SERVICE, json=call, headers=signed(SERVICE))
        took = time.monotonic() - started
    assert reply.status_code == 412 and reply.json()["resourceType"] == "OperationOutcome"
    assert took < 2.5


def test_an_operation_outcome_in_the_prefetch_is_said_on_the_card(client: TestClient) -> None:
    """ "CDS Services SHOULD check any prefetched data for the existence of OperationOutcomes"
    (current.md "Prefetch Template"): a failed fetch is never read as "no answers"."""
    call = sign_call(None)
    call["prefetch"]["answers"] = failed_fetch()
    [card] = client.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
    assert card["indicator"] == "warning" and "could not fetch" in card["summary"]
    assert "answers needed" not in card["summary"] and "extension" not in card


def test_all_is_not_a_service(client: TestClient) -> None:
    """Discovery lists no service `all`: calling it (or its feedback) is 404, never a 500."""
    for path in ("/cds-services/all", "/cds-services/all/feedback"):
        body = (
            sign_call("route-c1-pain")
            if path.endswith("all")
            else {"feedback": [FEEDBACK_EXAMPLES["overridden"]]}
        )
        assert client.post(path, json=body, headers=signed(path)).status_code == 404


def test_a_token_signed_as_the_sandbox_signs_it_is_accepted(client: TestClient) -> None:
    """jwt-generator.js: ES384, typ JWT, a UUID kid, a jku header (ignored: the keys are the
    configured JWKS), exp 300 s after iat."""
    assert client.get("/cds-services", headers=signed("/cds-services")).status_code == 200


def test_a_sandbox_token_rounded_ahead_of_the_clock_is_accepted(client: TestClient) -> None:
    """The sandbox rounds iat to the nearest second: half its tokens are issued up to 0.5 s
    "in the future" (here the worst case, every time)."""
    ahead = signed("/cds-services", now=time.time() + 0.5)
    assert client.get("/cds-services", headers=ahead).status_code == 200


def test_aud_may_be_a_list(client: TestClient) -> None:
    """ "the aud value is either a string or an array of strings" (current.md)."""
    headers = signed("/cds-services", aud=[BASE + "/cds-services"])
    assert client.get("/cds-services", headers=headers).status_code == 200


def test_a_replayed_sandbox_token_is_refused(client: TestClient) -> None:
    """jti: "used to protect against replay attacks"."""
    headers = signed("/cds-services")
    assert [client.get("/cds-services", headers=headers).status_code for _ in range(2)] == [200, 401]


@pytest.mark.parametrize(("skew", "status"), [(5, 200), (-5, 200), (120, 401)])
def test_a_small_clock_skew_is_allowed(client: TestClient, skew: int, status: int) -> None:
    """An EHR whose clock runs 5 s fast or slow is not refused now and then; two minutes is
    refused (the leeway is documented in the README)."""
    assert (
        client.get("/cds-services", headers=signed("/cds-services", now=time.time() + skew)).status_code
        == status
    )


@pytest.mark.parametrize("example", list(FEEDBACK_EXAMPLES))
def test_the_specifications_feedback_is_accepted(client: TestClient, example: str) -> None:
    """The feedback examples of current.md, for a card the service gave."""
    [card] = client.post(SERVICE, json=sign_call("route-c1-pain"), headers=signed(SERVICE)).json()["cards"]
    path = f"{SERVICE}/feedback"
    body = {"feedback": [{**FEEDBACK_EXAMPLES[example], "card": card["uuid"]}]}
    assert client.post(path, json=body, headers=signed(path)).status_code == 200


@pytest.mark.parametrize(
    "entry",
    [
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"},
        {"card": str(uuid.uuid4())},
    ],
    ids=["card not a uuid", "no outcome"],
)
def test_malformed_feedback_is_refused(client: TestClient, entry: dict[str, Any]) -> None:
    path = f"{SERVICE}/feedback"
    assert client.post(path, json={"feedback": [entry]}, headers=signed(path)).status_code == 422


@pytest.fixture(scope="module")
def open_client(folder: Path) -> TestClient:
    return TestClient(make_app(folder, cors_origins=(SANDBOX_ORIGIN,)))


def test_an_allowed_browser_origin_may_call_every_endpoint(open_client: TestClient) -> None:
    """The sandbox calls from the browser (current.md "Cross-Origin Resource Sharing"): the
    preflight is answered, and so is the call, errors included, with the origin allowed."""
    for path, method in [
        ("/cds-services", "GET"),
        (SERVICE, "POST"),
        ("/fhir/Questionnaire/$next-question", "POST"),
    ]:
        preflight = open_client.options(
            path,
            headers={
                "Origin": SANDBOX_ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert (
            preflight.status_code == 200
            and preflight.headers["access-control-allow-origin"] == SANDBOX_ORIGIN
        )
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and method in preflight.headers["access-control-allow-methods"]
    reply = open_client.post(
        SERVICE, json=sign_call("route-c1-pain"), headers={**signed(SERVICE), "Origin": SANDBOX_ORIGIN}
    )
    assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == SANDBOX_ORIGIN
    refused = open_client.get("/cds-services", headers={"Origin": SANDBOX_ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == SANDBOX_ORIGIN


def test_the_guards_own_refusal_is_readable_by_an_allowed_origin(open_client: TestClient) -> None:
    """A body over its bound is refused by the guard, outside the CORS layer: the 413 still says
    the origin is allowed, or the browser would show its caller a network error, not the
    refusal; an origin not allowed, or the page, gets no allowance."""
    big = b"{" + b" " * (1 << 20) + b"}"
    headers = {"Content-Type": "application/json"}
    for origin, allowed in [(SANDBOX_ORIGIN, SANDBOX_ORIGIN), ("https://intruder.example", None)]:
        reply = open_client.post("/api/v1/explain", content=big, headers={**headers, "Origin": origin})
        assert reply.status_code == 413
        assert reply.headers.get("access-control-allow-origin") == allowed
    page = open_client.post("/ask", content=b"x" * (5 << 20), headers={"Origin": SANDBOX_ORIGIN})
    assert page.status_code == 413 and "access-control-allow-origin" not in page.headers


def test_any_origin_allowed_is_said_as_a_star_on_the_guards_refusals() -> None:
    """As Starlette's CORS layer says it for `--cors-origin '*'` (no credentials)."""
    from llr_asp.web.cors import allowance

    scope = {"path": "/fhir/Questionnaire/$next-question", "headers": [(b"origin", b"https://a.example")]}
    assert allowance(scope, ("*",)) == [(b"access-control-allow-origin", b"*")]
    assert allowance({**scope, "headers": []}, ("*",)) == []  # no Origin: not a cross-origin call


def test_cross_origin_calls_are_closed_unless_configured(client: TestClient) -> None:
    """Default closed: no origin is allowed without --cors-origin."""
    request = {"Origin": SANDBOX_ORIGIN, "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options(SERVICE, headers=request).headers


def test_only_the_configured_origins_are_allowed_and_never_for_the_page(open_client: TestClient) -> None:
    request = {"Origin": "https://intruder.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in open_client.options(SERVICE, headers=request).headers
    request = {"Origin": SANDBOX_ORIGIN, "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in open_client.options("/ask", headers=request).headers


def test_serve_says_no_order_matches_until_codes_are_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No order codes ship (no authoritative list was at hand: rules/llr_icb.lp): `serve` says
    at start-up that every order gets {"cards": []} until they are configured."""
    import uvicorn
    from test_web_api import isolated_environment
    from typer.testing import CliRunner

    from llr_asp.cli import app as cli

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    isolated_environment(monkeypatch)
    result = CliRunner().invoke(cli, ["serve", "--no-auth"])
    assert result.exit_code == 0 and "no order codes declared for ARP 55, ARP 60" in result.stderr
    assert "no CDS Hooks order will match" in result.stderr


def ehr_prefetch(templates: dict[str, str], patient: str, ehr: Ehr) -> dict[str, Any]:
    """What an EHR sends as prefetch: each template, its token replaced, read from its own FHIR
    server (null where it has no data)."""
    import httpx

    found: dict[str, Any] = {}
    for key, template in templates.items():
        reply = httpx.get(f"{ehr.base}/{template.replace('{{context.patientId}}', patient)}", timeout=5)
        found[key] = reply.json() if reply.status_code == 200 else None
    return found


def test_the_round_trip_card_adaptive_form_stored_response_card(client: TestClient) -> None:
    """Card → adaptive form → stored response → card: the card names the Questionnaire; the
    EHR's form filler asks it through $next-question (started as DTR's example is); the EHR
    stores the completed response; at the next order its prefetch finds that response, and the
    card decides from it."""
    from test_sdc_conformance import answered

    ehr = Ehr(patients={"123": patient_resource("123")})
    templates = client.get("/cds-services", headers=signed("/cds-services")).json()["services"][0]["prefetch"]
    with serving(ehr):
        call = order_sign([service_request("2468", HIP)], ehr_prefetch(templates, "123", ehr))
        [first] = client.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
        assert first["summary"] == "ARP 55: no answers found; answer the ARP 55 questions"
        form = client.get(first["extension"]["llr-asp.questionnaire"][len(BASE) :]).json()
        response = adaptive_start(f"{form['url']}|{form['version']}", patient="123")
        for _ in range(30):
            response = client.post("/fhir/Questionnaire/$next-question", json=response).json()
            if response["status"] == "completed":
                break
            response = answered(response, "route-c1-pain")
        ehr.responses.append(response)  # the EHR stores the completed response
        call = order_sign([service_request("2468", HIP)], ehr_prefetch(templates, "123", ehr))
        [second] = client.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
    assert call["prefetch"]["adaptiveAnswers"]["total"] == 1
    assert (
        second["summary"] == "Meets ARP 55 criteria" and second["extension"]["llr-asp.decision"] == "eligible"
    )


def test_a_form_fillers_own_export_is_found_without_the_servers_tag(client: TestClient) -> None:
    """Issue 33: what a DTR app stores after LHC-Forms completes the adaptive form is its own
    export (no tag of llr-asp's; `questionnaire` `#<contained form>`, which no server searches
    by). The templates search by patient, status, _sort and _count; which response answers the
    policy is read from inside it. A newer response to another questionnaire (a PHQ-9) and a
    form still in progress are passed over, and nothing is said to be set aside."""
    from test_sdc_conformance import answered

    ehr = Ehr(patients={"123": patient_resource("123")})
    templates = client.get("/cds-services", headers=signed("/cds-services")).json()["services"][0]["prefetch"]
    form = client.get("/fhir/Questionnaire/hip-resurfacing").json()
    response = adaptive_start(f"{form['url']}|{form['version']}", patient="123")
    for _ in range(30):
        response = client.post("/fhir/Questionnaire/$next-question", json=response).json()
        if response["status"] == "completed":
            break
        response = answered(response, "route-c1-pain")
    exported = {k: v for k, v in response.items() if k != "meta"}  # no tag, no profile
    phq9 = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://loinc.org/q/44249-1",
        "status": "completed",
        "subject": {"reference": "Patient/123"},
        "authored": "2999-01-01T00:00:00Z",
        "item": [{"linkId": "/44250-9", "answer": [{"valueInteger": 1}]}],
    }
    unfinished = {**answers_of("refused-b-four-months", "123"), "status": "in-progress"}
    ehr.responses += [exported, phq9, {**unfinished, "authored": "2999-01-02T00:00:00Z"}]
    with serving(ehr):
        call = order_sign([service_request("2468", HIP)], ehr_prefetch(templates, "123", ehr))
    assert {e["resource"]["status"] for e in call["prefetch"]["adaptiveAnswers"]["entry"]} == {"completed"}
    [card] = client.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
    assert card["summary"] == "Meets ARP 55 criteria" and "set aside" not in card["detail"]


# -- issue 33: the Da Vinci DTR app's card → form → card loop, in the app's own request shapes ----

DTR_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
AUTHOR = "http://hl7.org/fhir/StructureDefinition/questionnaireresponse-author"
ADAPTIVE_EXTENSION = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"


def lhc_export(form: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """What LHC-Forms' `getFormFHIRData('QuestionnaireResponse', 'R4', …)` gives for `form` with
    `answers` filled in (the shape tests/test_conformance_clients.py sees from LHC-Forms 40.1.3
    in Chromium): its own tag, status completed, authored, an item per answered question in the
    form's order with its text; a question left unanswered is left out."""
    from artefacts import answer

    return {
        "resourceType": "QuestionnaireResponse",
        "meta": {"tag": [{"code": "lformsVersion: 40.1.3"}]},
        "status": "completed",
        "authored": "2026-03-02T10:00:00.000Z",
        "item": [
            {"linkId": i["linkId"], "text": i["text"], "answer": [answer(i["linkId"], answers[i["linkId"]])]}
            for i in form.get("item", [])
            if answers.get(i["linkId"]) is not None
        ],
    }


def dtr_package_call(canonical: str | None = None, order: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DTR app's $questionnaire-package call (src/util/fetchArtifacts.js
    fetchArtifactsOperation): the Coverage it read from the EHR, the order, the canonical."""
    parameters: list[dict[str, Any]] = [
        {"name": "coverage", "resource": {"resourceType": "Coverage", "id": "cov1", "status": "active"}},
        {"name": "order", "resource": order or service_request("2468", HIP)["resource"]},
    ]
    if canonical is not None:
        parameters.append({"name": "questionnaire", "valueCanonical": canonical})
    return {
        "resourceType": "Parameters",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-qpackage-input-parameters"
            ]
        },
        "parameter": parameters,
    }


@pytest.mark.parametrize(
    ("canonical", "served"),
    [
        (None, ["hip-resurfacing-adaptive"]),  # named by the order: the form its card links
        ("urn:llr-asp:questionnaire:hip-resurfacing", ["hip-resurfacing"]),
        ("urn:llr-asp:questionnaire:all-adaptive", ["all-adaptive"]),  # the order is context
    ],
)
def test_questionnaire_package_serves_the_forms_named(
    folder: Path, canonical: str | None, served: list[str]
) -> None:
    """Issue 33: DTR's $questionnaire-package, as the DTR app calls it: one PackageBundle a form
    (the canonicals', else the order's), each a collection Bundle holding the Questionnaire."""
    reply = TestClient(make_app(folder)).post(
        "/fhir/Questionnaire/$questionnaire-package", json=dtr_package_call(canonical)
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+json")
    bundles = [p["resource"] for p in reply.json()["parameter"] if p["name"] == "PackageBundle"]
    assert all(b["type"] == "collection" for b in bundles)
    assert [e["resource"]["id"] for b in bundles for e in b["entry"]] == served
    assert [e["fullUrl"] for b in bundles for e in b["entry"]] == [
        f"{BASE}/fhir/Questionnaire/{s}" for s in served
    ]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"resourceType": "QuestionnaireResponse"}, 400, "expected a Parameters resource"),
        ({"resourceType": "Parameters", "parameter": []}, 400, 'a "questionnaire" canonical'),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "questionnaire", "valueCanonical": 3}]},
            400,
            "parameter[0].valueCanonical",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "questionnaire", "valueCanonical": "urn:x:y"}],
            },
            404,
            "no Questionnaire 'urn:x:y'",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "questionnaire",
                        "valueCanonical": "urn:llr-asp:questionnaire:hip-resurfacing|0.0.1",
                    }
                ],
            },
            404,
            "version",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "order", "resource": {"resourceType": "Task"}}],
            },
            400,
            "expected a ServiceRequest",
        ),
        (
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "order", "resource": service_request("1", OTHER)["resource"]}],
            },
            404,
            "no policy here decides that order",
        ),
    ],
)
def test_questionnaire_package_refuses_what_it_cannot_serve(
    folder: Path, body: dict[str, Any], status: int, said: str
) -> None:
    reply = TestClient(make_app(folder)).post("/fhir/Questionnaire/$questionnaire-package", json=body)
    assert reply.status_code == status and reply.json()["resourceType"] == "OperationOutcome"
    assert said in reply.json()["issue"][0]["diagnostics"], reply.text


def test_the_dtr_apps_card_form_card_loop_closes(folder: Path) -> None:
    """Issue 33: the card's smart link launches the DTR app on the adaptive form; the app runs it
    to completion in its own request shapes and stores the response as it does; at the next
    order-sign the discovery's prefetch templates find that stored response and the card is
    decided from its answers. Shapes from HL7-DaVinci/dtr (master, 7acf79a):

    - src/index.js: the launch context's `questionnaire` is a fhirContext entry's `canonical`
      of type Questionnaire (SMART 2), `order` a ServiceRequest reference: the EHR hands the
      card's appContext on so (the app parses no JSON appContext itself, only `k=v&…`);
    - src/util/retrieveQuestions.js buildNextQuestionRequest: LHC's export with `meta` replaced
      by the sdc-questionnaireresponse-adapt profile, status in-progress, `contained` [the
      form], `questionnaire` `#<its id>`, `subject` {reference: Patient/<id>};
    - src/components/QuestionnaireForm/QuestionnaireForm.jsx loadNextQuestions: POSTed to the
      contained form's questionnaireAdaptive valueUrl; `result.contained[0]` becomes the form
      (App.jsx ehrLaunch(true, …)); getQuestionnaireResponse + outputResponse("completed"):
      LHC's export with each new answer marked information-origin `manual`
      (src/util/qrUtils.js processInformationOrigin), the questionnaireresponse-author
      extension on each item, `author`, `subject`, `questionnaire` = appContext.questionnaire
      (the launch's canonical, not `#…`), `extension` = [qr-context: the order], `contained` =
      [the last form]; storeQuestionnaireResponseToEhr POSTs that to the EHR's
      QuestionnaireResponse endpoint.

    - src/util/fetchArtifacts.js fetchArtifactsOperation: the form comes from
      $questionnaire-package, POSTed a Parameters (dtr-qpackage-input-parameters) of the
      Coverage, the order and the `questionnaire` canonical; the first PackageBundle's first
      Questionnaire entry is the form.

    (The app POSTs $questionnaire-package to a URL it derives from an http(s) canonical,
    `<origin><path less its last segment>/$questionnaire-package`; from llr-asp's URN it derives
    `null/$questionnaire-package` on the EHR. Here the call goes where an http canonical
    `<base>/Questionnaire/<id>` would have sent it.)"""
    from artefacts import RULES

    from llr_asp import validate

    launching = TestClient(make_app(folder, dtr_launch_url=DTR_LAUNCH))
    ehr = Ehr(patients={"123": patient_resource("123")})
    discovery = launching.get("/cds-services", headers=signed("/cds-services")).json()
    [templates] = [s["prefetch"] for s in discovery["services"] if s["id"] == "hip-resurfacing-order-sign"]
    known = validate(json.loads((EXAMPLES / "route-c1-pain.json").read_text()), RULES, "truth").values
    with serving(ehr):
        call = order_sign([service_request("2468", HIP)], ehr_prefetch(templates, "123", ehr))
        [first] = launching.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
        assert first["extension"]["llr-asp.decision"] == "undetermined"
        [smart] = [link for link in first["links"] if link["type"] == "smart"]
        context = json.loads(smart["appContext"])
        [canonical] = context["questionnaire"]
        launch = {"questionnaire": canonical, "order": context["order"]}  # index.js fhirContext
        package = launching.post(
            "/fhir/Questionnaire/$questionnaire-package", json=dtr_package_call(canonical)
        )
        [bundle, *_] = [p["resource"] for p in package.json()["parameter"] if p["name"] == "PackageBundle"]
        qform = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Questionnaire"
        )
        assert "item" not in qform  # the app shows "Next Question" for an item-less adaptive form
        answers: dict[str, Any] = {}
        for _ in range(30):
            [marked] = [e for e in qform["extension"] if e["url"] == ADAPTIVE_EXTENSION]
            body = {  # buildNextQuestionRequest(qform, LHC's export, "Patient/123")
                **lhc_export(qform, answers),
                "meta": {
                    "profile": [
                        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"
                    ]
                },
                "status": "in-progress",
                "contained": [qform],
                "questionnaire": f"#{qform['id']}",
                "subject": {"reference": "Patient/123"},
            }
            reply = launching.post(marked["valueUrl"].removeprefix(BASE), json=body)
            assert reply.status_code == 200, reply.text
            result = reply.json()
            qform = result["contained"][0]
            if result["status"] == "completed":
                break
            asked = qform["item"][-1]["linkId"]
            answers[asked] = known.get(asked)  # not known: left unanswered, as LHC leaves it out
        else:
            pytest.fail("the adaptive form did not complete in 30 calls")
        stored = lhc_export(qform, answers)  # getQuestionnaireResponse("completed")
        for item in stored["item"]:
            item["answer"][0]["extension"] = [
                {"url": DTR_ORIGIN, "extension": [{"url": "source", "valueCode": "manual"}]}
            ]
            item["extension"] = [{"url": AUTHOR, "valueReference": {"reference": "Practitioner/ABC"}}]
        stored.update(
            status="completed",
            author={"reference": "Practitioner/ABC"},
            subject={"reference": "Patient/123"},
            questionnaire=launch["questionnaire"],
            extension=[
                {
                    "url": "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context",
                    "valueReference": {"reference": launch["order"], "type": "ServiceRequest"},
                }
            ],
            contained=[qform],  # outputResponse: the adaptive form, contained
        )
        assert "urn:llr-asp:questionnaire" not in json.dumps(stored.get("meta"))  # none of llr-asp's tags
        ehr.responses.append(stored)  # storeQuestionnaireResponseToEhr: POST QuestionnaireResponse
        call = order_sign([service_request("2468", HIP)], ehr_prefetch(templates, "123", ehr))
        [second] = launching.post(SERVICE, json=call, headers=signed(SERVICE)).json()["cards"]
    assert call["prefetch"]["answers"]["total"] == 1  # found by its canonical, and among the latest
    assert call["prefetch"]["adaptiveAnswers"]["total"] == 1
    assert second["summary"] == "Meets ARP 55 criteria", second["summary"]
    assert second["extension"]["llr-asp.decision"] == "eligible"
    assert second["extension"]["llr-asp.answers-authored"] == stored["authored"]


# -- issue 33: the CDS Hooks sandbox's own request shape ------------------------------------------


def sandbox_prefetch(templates: dict[str, str], patient: str, ehr: Ehr) -> dict[str, Any]:
    """The prefetch as the sandbox builds it (cds-hooks/sandbox, 3b7e255,
    src/retrieve-data-helpers/service-exchange.js completePrefetchTemplate and
    prefetchDataPromises): `{{context.patientId}}` replaced, each query value URI-encoded
    (encodeUriParameters: the commas and colons of `status` and `questionnaire` too), an
    instance read by GET, a search by POST to `_search` and, that failing (the test EHR answers
    no POST), by GET; a key whose fetch fails or finds an empty body is left out (never null)."""
    from urllib.parse import quote

    import httpx

    found: dict[str, Any] = {}
    for key, template in templates.items():
        filled = template.replace("{{context.patientId}}", patient)
        path, _, query = filled.partition("?")
        if query:
            pairs = [pair.split("=", 1) for pair in query.split("&")]
            filled = f"{path}?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)
            if httpx.post(f"{ehr.base}/{path}/_search", data=dict(pairs), timeout=5).status_code == 200:
                pytest.fail("the test EHR answers no POST _search: the sandbox's GET fallback is what is run")
        reply = httpx.get(f"{ehr.base}/{filled}", timeout=5)
        if reply.status_code == 200 and reply.json():
            found[key] = reply.json()
    return found


def sandbox_call(hook: str, patient: str, prefetch: dict[str, Any], authorized: bool) -> dict[str, Any]:
    """A call exactly as the sandbox's callServices builds it (service-exchange.js): hookInstance,
    hook, fhirServer, context = {patientId, userId (patient-reducers.js defaultUser), and the PAMA
    screen's generateContext (src/components/Pama/pama.jsx): selections and a draftOrders Bundle
    (no `type`) holding one draft ServiceRequest, intent plan, coded with the chosen study and a
    reason}; fhirAuthorization (access_token, token_type, expires_in, scope = fhir-config.js
    allScopes, subject = productionClientId; no `patient`) only after a SMART launch gave a
    token; prefetch only when some key was fetched."""
    call: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "fhirServer": "http://127.0.0.1:1/fhir",  # replaced by the test EHR's base where it is read
        "context": {
            "patientId": patient,
            "userId": "Practitioner/COREPRACTITIONER1",
            "selections": ["ServiceRequest/example-request-id"],
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "ServiceRequest",
                            "id": "example-request-id",
                            "status": "draft",
                            "intent": "plan",
                            "code": {"coding": [HIP], "text": HIP["display"]},
                            "subject": {"reference": f"Patient/{patient}"},
                            "reasonCode": [
                                {
                                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "M16.1"}],
                                    "text": "Unilateral primary osteoarthritis of hip",
                                }
                            ],
                        }
                    }
                ],
            },
        },
    }
    if authorized:
        call["fhirAuthorization"] = {
            "access_token": "a-token-from-the-sandboxs-smart-launch",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "patient/*.* user/*.* launch openid profile online_access",
            "subject": "48163c5e-88b5-4cb3-92d3-23b800caa927",
        }
    if prefetch:
        call["prefetch"] = prefetch
    return call


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_the_sandboxs_own_request_gets_a_card(folder: Path, hook: str) -> None:
    """Issue 33: the CDS Hooks sandbox's PAMA screen calls each hook with its own request shape
    (`sandbox_call`), its prefetch fetched as it fetches (`sandbox_prefetch`), each service
    keyed by its id: the patient's answers stored in the EHR give a card decided from them. A
    sandbox launched with a token (fhirAuthorization) whose prefetch left a key out: the
    service reads that key from fhirServer itself, and decides the same."""
    app = make_app(folder)
    client = TestClient(app)
    ehr = Ehr(patients={"123": patient_resource("123")})
    ehr.responses.append(answers_of("route-c1-pain", "123"))
    services = client.get("/cds-services", headers=signed("/cds-services")).json()["services"]
    [service] = [s for s in services if s["hook"] == hook and s["id"].startswith("hip-resurfacing")]
    path = f"/cds-services/{service['id']}"
    with serving(ehr), allowing(app, SANDBOX_ISSUER, ehr.base):
        prefetch = sandbox_prefetch(service["prefetch"], "123", ehr)
        assert set(prefetch) == {"patient", "answers", "adaptiveAnswers"}
        cards = []
        for authorized, given in (
            (False, prefetch),
            (True, {k: v for k, v in prefetch.items() if k != "answers"}),
        ):
            call = {**sandbox_call(hook, "123", given, authorized), "fhirServer": ehr.base}
            reply = client.post(path, json=call, headers={**signed(path), "Accept": "application/json"})
            assert reply.status_code == 200, reply.text
            assert response_problems(reply.json()) == []
            [card] = reply.json()["cards"]
            cards.append(card)
    assert [c["summary"] for c in cards] == ["Meets ARP 55 criteria"] * 2
    assert all(c["extension"]["llr-asp.answers-authored"] == "2026-01-10T09:00:00Z" for c in cards)
    fetched = [
        (p, q) for p, q, _ in ehr.requests if p.endswith("/QuestionnaireResponse") and "questionnaire" in q
    ]
    assert len(fetched) == 2  # the sandbox's own search, then the service's for the key it left out
