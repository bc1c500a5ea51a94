"""The FHIR endpoints as an SDC form filler and a Da Vinci DTR client use them: adaptive forms
started as SDC's and DTR's example QuestionnaireResponses are (`artefacts.py`), every resource
valid R4B and held to the SDC 4.0.0 invariants (`conformance.py`), every error an
OperationOutcome.

Each test is one conformance check of issue 23. They use only the service's HTTP surface, so
the same file run against an older checkout counts the checks that held there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
pytest.importorskip("fhir.resources", reason="fhir.resources is not installed")
from artefacts import adaptive_start, answer_items, answered, next_question_parameters
from conformance import (
    adaptive_response_problems,
    fhir_problems,
    sdc_questionnaire_problems,
)
from fastapi.testclient import TestClient
from helpers import unreceipted

from llr_asp import load_rules
from llr_asp.core.documents import record, validate
from llr_asp.formats.receipts import Receipt, answers_hash
from llr_asp.web import create_app
from llr_asp.web.settings import Settings

BASE = "https://llr.example.nhs.uk"
NEXT = "/fhir/Questionnaire/$next-question"
ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
EXAMPLES = Path(__file__).parent.parent / "examples"
RULES = load_rules()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(settings=Settings(public_url=BASE)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def hip(client: TestClient) -> dict[str, Any]:
    """The hip policy's full Questionnaire (every question, not adaptive)."""
    return client.get("/fhir/Questionnaire/hip-resurfacing").json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def adaptive(client: TestClient) -> dict[str, Any]:
    """The hip policy's adaptive Questionnaire, the one a card names (no items)."""
    return client.get("/fhir/Questionnaire/hip-resurfacing-adaptive").json()  # type: ignore[no-any-return]


def fill(
    client: TestClient, response: dict[str, Any], example: str, wrapped: bool = True
) -> list[dict[str, Any]]:
    """Every response $next-question gives, answering from the example, until completed."""
    given = []
    for _ in range(30):
        reply = client.post(NEXT, json=next_question_parameters(response) if wrapped else response)
        assert reply.status_code == 200, reply.text
        given.append(reply.json())
        if given[-1]["status"] == "completed":
            return given
        response = answered(given[-1], example)
    pytest.fail("the adaptive form did not complete in 30 questions")


POLICIES = [
    f"{p}{kind}" for p in ("hip-resurfacing", "knee-resurfacing", "all") for kind in ("", "-adaptive")
]


@pytest.mark.parametrize("policy", POLICIES)
def test_served_questionnaires_are_valid_r4(client: TestClient, policy: str) -> None:
    """Every Questionnaire served validates against the R4B model, nothing null or empty."""
    assert fhir_problems(client.get(f"/fhir/Questionnaire/{policy}").json()) == []


@pytest.mark.parametrize("policy", POLICIES)
def test_served_questionnaires_meet_the_sdc_invariants(client: TestClient, policy: str) -> None:
    """SDC 4.0.0's sdc-2 (a version needs the artifact-versionAlgorithm extension), sdc-3
    (semver), sdc-base-1/2, cnl-0/1."""
    assert sdc_questionnaire_problems(client.get(f"/fhir/Questionnaire/{policy}").json()) == []


def test_grades_carry_their_rank_as_item_weight(hip: dict[str, Any]) -> None:
    """SDC 4 renamed ordinalValue to itemWeight (changes.xml, FHIR-28611)."""
    weights = [
        e["url"]
        for i in hip["item"]
        for option in i.get("answerOption", [])
        for e in option.get("extension", [])
    ]
    assert weights and set(weights) == {"http://hl7.org/fhir/StructureDefinition/itemWeight"}


def test_the_questionnaire_a_card_names_is_adaptive(client: TestClient, adaptive: dict[str, Any]) -> None:
    """questionnaireAdaptive marks it adaptive, its URL the base of $next-question (DTR
    spec-23: "[url]/Questionnaire/$next-question"), so a form filler asks it one question at
    a time."""
    [marked] = [e for e in adaptive["extension"] if e["url"] == ADAPTIVE]
    assert marked == {"url": ADAPTIVE, "valueUrl": f"{BASE}/fhir"}
    start = adaptive_start(f"{adaptive['url']}|{adaptive['version']}")
    reply = client.post(marked["valueUrl"][len(BASE) :] + "/Questionnaire/$next-question", json=start)
    assert reply.status_code == 200 and reply.json()["status"] == "in-progress"


ADAPT_SEARCH = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adapt-srch"


@pytest.mark.parametrize("policy", ["hip-resurfacing", "knee-resurfacing", "all"])
def test_the_adaptive_questionnaire_is_item_less_and_the_full_one_is_not_adaptive(
    client: TestClient, policy: str
) -> None:
    """Issue 33: SDC's adaptive search profile (sdc-questionnaire-adapt-srch: questionnaireAdaptive
    1..*, item 0..0) for the form a card names, its own id and canonical, found by a search on
    that canonical; the full form beside it keeps every question and is not marked adaptive (a
    form filler shows it whole: an adaptive one with 18 items would be shown at once)."""
    full = client.get(f"/fhir/Questionnaire/{policy}").json()
    adaptive = client.get(f"/fhir/Questionnaire/{policy}-adaptive").json()
    assert full["item"] and ADAPTIVE not in {e["url"] for e in full["extension"]}
    assert (full["id"], full["url"]) == (policy, f"urn:llr-asp:questionnaire:{policy}")
    assert "item" not in adaptive and adaptive["meta"]["profile"] == [ADAPT_SEARCH]
    assert (adaptive["id"], adaptive["url"]) == (
        f"{policy}-adaptive",
        f"urn:llr-asp:questionnaire:{policy}-adaptive",
    )
    assert adaptive["version"] == full["version"] and adaptive["title"] == full["title"]
    for form in (full, adaptive):
        for url in (form["url"], f"{form['url']}|{form['version']}"):
            found = client.get("/fhir/Questionnaire", params={"url": url}).json()
            assert [e["resource"] for e in found["entry"]] == [form]
            assert found["entry"][0]["fullUrl"] == f"{BASE}/fhir/Questionnaire/{form['id']}"


@pytest.mark.parametrize("where", ["derivedFrom", "questionnaire"])
def test_a_version_specific_canonical_is_understood(
    client: TestClient, hip: dict[str, Any], where: str
) -> None:
    """FHIR canonicals may carry a version (`url|version`) and DTR sends version-specific ones,
    in the contained form's derivedFrom or in the response's questionnaire."""
    versioned = f"{hip['url']}|{hip['version']}"
    if where == "derivedFrom":
        start = adaptive_start(versioned)
    else:
        start = {"resourceType": "QuestionnaireResponse", "questionnaire": versioned, "status": "in-progress"}
    reply = client.post(NEXT, json=start)
    assert reply.status_code == 200, reply.text
    [form] = reply.json()["contained"]
    assert form["derivedFrom"] == [versioned] and form["item"][0]["linkId"] in RULES.fields


@pytest.fixture(scope="module")
def forms(client: TestClient) -> dict[tuple[str, bool], list[dict[str, Any]]]:
    """Every response of adaptive forms started as SDC's and DTR's examples are (derived from
    the policy's canonical), answered from three examples, sent bare and as Parameters."""
    start = adaptive_start("urn:llr-asp:questionnaire:hip-resurfacing")
    examples = ["route-c1-pain", "refused-hip-female", "undetermined-pain-unknown"]
    return {(e, wrapped): fill(client, start, e, wrapped) for e in examples for wrapped in (True, False)}


def test_every_next_question_response_is_an_sdc_adaptive_response(
    forms: dict[Any, list[dict[str, Any]]],
) -> None:
    """sdc-questionnaire-adapt: the contained form referenced as #id (sdc-adapt-1), no url or
    version of its own, derivedFrom one canonical, every item with text; R4B-valid."""
    for response in (r for given in forms.values() for r in given):
        assert [p for p in adaptive_response_problems(response) if "authored" not in p] == []


def test_every_next_question_response_says_when_it_was_authored(
    forms: dict[Any, list[dict[str, Any]]],
) -> None:
    """SDC's QuestionnaireResponse: authored 1..1, "Changes whenever the answers are updated"
    (the start's authored, from the example, is years old)."""
    stale = adaptive_start("")["authored"]
    assert all(r.get("authored", stale) != stale for given in forms.values() for r in given)


def test_a_completed_form_says_the_decision(forms: dict[Any, list[dict[str, Any]]]) -> None:
    """The last response is completed, its form closing with a display item saying the decision
    (DTR spec-39), the determination an extension of the response."""
    for given in forms.values():
        last = given[-1]
        [form] = last["contained"]
        assert form["item"][-1]["type"] == "display" and "ARP 55" in form["item"][-1]["text"]
        assert [e["url"] for e in last["extension"]] == [
            "urn:llr-asp:determination",
            "urn:llr-asp:robustness",
            "urn:llr-asp:edition",  # the edition that decided (DESIGN §5)
            "urn:llr-asp:receipt",  # the decision's receipt (DESIGN §6)
        ]


def test_an_invalid_answer_is_400_with_an_operation_outcome(client: TestClient, hip: dict[str, Any]) -> None:
    """DTR spec-147: a QuestionnaireResponse invalid against the contained Questionnaire is "an
    HTTP 400 error with an OperationOutcome indicating the circumstances"."""
    first = client.post(NEXT, json=adaptive_start(f"{hip['url']}|{hip['version']}")).json()
    link = first["contained"][0]["item"][-1]["linkId"]
    wrong = {**first, "item": [{"linkId": link, "answer": [{"valueString": "perhaps"}]}]}
    reply = client.post(NEXT, json=next_question_parameters(wrong))
    assert reply.status_code == 400 and reply.headers["content-type"].startswith("application/fhir+json")
    outcome = reply.json()
    assert fhir_problems(outcome) == [] and link in outcome["issue"][0]["diagnostics"]


def test_a_contained_questionnaire_without_an_id_is_400_not_500(
    client: TestClient, hip: dict[str, Any]
) -> None:
    start = adaptive_start(f"{hip['url']}|{hip['version']}")
    del start["contained"][0]["id"], start["questionnaire"]
    reply = client.post(NEXT, json=start)
    assert reply.status_code == 400 and reply.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/fhir/Questionnaire/no-such-policy", None, 404),
        ("GET", "/fhir/Patient/123", None, 404),
        ("DELETE", "/fhir/Questionnaire/hip-resurfacing", None, 405),
        ("POST", NEXT, b"not json", 400),
        ("POST", NEXT, b'{"resourceType": "Patient"}', 400),
        ("POST", NEXT, b" " * (2 << 20), 413),
    ],
)
def test_every_fhir_error_is_an_operation_outcome(
    client: TestClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    reply = client.request(method, path, content=body)
    assert reply.status_code == status
    assert (
        reply.headers["content-type"].startswith("application/fhir+json")
        and fhir_problems(reply.json()) == []
    )


def test_metadata_is_a_capability_statement(client: TestClient) -> None:
    """`GET [base]/metadata`: what this FHIR server does (read and search of Questionnaire, and
    $next-question)."""
    statement = client.get("/fhir/metadata").json()
    assert fhir_problems(statement) == []
    [resource, definitions] = statement["rest"][0]["resource"]
    assert definitions["type"] == "StructureDefinition"
    assert resource["type"] == "Questionnaire" and {"read", "search-type"} <= {
        i["code"] for i in resource["interaction"]
    }
    assert resource["operation"][0]["definition"].endswith("/OperationDefinition/Questionnaire-next-question")


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("url=urn:llr-asp:questionnaire:hip-resurfacing", ["hip-resurfacing"]),
        ("url=urn:llr-asp:questionnaire:hip-resurfacing|{version}", ["hip-resurfacing"]),
        ("url=urn:llr-asp:questionnaire:knee-resurfacing&version={version}", ["knee-resurfacing"]),
        ("url=urn:llr-asp:questionnaire:hip-resurfacing|0.0.1", []),
        ("url=urn:llr-asp:questionnaire:nothing", []),
        ("url=urn:llr-asp:questionnaire:hip-resurfacing-adaptive", ["hip-resurfacing-adaptive"]),
        ("url=urn:llr-asp:questionnaire:all-adaptive|{version}", ["all-adaptive"]),
        ("url=urn:llr-asp:questionnaire:-adaptive", []),
        (
            "",
            [
                f"{p}{kind}"
                for p in ("hip-resurfacing", "knee-resurfacing", "all")
                for kind in ("", "-adaptive")
            ],
        ),
    ],
)
def test_questionnaires_are_found_by_canonical_url(
    client: TestClient, hip: dict[str, Any], query: str, found: list[str]
) -> None:
    """A form filler given a canonical finds the Questionnaire by a search on `url`."""
    params = [tuple(pair.split("=", 1)) for pair in query.format(version=hip["version"]).split("&") if pair]
    bundle = client.get("/fhir/Questionnaire", params=params).json()  # encoded: a version holds "+"
    assert fhir_problems(bundle) == [] and bundle["type"] == "searchset" and bundle["total"] == len(found)
    assert [e["resource"]["id"] for e in bundle.get("entry", [])] == found


# -- issue 28: bounds in the Questionnaire, the shapes form fillers send, a form posted again ----


def test_number_items_carry_their_declared_bounds_typed_as_the_item(client: TestClient) -> None:
    """minValue and maxValue are the declared range, in the item's own type (valueInteger for an
    integer item: FHIR requires the extension's type to be the item's). Bugs: maxValue copied
    from the minimum; integer bounds as valueDecimal. Other items carry no bound."""
    bounds = "http://hl7.org/fhir/StructureDefinition/"
    form = client.get("/fhir/Questionnaire/all").json()
    checked = set()
    for entry in form["item"]:
        field = RULES.fields[entry["linkId"]]
        found = {
            e["url"][len(bounds) :]: e for e in entry.get("extension", []) if e["url"].startswith(bounds)
        }
        found = {k: v for k, v in found.items() if k in ("minValue", "maxValue")}
        if field.type not in ("number", "integer"):
            assert found == {}, field.path
            continue
        kind = {"number": "valueDecimal", "integer": "valueInteger"}[field.type]
        assert entry["type"] == {"number": "decimal", "integer": "integer"}[field.type]
        assert found["minValue"] == {"url": bounds + "minValue", kind: field.minimum}, field.path
        assert found["maxValue"] == {"url": bounds + "maxValue", kind: field.maximum}, field.path
        checked.add(field.type)
    assert checked == {"number", "integer"}  # both kinds are exercised (months 0-1200, compartments 1-3)
    assert (
        RULES.fields["knee.compartments_affected"].minimum
        == 1
        < RULES.fields["knee.compartments_affected"].maximum
    )


def grouped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items as a form filler that lays a form out in sections sends them: a group per first
    path segment (item.item), the first group's questions one level deeper again."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for entry in items:
        sections.setdefault(entry["linkId"].split(".")[0], []).append(entry)
    groups = [
        {"linkId": f"section-{name}", "text": name, "type": "group", "item": found}
        for name, found in sections.items()
    ]
    groups[0] = {"linkId": "page-1", "type": "group", "item": [groups[0]]}
    return groups


@pytest.mark.parametrize("example", ["route-c4-sfi", "refused-b-four-months", "undetermined-pain-unknown"])
def test_a_grouped_response_is_read_as_the_flat_one(client: TestClient, example: str) -> None:
    """Groups (item.item, two levels) are opened wherever a response is read: explain's JSON and
    $next-question's answer are those of the same answers sent flat (bug: groups not opened, so
    a grouped response is refused as naming no field)."""
    asks = RULES.policies["hip-resurfacing"].fields()  # $next-question refuses another form's items
    flat = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "item": [i for i in answer_items(example) if i["linkId"] in asks],
    }
    nested = {**flat, "item": grouped(flat["item"])}
    assert any("item" in group["item"][0] for group in nested["item"])  # a group in a group
    explained = [client.post("/api/v1/explain", json=resource) for resource in (flat, nested)]
    assert [r.status_code for r in explained] == [200, 200], explained[1].text
    assert unreceipted(explained[0].json()) == unreceipted(explained[1].json())
    # the same answers, whatever their grouping: each receipt hashes the flat answers (keyed
    # with its own salt, which the log keeps)
    answers = validate(record(flat, RULES, "flat"), RULES, "flat")
    for response in explained:
        receipt = Receipt.read(response.json()["receipt"])
        kept = client.app.state.receipts.log.find(receipt.hash)
        assert kept is not None and answers_hash(answers, kept.salt) == receipt.claims["answers"]
    asked = [client.post(NEXT, json=resource).json() for resource in (flat, nested)]
    for answer in asked:  # authored differs by the time it took
        answer.pop("authored")
    assert asked[0]["contained"] == asked[1]["contained"]
    assert asked[0]["status"] == asked[1]["status"]
    assert unreceipted(asked[0].get("extension")) == unreceipted(asked[1].get("extension"))


@pytest.mark.parametrize(
    ("link", "answer", "words"),
    [
        ("msk.assessed", {"valueBoolean": "false"}, "expected valueBoolean"),
        ("msk.assessed", {"valueBoolean": 0}, "expected valueBoolean"),
        ("msk.assessed", {"valueString": "yes"}, "expected valueBoolean"),
        ("conservative.months", {"valueDecimal": "6"}, "expected valueDecimal"),
        ("conservative.months", {"valueDecimal": True}, "expected valueDecimal"),
        ("knee.compartments_affected", {"valueInteger": 2.5}, "expected a whole number from 1 to 3"),
        ("pain.severity", {"valueCoding": {"code": "Severe"}}, "expected a valueCoding with a code of"),
        ("pain.severity", {"valueBoolean": True}, "expected a valueCoding with a code of"),
    ],
)
def test_a_wrongly_typed_answer_is_refused_naming_the_item(
    client: TestClient, link: str, answer: dict[str, Any], words: str
) -> None:
    """Types are strict in FHIR as in JSON: "false" is not a boolean (bug: any valueBoolean read
    as a truth value, so "false" was yes). 400 with an OperationOutcome from $next-question, 422
    from explain, each naming the item and what is wanted."""
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:all",
        "status": "in-progress",
        "item": [
            {"linkId": "sex", "answer": [{"valueCoding": {"code": "male"}}]},
            {"linkId": link, "answer": [answer]},
        ],
    }
    reply = client.post(NEXT, json=resource)
    assert reply.status_code == 400 and reply.json()["resourceType"] == "OperationOutcome"
    said = reply.json()["issue"][0]["diagnostics"]
    assert link in said and words in said
    explained = client.post("/api/v1/explain", json=resource)
    assert (
        explained.status_code == 422
        and link in explained.json()["error"]
        and words in explained.json()["error"]
    )


def test_a_completed_form_posted_again_stays_completed_with_one_closing_item(
    forms: dict[Any, list[dict[str, Any]]], client: TestClient
) -> None:
    """A form filler may post the completed response again (a retry, a reload): the same decision,
    one closing display item (que-2: a linkId once) and one determination (bugs: the closing
    item counted as a question asked, a 400; a second closing item or determination added)."""
    for (example, _), given in forms.items():
        completed = given[-1]
        again = client.post(NEXT, json=next_question_parameters(completed))
        assert again.status_code == 200, (example, again.text)
        answer = again.json()
        assert answer["status"] == "completed" and adaptive_response_problems(answer) == []
        [form], [before] = answer["contained"], completed["contained"]
        assert form["item"] == before["item"]
        assert unreceipted(answer["extension"]) == unreceipted(completed["extension"])
        # the decision made again has a receipt of its own, in place of the one posted back
        receipts = [e for e in answer["extension"] if e["url"] == "urn:llr-asp:receipt"]
        assert len(receipts) == 1 and receipts != [e for e in completed["extension"] if e in receipts]
        assert answer["item"] == completed.get("item", [])


def test_a_client_that_omits_unanswered_items_is_not_asked_again(
    client: TestClient, hip: dict[str, Any]
) -> None:
    """A question the contained form asked and the response leaves out is unknown, as an item
    without an answer is: never asked again (bug: it was asked again, for ever). Both shapes
    give the same next question."""
    first = client.post(NEXT, json=adaptive_start(f"{hip['url']}|{hip['version']}")).json()
    [form] = first["contained"]
    skipped = form["item"][-1]["linkId"]
    left_out = client.post(NEXT, json={**first, "item": []}).json()
    empty = client.post(NEXT, json={**first, "item": [{"linkId": skipped}]}).json()
    links = [i["linkId"] for i in left_out["contained"][0]["item"]]
    assert links[0] == skipped and links[-1] != skipped and len(links) == len(set(links)) == 2
    assert links == [i["linkId"] for i in empty["contained"][0]["item"]]


# -- issue 33: the extensions defined, a version's "+" sent unencoded ---------------------------


def test_every_extension_llr_asp_puts_on_a_response_is_defined_and_served(
    client: TestClient, forms: dict[Any, list[dict[str, Any]]]
) -> None:
    """Every `urn:llr-asp:` extension a completed form carries has a StructureDefinition (R4B
    valid, an Extension constrained to one Coding, context QuestionnaireResponse) served under
    /fhir/StructureDefinition/, found by its url, and named in the CapabilityStatement."""
    used = {
        e["url"]
        for given in forms.values()
        for e in given[-1].get("extension", [])
        if e["url"].startswith("urn:llr-asp:")
    }
    assert used == {
        "urn:llr-asp:determination",
        "urn:llr-asp:robustness",
        "urn:llr-asp:edition",
        "urn:llr-asp:receipt",
    }
    statement = client.get("/fhir/metadata").json()
    [listed] = [r for r in statement["rest"][0]["resource"] if r["type"] == "StructureDefinition"]
    for url in used:
        bundle = client.get("/fhir/StructureDefinition", params={"url": url}).json()
        assert fhir_problems(bundle) == [] and bundle["total"] == 1
        definition = bundle["entry"][0]["resource"]
        assert fhir_problems(definition) == [] and definition["url"] == url
        assert (
            definition["type"] == "Extension"
            and definition["context"][0]["expression"] == "QuestionnaireResponse"
        )
        [value] = [e for e in definition["differential"]["element"] if e["path"] == "Extension.value[x]"]
        carried = {e["url"]: e for given in forms.values() for e in given[-1].get("extension", [])}[url]
        assert [f"value{t['code'][0].upper()}{t['code'][1:]}" for t in value["type"]] == [
            k for k in carried if k.startswith("value")
        ]  # the value the definition allows is the one carried
        assert client.get(f"/fhir/StructureDefinition/{definition['id']}").json() == definition
        assert url in listed["documentation"]
        [fixed] = [e for e in definition["differential"]["element"] if e["path"] == "Extension.url"]
        assert fixed["fixedUri"] == url
    missing = client.get("/fhir/StructureDefinition/nothing")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_a_versioned_canonical_sent_unencoded_is_found(client: TestClient, hip: dict[str, Any]) -> None:
    """Medplum's client sends `url=…|0.1.0+rules.…` unencoded: the `+` arrives as a space."""
    for query in (f"url={hip['url']}|{hip['version']}", f"url={hip['url']}&version={hip['version']}"):
        bundle = client.get(f"/fhir/Questionnaire?{query}").json()
        assert [e["resource"]["id"] for e in bundle.get("entry", [])] == ["hip-resurfacing"], query


# -- issue 33: every answer checked against its item; the DTR app's and LHC-Forms' starts ------


@pytest.mark.parametrize(
    ("link", "answer"),
    [
        ("sex", {"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "male"}}),
        ("sex", {"valueString": "male"}),  # text for a coded item
        ("pain.severity", {"valueCoding": {"system": "urn:llr-asp:values:sex", "code": "Severe"}}),
        ("conservative.months", {"valueInteger": 6}),  # an integer for a decimal item
        ("msk.assessed", {"valueBoolean": True, "valueString": "yes"}),  # two values
        ("knee.compartments_affected", {"valueInteger": 1}),  # not a question of the hip form
    ],
)
def test_every_answer_is_checked_against_its_item_before_anything_is_decided(
    client: TestClient, hip: dict[str, Any], link: str, answer: dict[str, Any]
) -> None:
    """Issue 33: $next-question accepted and echoed answers its Questionnaire does not allow.
    400 with an OperationOutcome naming the item; nothing decided."""
    start = adaptive_start(f"{hip['url']}|{hip['version']}")
    start["item"] = [{"linkId": link, "answer": [answer]}]
    reply = client.post(NEXT, json=start)
    assert reply.status_code == 400, reply.text
    said = reply.json()["issue"][0]["diagnostics"]
    assert reply.json()["resourceType"] == "OperationOutcome" and f"linkId {link}" in said


def test_an_integer_answer_to_an_integer_item_and_a_whole_decimal_are_accepted(client: TestClient) -> None:
    """The other side: valueInteger for an integer item, a whole number as valueDecimal."""
    start = adaptive_start("urn:llr-asp:questionnaire:knee-resurfacing")
    start["item"] = [
        {"linkId": "knee.compartments_affected", "answer": [{"valueInteger": 1}]},
        {"linkId": "conservative.months", "answer": [{"valueDecimal": 6}]},
    ]
    assert client.post(NEXT, json=start).status_code == 200


def links(response: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The linkIds a response answers, and those of the form it holds."""
    [form] = [r for r in response["contained"] if f"#{r['id']}" == response["questionnaire"]]
    return {i["linkId"] for i in response.get("item", [])}, {i["linkId"] for i in form["item"]}


def test_a_prefilled_start_returns_a_form_holding_every_answered_item(
    client: TestClient, hip: dict[str, Any]
) -> None:
    """LHC-Forms starts with answers already filled (prepopulated): the returned form holds every
    answered item (LHC-Forms throws on an answer to an item the form lacks), then the next
    question; filled on, it completes as the same answers sent one at a time do."""
    start = adaptive_start(f"{hip['url']}|{hip['version']}")
    items = answer_items("route-c1-pain")
    start["item"] = [i for i in items if i["linkId"] in ("sex", "pain.severity", "conservative.months")]
    response = client.post(NEXT, json=start).json()
    answered_links, held = links(response)
    assert answered_links == {"sex", "pain.severity", "conservative.months"} and answered_links < held
    for _ in range(30):
        if response["status"] == "completed":
            break
        response = client.post(NEXT, json=answered(response, "route-c1-pain")).json()
        answered_links, held = links(response)
        assert answered_links <= held
    assert response["extension"][0]["valueCoding"]["code"] == "eligible"


@pytest.mark.parametrize("form", ["adaptive", "hip"])
def test_the_dtr_apps_first_call_sends_the_served_questionnaire_back(
    client: TestClient, request: pytest.FixtureRequest, form: str
) -> None:
    """The DTR app's first $next-question: the served Questionnaire contained as it came (its
    `url`, `version`, and items if it has any), the response naming it. It is the start of the
    adaptive form: derived from that canonical, no url of its own, one question asked (bug:
    refused with 400). The adaptive form is the one the card names; the full one, sent back by
    a form filler that was given it, starts the same way."""
    hip = request.getfixturevalue(form)
    served = dict(hip)
    start = {
        "resourceType": "QuestionnaireResponse",
        "contained": [served],
        "questionnaire": f"#{served['id']}",
        "status": "in-progress",
        "subject": {"reference": "Patient/123"},
    }
    for call in (start, {**start, "questionnaire": f"{hip['url']}|{hip['version']}"}):
        reply = client.post(NEXT, json=next_question_parameters(call))
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        [form] = answer["contained"]
        assert "url" not in form and form["derivedFrom"] == [f"{hip['url']}|{hip['version']}"]
        assert answer["status"] == "in-progress" and len(form["item"]) == 1
        assert adaptive_response_problems(answer) == []


def dtr_request(form: dict[str, Any], lhc_export: dict[str, Any] | None, patient: str) -> dict[str, Any]:
    """The body the Da Vinci DTR app sends to $next-question, as its buildNextQuestionRequest
    builds it (HL7-DaVinci/dtr src/util/retrieveQuestions.js): LHC-Forms' export of the form on
    screen (or a bare QuestionnaireResponse), the adaptive profile, in-progress, the form on
    screen as the one contained resource, named `#id`, and the subject."""
    body: dict[str, Any] = dict(lhc_export) if lhc_export else {"resourceType": "QuestionnaireResponse"}
    body["meta"] = {
        "profile": ["http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"]
    }
    body["status"] = "in-progress"
    body["contained"] = [form]
    body["questionnaire"] = f"#{form['id']}"
    body["subject"] = {"reference": patient}
    return body


def test_the_dtr_app_posts_next_question_to_the_adaptive_extensions_url_and_is_answered(
    client: TestClient, adaptive: dict[str, Any]
) -> None:
    """The DTR app POSTs each $next-question call to the questionnaireAdaptive extension's
    valueUrl itself (HL7-DaVinci/dtr src/components/QuestionnaireForm/QuestionnaireForm.jsx,
    loadNextQuestions: `url = adaptiveExtension.valueUrl; retrieveQuestions(url, …)`), where SDC
    has that URL the base of a server with $next-question: the base answers such a POST (a
    QuestionnaireResponse, never a batch Bundle) as $next-question. It then renders
    `result.contained[0]` and sends it back contained in its next call, with LHC's export."""
    [marked] = [e for e in adaptive["extension"] if e["url"].endswith("questionnaireAdaptive")]
    url = marked["valueUrl"]
    assert url == f"{BASE}/fhir"
    path = url.removeprefix(BASE)
    first = client.post(path, json=dtr_request(adaptive, None, "Patient/pat-1"))
    assert first.status_code == 200, first.text
    step = first.json()
    assert step["resourceType"] == "QuestionnaireResponse" and step["status"] == "in-progress"
    form = step["contained"][0]
    [asked] = form["item"]
    export = {  # what LHC-Forms' getFormFHIRData gives for the form with its question answered
        "resourceType": "QuestionnaireResponse",
        "meta": {"tag": [{"code": "lformsVersion: 40.1.3"}]},
        "status": "completed",
        "authored": "2026-01-01T00:00:00.000Z",
        "item": [{"linkId": asked["linkId"], "text": asked["text"], "answer": [asked["answerOption"][1]]}]
        if asked["type"] == "choice"
        else [{"linkId": asked["linkId"], "text": asked["text"], "answer": [{"valueBoolean": True}]}],
    }
    second = client.post(path, json=dtr_request(form, export, "Patient/pat-1"))
    assert second.status_code == 200, second.text
    assert len(second.json()["contained"][0]["item"]) == 2
    # a batch or transaction Bundle at the base is not $next-question: refused, said so
    batch = client.post(path, json={"resourceType": "Bundle", "type": "batch"})
    assert batch.status_code in (400, 405) and batch.json()["resourceType"] == "OperationOutcome"
