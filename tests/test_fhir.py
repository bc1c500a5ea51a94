"""FHIR R4: the Questionnaire derived from the rules validates against the R4B models of
fhir.resources, with item types and codes checked here (the models check no bindings); a
filled-in QuestionnaireResponse gives the same decision as the JSON record, on every example
and on random patients; a bad response is refused naming the item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from test_properties import RULES, partial_patients
from tiers import a_few, examples
from typer.testing import CliRunner

from llr_asp import InputError, validate
from llr_asp.cli import app
from llr_asp.core.documents import value_system
from llr_asp.core.patient import nested
from llr_asp.engines.interview import Interviewer
from llr_asp.formats.fhir import ITEM_TYPE, ITEM_WEIGHT, questionnaire
from llr_asp.views.questionnaire import with_value

R4B = pytest.importorskip("fhir.resources.R4B.questionnaire", reason="fhir.resources is not installed")
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Any:
    pytest.importorskip("fastapi", reason="the web extra is not installed")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    return TestClient(create_app())


EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
REASONER = Interviewer(RULES)  # a Reasoner that also asks (`llr-asp next`)
runner = CliRunner()


def response(values: dict[str, Any], rid: str = "qr-1") -> dict[str, Any]:
    """A QuestionnaireResponse answering `values` (dotted paths) as an EHR would fill it in."""
    items = []
    for path, field in RULES.fields.items():
        entry: dict[str, Any] = {"linkId": path, "text": field.question}
        if path in values and values[path] is not None:
            value = values[path]
            if field.type == "bool":
                entry["answer"] = [{"valueBoolean": value}]
            elif field.values:
                entry["answer"] = [{"valueCoding": {"system": value_system(path), "code": value}}]
            elif field.type == "integer":
                entry["answer"] = [{"valueInteger": value}]
            elif field.type == "date":
                entry["answer"] = [{"valueDate": value}]
            else:
                entry["answer"] = [{"valueDecimal": value}]
        items.append(entry)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": "urn:llr-asp:questionnaire:all",
        "status": "completed",
        "item": items,
    }


@pytest.mark.parametrize("policy", ["all", *RULES.policies])
def test_the_questionnaire_is_valid_r4_with_the_declared_items(policy: str) -> None:
    chosen = None if policy == "all" else RULES.policies[policy]
    resource = questionnaire(RULES, chosen)
    R4B.Questionnaire.model_validate(resource)  # raises on anything that is not R4
    fields = [f for f in RULES.fields.values() if chosen is None or f.path in chosen.fields()]
    assert [i["linkId"] for i in resource["item"]] == [f.path for f in fields]
    for entry, field in zip(resource["item"], fields):
        assert entry["type"] == ITEM_TYPE[field.type] and entry["text"] == field.question
        if field.type == "grade":  # options in rank order, with their rank (SDC 4: itemWeight)
            options = entry["answerOption"]
            assert [o["valueCoding"]["code"] for o in options] == list(field.values)
            assert [o["extension"][0] for o in options] == [
                {"url": ITEM_WEIGHT, "valueDecimal": n} for n in range(len(options))
            ]
    months = next(i for i in resource["item"] if i["linkId"] == "conservative.months")
    assert {
        "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
        "valueCoding": {"system": "http://unitsofmeasure.org", "code": "mo"},
    } in months["extension"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_a_response_gives_the_decision_of_the_record(path: Path) -> None:
    record = validate(json.loads(path.read_text()), RULES, str(path))
    resource = response(dict(record.values), rid=record.id)
    QuestionnaireResponse.model_validate(resource)
    from_fhir = validate(resource, RULES, "qr.json")
    assert from_fhir.values == record.values and from_fhir.id == record.id
    assert [d.to_json() for d in REASONER.decide(from_fhir)] == [d.to_json() for d in REASONER.decide(record)]


@settings(max_examples=examples(60), deadline=None)
@given(partial_patients())
def test_random_responses_round_trip(values: dict[str, Any]) -> None:
    patient = validate(response(values), RULES, "qr")
    assert dict(patient.values) == {k: v for k, v in values.items() if v is not None}


def test_explain_reads_a_response_from_a_file(tmp_path: Path) -> None:
    example = json.loads((EXAMPLES[0].parent / "route-c4-sfi.json").read_text())
    values = dict(validate(example, RULES, "x").values)
    qr = tmp_path / "qr.json"
    qr.write_text(json.dumps(response(values, "qr-c4")))
    result = runner.invoke(app, ["explain", str(qr), "-p", "hip-resurfacing", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["patient"], out["decision"]) == ("qr-c4", "eligible")


@pytest.mark.parametrize(
    ("item", "words"),
    [
        (
            {"linkId": "pain.sevrity", "answer": [{"valueString": "mild"}]},
            "item[0] (linkId pain.sevrity): not a field",
        ),
        (
            {"linkId": "sex", "answer": [{"valueBoolean": True}]},
            "item[0] (linkId sex): expected a valueCoding",
        ),
        ({"linkId": "conservative.months", "answer": [{"valueString": "six"}]}, "expected valueDecimal"),
        (
            {"linkId": "msk.assessed", "answer": [{"valueBoolean": True}, {"valueBoolean": False}]},
            "more than one answer",
        ),
        (
            {"linkId": "conservative.months", "answer": [{"valueDecimal": 5000}]},
            "conservative.months: expected a number from 0 to 1200",
        ),
    ],
)
def test_a_bad_response_is_refused_naming_the_item(item: dict[str, Any], words: str) -> None:
    resource = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [item]}
    with pytest.raises(InputError) as caught:
        validate(resource, RULES, "qr.json")
    assert words in str(caught.value) and str(caught.value).startswith("qr.json: ")


def test_the_cli_prints_the_questionnaire() -> None:
    result = runner.invoke(app, ["fhir", "questionnaire", "-p", "hip-resurfacing"])
    assert result.exit_code == 0
    resource = json.loads(result.stdout)
    assert resource["url"] == "urn:llr-asp:questionnaire:hip-resurfacing"
    assert resource["version"].endswith(f"+rules.{RULES.digest[:16]}")  # semver, the rules in its build part


def _answer(path: str, value: Any) -> dict[str, Any]:
    field = RULES.fields[path]
    if field.type == "bool":
        return {"valueBoolean": value}
    if field.values:
        return {"valueCoding": {"system": value_system(path), "code": value}}
    return {"valueInteger": value} if field.type == "integer" else {"valueDecimal": value}


def questions_of_next(values: dict[str, Any], policy: Any) -> list[str]:
    """The fields `llr-asp next` asks one after another, each answered from `values` (null, asked
    and unknown, where they do not say)."""
    document: dict[str, Any] = {}
    asked: list[str] = []
    while True:
        [step] = REASONER.next(validate(document, RULES, "next"), [policy])
        if step.question is None:
            return asked
        asked.append(step.question.field)
        document = with_value(document, step.question.field, values.get(step.question.field))


@pytest.mark.parametrize("example", ["route-c1-pain", "refused-hip-female", "undetermined-pain-unknown"])
@pytest.mark.parametrize("wrapped", [True, False])
def test_next_question_drives_the_adaptive_form_to_explains_decision(
    client: Any, example: str, wrapped: bool
) -> None:
    truth = validate(json.loads((EXAMPLES[0].parent / f"{example}.json").read_text()), RULES, example)
    [start] = REASONER.decide(validate({}, RULES, "blank"), [RULES.policies["hip-resurfacing"]])
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "in-progress",
        "item": [],
    }
    asked = []
    for _ in range(30):
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": resource}],
        }
        reply = client.post("/fhir/Questionnaire/$next-question", json=body if wrapped else resource)
        assert reply.status_code == 200, reply.text
        resource = reply.json()
        QuestionnaireResponse.model_validate(resource)
        [adapted] = resource["contained"]
        R4B.Questionnaire.model_validate(adapted)
        last = adapted["item"][-1]
        if resource["status"] == "completed":
            break
        asked.append(last["linkId"])
        value = truth.values.get(last["linkId"])
        entry: dict[str, Any] = {"linkId": last["linkId"]}
        if value is not None:
            entry["answer"] = [_answer(last["linkId"], value)]
        resource.setdefault("item", []).append(entry)  # FHIR JSON has no empty arrays: none until answered
    else:
        pytest.fail("the adaptive form did not complete")
    assert set(asked) <= set(start.missing) and len(asked) == len(set(asked))
    # what was asked, not only the decision: each question is the Questionnaire's own item (its
    # help text, answers and bounds: bug, an adaptive item without the caveats), in the order
    # `llr-asp next` asks them given the same answers (bug: another question chosen)
    policy = RULES.policies["hip-resurfacing"]
    items = {i["linkId"]: i for i in questionnaire(RULES, policy)["item"]}
    assert adapted["item"][:-1] == [items[link] for link in asked]
    assert asked == questions_of_next(truth.values, policy)
    known = {p: v for p, v in truth.values.items() if p in asked}
    [expected] = REASONER.decide(validate(nested(known), RULES, "known"), [RULES.policies["hip-resurfacing"]])
    codes = [e["valueCoding"]["code"] for e in resource["extension"] if e["url"] != "urn:llr-asp:receipt"]
    holds = "robust" if expected.robust else "contested"  # the doubt coded beside the decision
    edition = expected.policy.id  # and the edition that decided
    assert codes == [expected.decision, holds, edition] and last["type"] == "display"


@pytest.mark.parametrize("path", a_few(EXAMPLES[:8], 2, ids=lambda p: p.stem))
def test_explain_as_fhir_round_trips(path: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(path), "-f", "fhir"])
    assert result.exit_code == 0, result.stderr
    resource = json.loads(result.stdout)
    QuestionnaireResponse.model_validate(resource)
    again = tmp_path / "qr.json"
    again.write_text(result.stdout)
    first = json.loads(runner.invoke(app, ["explain", str(path), "-f", "json"]).stdout)
    second = json.loads(runner.invoke(app, ["explain", str(again), "-f", "json"]).stdout)
    assert second == first  # the same patient: answers, unknowns asked, decisions
    determinations = [e for e in resource["extension"] if e["url"] == "urn:llr-asp:determination"]
    holds = [e["valueCoding"]["code"] for e in resource["extension"] if e["url"] == "urn:llr-asp:robustness"]
    assert [e["valueCoding"]["code"] for e in determinations] == [d["decision"] for d in first]
    assert holds == ["robust" if d["robust"] else "contested" for d in first]  # the doubt, coded
    for extension, decision in zip(determinations, first):  # the display in words, as elsewhere
        display = extension["valueCoding"]["display"]
        assert display.startswith(f"{decision['reference']}: ") and "_" not in display


@pytest.mark.whole
@pytest.mark.parametrize("policy", ["hip-resurfacing", "knee-resurfacing"])
def test_explain_as_fhir_answers_only_the_items_of_its_questionnaire(policy: str) -> None:
    """Issue 33: the Java validator's "linkId not found": a hip response carried the knee's
    compartments, a knee response the sex. Every answer is to an item of the form the response
    names, and read back the response decides as the record does."""
    form = questionnaire(RULES, RULES.policies[policy])
    links = {i["linkId"] for i in form["item"]}
    for example in EXAMPLES:
        result = runner.invoke(app, ["explain", str(example), "--policy", policy, "--format", "fhir"])
        assert result.exit_code == 0, result.output
        made = json.loads(result.stdout)
        assert made["questionnaire"] == form["url"]
        assert {i["linkId"] for i in made["item"]} <= links, example.name
        record = json.loads(example.read_text())
        [again] = REASONER.decide(validate(made, RULES, "fhir"), [RULES.policies[policy]])
        [direct] = REASONER.decide(validate(record, RULES, "record"), [RULES.policies[policy]])
        assert again.decision == direct.decision, example.name
    assert ("sex" in links) == (policy == "hip-resurfacing")
    assert any("compartments" in link for link in links) == (policy == "knee-resurfacing")


@pytest.mark.parametrize(
    ("questionnaire", "family"),
    [
        ("urn:llr-asp:questionnaire:hip-resurfacing-adaptive", "hip-resurfacing"),
        ("urn:llr-asp:questionnaire:knee-resurfacing-adaptive|0.1.0+rules.abc", "knee-resurfacing"),
        ("urn:llr-asp:questionnaire:hip-resurfacing", "hip-resurfacing"),
    ],
)
def test_answers_to_the_adaptive_form_are_answers_for_its_policy(questionnaire: str, family: str) -> None:
    """Issue 33: the DTR app stores a completed adaptive response under the canonical its launch
    named (the adaptive form's, QuestionnaireForm.jsx getQuestionnaireResponse): its answers
    are for that policy alone, as the full form's are (asked for the other joint: refused)."""
    from llr_asp.core.documents import for_procedure, procedure_of

    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": "completed",
        "item": [{"linkId": "msk.assessed", "answer": [{"valueBoolean": True}]}],
    }
    assert procedure_of(response) == family
    patient = validate(response, RULES, "response")
    assert patient.answers_for == family
    other = next(p for p in RULES.policies.values() if p.family != family)
    with pytest.raises(InputError, match="never used for"):
        for_procedure(patient, [other], every=False)
