"""Safe at the seams (issue 32): every fact knows its source; sources that disagree are a
conflict, named and asked, never one silently winning; answers are used only for their own
procedure, the newest first; a partial prefetch still gets a card."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")

import test_cds_hooks
from artefacts import answer_items
from fastapi.testclient import TestClient
from test_cds_hooks import auth, call

from llr_asp import Reasoner, load_rules, validate
from llr_asp.core.sources import Stated, settle
from llr_asp.engines.interview import Interviewer

folder, client = test_cds_hooks.folder, test_cds_hooks.client  # the service, as its CDS tests run it
EXAMPLE = Path(__file__).parent.parent / "examples" / "route-c1-pain.json"
RULES = load_rules()
HIP = "/cds-services/hip-resurfacing"
FORM, EHR = "the ARP 55 answers", "the EHR (administrative gender)"


# -- the rules of the sources (asp/sources.lp), as a table ---------------------------------------
SOURCES = [
    # (what each source states, settled values, conflicting fields, fields the EHR filled)
    ([("sex", "female", "answer"), ("sex", "male", "administrative")], {}, {"sex"}, set()),
    ([("sex", "female", "answer"), ("sex", "female", "administrative")], {"sex": "female"}, set(), set()),
    ([("sex", "male", "administrative")], {"sex": "male"}, set(), {"sex"}),
    # sex for clinical use is preferred to the administrative gender, not a conflict with it
    ([("sex", "female", "clinical"), ("sex", "male", "administrative")], {"sex": "female"}, set(), {"sex"}),
    # a sex for clinical use given as no simple value silences the administrative gender
    ([("sex", None, "clinical"), ("sex", "male", "administrative")], {}, set(), set()),
    # ... and conflicts with a clinician's answer all the same
    ([("sex", "male", "answer"), ("sex", "female", "clinical")], {}, {"sex"}, set()),
    # a sex for clinical use that is no simple value ("specified", "unknown") puts the answer in
    # doubt: asked, never the answer alone deciding (eighth review)
    ([("sex", "male", "answer"), ("sex", None, "clinical")], {}, {"sex"}, set()),
    # 6 and 6.0 are one value; true is not 1
    (
        [("conservative.months", 6, "answer"), ("conservative.months", 6.0, "clinical")],
        {"conservative.months": 6},
        set(),
        set(),
    ),
    ([("msk.assessed", True, "answer"), ("msk.assessed", 1, "clinical")], {}, {"msk.assessed"}, set()),
    # an answer the form filler prefilled from the EHR is not a clinician's: filled, to confirm
    ([("sex", "male", "prefilled")], {"sex": "male"}, set(), {"sex"}),
    ([("sex", "male", "prefilled"), ("sex", "female", "administrative")], {}, {"sex"}, set()),
    # an answer about a joint on the form for every procedure: to confirm, unless this procedure's
    # own answers give it too (twelfth review, M9)
    ([("pain.severity", "severe", "shared")], {"pain.severity": "severe"}, set(), {"pain.severity"}),
    (
        [("pain.severity", "severe", "shared"), ("pain.severity", "severe", "answer")],
        {"pain.severity": "severe"},
        set(),
        set(),
    ),
]


@pytest.mark.parametrize(("stated", "values", "conflicts", "filled"), SOURCES)
def test_sources_settle_as_the_rules_say(
    stated: list[tuple[str, Any, str]], values: dict[str, Any], conflicts: set[str], filled: set[str]
) -> None:
    settled = settle([Stated(f, v, f"source {n}", kind) for n, (f, v, kind) in enumerate(stated)])
    assert settled.values == values
    assert {c.field for c in settled.conflicts} == conflicts
    assert {s.field for s in settled.filled} == filled


# -- hazard 1: the EHR's administrative gender never overrides the clinician's answer ------------
def with_sex(example: str, answered: str, gender: str) -> dict[str, Any]:
    body = call(example, gender)
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]  # the form's one answer
    response["item"].append({"linkId": "sex", "answer": [{"valueCoding": {"code": answered}}]})
    response["authored"] = "2026-11-02T10:00:00Z"
    return body


def without_sex(example: str, gender: str | None, months: float | None = None) -> dict[str, Any]:
    """A call for `example` whose form leaves the sex unanswered (the EHR's Patient gives
    `gender`), with `months` of conservative care where given."""
    body = call(example, gender)
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    for item in response["item"]:
        if months is not None and item["linkId"] == "conservative.months":
            item["answer"] = [{"valueDecimal": months}]
    return body


def test_a_conflicting_sex_is_never_eligible_and_is_named(client: TestClient) -> None:
    [card] = client.post(HIP, json=with_sex("route-c1-pain", "female", "male"), headers=auth(HIP)).json()[
        "cards"
    ]
    extension = card["extension"]
    assert card["indicator"] == "warning" and extension["llr-asp.decision"] != "eligible"
    assert extension["llr-asp.robust"] is False and "eligible" in extension["llr-asp.possible"]
    assert card["summary"].startswith("Sources disagree on sex")
    assert extension["llr-asp.conflicts"] == [
        {
            "field": "sex",
            "values": [
                {"value": "female", "source": FORM, "date": "2026-11-02T10:00:00Z"},
                {"value": "male", "source": EHR},
            ],
        }
    ]
    assert "female" in card["detail"] and "male" in card["detail"] and "Which is right" in card["detail"]


def test_agreeing_sources_decide_plainly(client: TestClient) -> None:
    [card] = client.post(HIP, json=with_sex("route-c1-pain", "male", "male"), headers=auth(HIP)).json()[
        "cards"
    ]
    assert card["summary"] == "Meets ARP 55 criteria" and "llr-asp.conflicts" not in card["extension"]


def test_sex_for_clinical_use_is_preferred_to_administrative_gender(client: TestClient) -> None:
    body = call("route-c1-pain", "female")  # administrative gender female; no answer for sex
    body["prefetch"]["patient"]["extension"] = [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse",
            "extension": [
                {
                    "url": "value",
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/sex-parameter-for-clinical-use",
                                "code": "male-typical",
                            }
                        ]
                    },
                }
            ],
        }
    ]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    # preferred, yet the EHR's: to confirm for this referral, as the same value pre-filled into the
    # form is (sixteenth review, MEDIUM: it read a plain 'Meets', robust, for a procedure
    # contra-indicated in women, while the EHR's administrative gender said female)
    assert card["summary"] == "Sex from the EHR (sex for clinical use): confirm. Meets ARP 55 criteria"
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.robust"] is False
    assert "sex for clinical use" in card["detail"]  # the EHR's value is named as such


def test_a_conflict_is_asked_first_and_robustness_is_lost() -> None:
    patient = validate(json.loads(EXAMPLE.read_text()), RULES, "t")
    stated = [Stated("sex", "female", FORM, "answer"), Stated("sex", "male", EHR, "administrative")]
    settled = settle(stated)
    values = {k: v for k, v in patient.values.items() if k != "sex"}
    patient = dataclasses.replace(patient, values=values, conflicts=settled.conflicts)
    [step] = Interviewer(RULES).next(patient, [RULES.policies["hip-resurfacing"]])
    assert step.question is not None and step.question.field == "sex"
    assert not step.decision.robust and set(step.decision.possible) >= {"eligible", "not_eligible"}
    assert step.decision.to_json()["conflicts"][0]["field"] == "sex"


# -- hazard 2: a hip order is never decided from the knee questionnaire's answers ----------------
def test_answers_for_another_procedure_are_set_aside(client: TestClient) -> None:
    body = call("route-c1-pain", "male")
    body["prefetch"]["answers"]["entry"][0]["resource"]["questionnaire"] = (
        "urn:llr-asp:questionnaire:knee-resurfacing"
    )
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "undetermined"  # not "eligible" from knee answers
    assert card["summary"] == (  # twenty-fourth review, L6: found, and set aside: never 'no answers found'
        "ARP 55: the answers found are on another procedure's form, set aside; answer the ARP 55 questions"
    )
    assert card["indicator"] == "warning"
    assert "ARP 60" in card["detail"] and "set aside" in card["detail"]


@pytest.mark.parametrize("compartments", [None, 3])
def test_the_shared_questionnaires_answers_are_used_to_confirm(
    client: TestClient, compartments: int | None
) -> None:
    """Twelfth review, M9: the form for every procedure (`all`) decided a hip order a plain info
    'Meets ARP 55 criteria', robust, though it answered knee.compartments_affected = 3: nothing
    said its pain, function and radiology may be about another joint. Its answers are used, as
    answers to confirm (asp/sources.lp `shared`): named, a warning, never robust on them; its
    facts about the patient (the sex) are the clinician's answers."""
    body = call("route-c1-pain", "male")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["questionnaire"] = "urn:llr-asp:questionnaire:all"
    if compartments is not None:
        response["item"] = [i for i in response["item"] if i["linkId"] != "knee.compartments_affected"]
        response["item"].append({"linkId": "knee.compartments_affected", "answer": [{"valueInteger": 3}]})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "eligible"
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.robust"] is False, card["summary"]
    assert card["summary"] != "Meets ARP 55 criteria" and "form for every procedure" in card["summary"]
    # grouped by source, so the verdict is never cut off (the fields are in the detail)
    assert re.match(
        r"\d+ answers from the .*form for every procedure.*: confirm\. Meets ARP 55 criteria$",
        card["summary"],
    ), card["summary"]
    assert "form for every procedure" in card["detail"] and "another joint" in card["detail"]
    assert "it may be about another joint" in card["detail"]  # each value named so
    filled = {f["field"] for f in card["extension"]["llr-asp.filled"]}
    assert "pain.severity" in filled and "sex" not in filled


# -- hazard 3: the newest answers decide, whatever order the server returned them in -------------
@pytest.mark.parametrize("newest_first", [True, False])
def test_the_newest_answers_decide(client: TestClient, newest_first: bool) -> None:
    body = call("route-c1-pain", "male")
    new = body["prefetch"]["answers"]["entry"][0]["resource"]
    new["authored"] = "2026-11-20T09:00:00+00:00"
    old = copy.deepcopy(new)
    old["authored"] = "2026-01-05T09:00:00+00:00"
    old["item"] = [i for i in old["item"] if i["linkId"] != "pain.severity"] + [
        {"linkId": "pain.severity", "answer": [{"valueCoding": {"code": "mild"}}]}
    ]
    entries = [{"resource": new}, {"resource": old}]
    body["prefetch"]["answers"]["entry"] = entries if newest_first else entries[::-1]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == "Meets ARP 55 criteria"
    assert "given on 2026-11-20" in card["detail"]


# -- hazard 4: a partial prefetch gets a card ----------------------------------------------------
def test_a_patient_alone_settles_what_it_can(client: TestClient) -> None:
    body = call(None, "female")
    body["prefetch"] = {"patient": body["prefetch"]["patient"]}  # a Patient alone
    body["hook"] = "order-sign"
    body["context"].pop("selections")
    body["fhirServer"] = "https://127.0.0.1:9/fhir"  # nothing listens: the answers cannot be fetched
    body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "scope": "x", "subject": "s"}
    reply = client.post(HIP, json=body, headers=auth(HIP))
    assert reply.status_code == 200, reply.text
    [card] = reply.json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "not_eligible"
    assert card["extension"]["llr-asp.robust"] is False  # on the administrative gender alone: to confirm
    assert "could not give" in card["detail"]


def test_nothing_supplied_and_nothing_fetched_is_412(client: TestClient) -> None:
    body = call(None, None)
    body["prefetch"] = {}
    body["fhirServer"] = "https://127.0.0.1:9/fhir"
    body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "scope": "x", "subject": "s"}
    assert client.post(HIP, json=body, headers=auth(HIP)).status_code == 412


def test_explain_names_no_conflict_for_one_source() -> None:
    [decision] = Reasoner(RULES).decide(
        validate({"sex": "female"}, RULES, "t"), [RULES.policies["hip-resurfacing"]]
    )
    assert decision.to_json()["conflicts"] == [] and decision.robust


# -- item 4: urgency from the patient, whatever the readings --------------------------------------
C6 = json.loads((EXAMPLE.parent / "route-c6-destruction-risk.json").read_text())
C5 = json.loads((EXAMPLE.parent / "route-c5-independence.json").read_text())


def changed(document: dict[str, Any], **paths: Any) -> dict[str, Any]:
    """`document` (an example: its `meta` left out) with `group__name=value` changed."""
    changed = copy.deepcopy(document)
    changed.pop("meta", None)
    for path, value in paths.items():
        *groups, name = path.split("__")
        node = changed
        for group in groups:
            node = node[group]
        node[name] = value
    return changed


URGENCY = [
    # (record, policy, the route, what to do); each branch of urgent_route
    (changed(C6), "hip-resurfacing", "C6", "refer"),
    (changed(C6, sex="female"), "hip-resurfacing", "C6", "unsuitable"),
    (changed(C6, sex=None), "hip-resurfacing", "C6", "confirm"),  # was: no urgency at all
    (
        changed(C6, sex=None, conservative__months=2),
        "hip-resurfacing",
        "C6",
        "confirm",
    ),  # was: "do not delay"
    (
        changed(C6, knee__compartments_affected=None, conservative__months=2),
        "knee-resurfacing",
        "C6",
        "confirm",
    ),
    (changed(C6, knee__compartments_affected=3), "knee-resurfacing", "C6", "unsuitable"),
    (changed(C6, conservative__months=2), "hip-resurfacing", "C6", "ask"),
    (changed(C6, conservative__months=None), "hip-resurfacing", "C6", "ask"),
    (changed(C6, msk__assessed=None), "hip-resurfacing", "C6", "assess"),  # review N6: MSK first
    (changed(C6, msk__assessed=False, conservative__months=2), "hip-resurfacing", "C6", "assess"),
    (changed(C5, msk__assessed=False), "hip-resurfacing", "C5", "assess"),
    (changed(C6, msk__end_stage_oa=None), "hip-resurfacing", "C6", "settle"),
    # ninth review: MSK found no end-stage disease: refused under every reading, never "do not delay"
    (changed(C6, msk__end_stage_oa=False, conservative__months=2), "hip-resurfacing", "C6", "refused"),
    (changed(C6, msk__suitable_for_surgical_referral=False), "knee-resurfacing", "C6", "refused"),
    (changed(C5), "hip-resurfacing", "C5", "ask"),
    (changed(C5, independence__immediate_danger=None), "hip-resurfacing", "C5", "find out"),
    (changed(C5, independence__immediate_danger=False), "hip-resurfacing", None, None),
]


@pytest.mark.parametrize(("record", "policy", "route", "advice"), URGENCY)
def test_urgency_follows_the_patient(
    record: dict[str, Any], policy: str, route: str | None, advice: str | None
) -> None:
    from llr_asp.views.wording import urgent_note, urgent_route

    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies[policy]])
    found = urgent_route(decision)
    assert ((found[0].id, found[1]) if found else (None, None)) == (route, advice)
    note = urgent_note(decision) or ""
    if advice == "confirm":  # never "do not delay the referral" for a procedure that may not suit
        assert "do not delay" not in note and "first confirm the procedure suits the patient" in note
        assert ("female" in note.lower()) if policy == "hip-resurfacing" else ("compartment" in note)
    if advice == "assess":  # the assessment first, never "ask the ICB now" past it
        assert "first, now: assessed by Musculoskeletal Services" in note and "ask the ICB now" not in note
    if advice == "refused":  # the MSK findings refuse it: never "ask the ICB now; do not delay"
        assert "is not met under any reading" in note and "do not delay" not in note
        assert "ask the ICB now" not in note and decision.to_json()["urgent"]["action"] == "refused"


# -- item 5: what-if that is safe across readings -------------------------------------------------
@pytest.fixture(scope="module")
def whatif_of() -> Any:
    from llr_asp.engines.whatif import WhatIfSearch, whatif

    reasoner, search = Reasoner(RULES), WhatIfSearch.load()
    return lambda record, policy="hip-resurfacing": whatif(
        reasoner, search, validate(record, RULES, "t"), RULES.policies[policy], limit=20
    )


def said(answer: Any) -> str:
    from rich.console import Console

    from llr_asp.views.terminal import whatif_view

    console = Console(width=200, record=True, no_color=True)
    console.print(whatif_view(answer, RULES))
    return " ".join(console.export_text().split())


def test_an_urgent_patient_is_never_offered_more_care(whatif_of: Any) -> None:
    answer = whatif_of(changed(C6, conservative__months=2))  # was: "from 2 months to 6 months"
    assert answer.withheld == "C6"
    assert not any(c.field.startswith("conservative.") for s in answer.counterfactuals for c in s)
    text = said(answer)
    assert "Meets an urgent route (C6" in text and "no change that waits for more conservative care" in text
    assert "6 months" not in text
    assert answer.to_json()["withheld"]["route"] == "C6"


def test_a_failed_contraindication_is_named_first(whatif_of: Any) -> None:
    answer = whatif_of(changed(C5, sex="female"))  # was: blocked at B.months, her sex never named
    assert answer.blocker is not None and answer.blocker.requirement == "no_contraindication"
    assert answer.counterfactuals == () and answer.blocker.fixed == (("sex", "female"),)
    assert said(answer).startswith(
        "Policy for Hip Resurfacing (ARP 55): NOT ELIGIBLE This procedure is not for"
    )
    knee = whatif_of(changed(C6, knee__compartments_affected=3, conservative__months=2), "knee-resurfacing")
    assert knee.blocker is not None and knee.blocker.requirement == "compartments"


def test_a_missing_assessment_is_named_as_the_step(whatif_of: Any) -> None:
    answer = whatif_of(changed(C5, msk__assessed=False))  # care contra-indicated: no full set
    assert [(c.field, c.after) for c in answer.steps] == [("msk.assessed", True)]
    assert "Meanwhile, a step you can take: assessed by MSK Services" in said(answer)


def test_no_change_can_is_said_only_of_the_adopted_reading(whatif_of: Any) -> None:
    """Review N7: what-if searches the adopted reading; a change under another reading could still
    fund (an unassessed C5 patient, assessed, is eligible under C5.route): never 'under any reading'."""
    contested = whatif_of(changed(C5))  # the C5.route reading would fund her now
    assert contested.blocker is not None and not contested.robust
    text = said(contested)
    assert "Under the adopted reading no change to the record can make the patient eligible" in text
    assert "Another reading of the policy decides otherwise (see below): ask the ICB" in text
    assert "under any reading" not in text
    unassessed = whatif_of(changed(C5, msk__assessed=False))
    text = said(unassessed)
    assert (
        "under any reading" not in text and "Meanwhile, a step you can take: assessed by MSK Services" in text
    )
    assert unassessed.advice == "assess" and "first give the care the policy asks" in text  # review N8


# -- the second review's findings at the same seams ------------------------------------------------
def two_responses(
    newer: dict[str, Any], older: dict[str, Any], example: str = "route-c1-pain"
) -> dict[str, Any]:
    body = call(example, "male")
    base = body["prefetch"]["answers"]["entry"][0]["resource"]
    responses = []
    for changes, authored in ((newer, "2026-11-01T09:00:00Z"), (older, "2026-06-01T09:00:00Z")):
        response = copy.deepcopy(base) | {"authored": authored}
        items = {i["linkId"]: i for i in response["item"]}
        for link, answer in changes.items():
            if answer is None:
                items.pop(link, None)
            else:
                items[link] = {"linkId": link, "answer": [answer]}
        response["item"] = list(items.values())
        responses.append({"resource": response})
    body["prefetch"]["answers"]["entry"] = responses
    return body


def test_an_earlier_answer_about_a_fact_is_kept_by_a_newer_form_that_leaves_it_blank(
    client: TestClient,
) -> None:
    """Review N1: June's form answered female; November's leaves sex blank; the EHR records male.
    Was: 'Meets ARP 55 criteria', sex 'from the EHR; no answer gave it'."""
    female = {"valueCoding": {"code": "female"}}
    body = two_responses({"sex": None}, {"sex": female})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on sex") and card["indicator"] == "warning"
    said = card["extension"]["llr-asp.conflicts"][0]["values"]
    assert [(v["value"], v.get("date")) for v in said] == [("female", "2026-06-01T09:00:00Z"), ("male", None)]


def test_a_retracted_response_never_decides(client: TestClient) -> None:
    """Review N2: the newest response is entered-in-error (and would fund); the valid older one
    refuses. Was: 'Meets ARP 55 criteria' from the voided form."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({}, {"pain.severity": mild})
    body["prefetch"]["answers"]["entry"][0]["resource"]["status"] = "entered-in-error"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "not_eligible"
    assert "given on 2026-06-01" in card["detail"]


@pytest.mark.parametrize("questionnaire", [None, "http://ehr.example/Questionnaire/knee-resurfacing-llr"])
def test_a_response_that_names_no_llr_asp_form_is_set_aside(
    client: TestClient, questionnaire: str | None
) -> None:
    """Review N4: a response without llr-asp's canonical may be another joint's form."""
    body = call("route-c1-pain", "male")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response.pop("questionnaire")
    if questionnaire is not None:
        response["questionnaire"] = questionnaire
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] != "eligible" and "set aside" in card["detail"]


@pytest.mark.parametrize("code", ["specified", "unknown"])
def test_a_sex_for_clinical_use_that_is_not_simple_is_asked(client: TestClient, code: str) -> None:
    """Review N5: administrative gender male, sex for clinical use 'specified': sex is asked,
    never taken from the administrative record. Was: 'Meets ARP 55 criteria', robust."""
    body = call("route-c1-pain", "male")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]  # the form leaves it blank
    body["prefetch"]["patient"]["extension"] = [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse",
            "extension": [{"url": "value", "valueCodeableConcept": {"coding": [{"code": code}]}}],
        }
    ]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "undetermined"
    assert card["extension"]["llr-asp.missing"] == ["sex"]


# -- review N3: another procedure's answers never decide, on any surface --------------------------
def knee_response() -> dict[str, Any]:
    from llr_asp.formats.fhir import decision_response

    patient = validate(json.loads(EXAMPLE.read_text()), RULES, "t")
    knee = RULES.policies["knee-resurfacing"]
    [decision] = Reasoner(RULES).decide(patient, [knee])
    return decision_response(patient, [decision], RULES)  # a QuestionnaireResponse for the knee's form


def test_a_knee_form_never_decides_hip_on_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llr_asp.cli import app

    path = tmp_path / "knee-answers.json"
    path.write_text(json.dumps(knee_response()))
    runner = CliRunner()
    refused = runner.invoke(app, ["explain", str(path), "--policy", "hip-resurfacing"])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert (
        "given for the knee-resurfacing questionnaire" in refused.stderr and "Traceback" not in refused.stderr
    )
    every = runner.invoke(app, ["explain", str(path), "--policy", "all", "-f", "json"])
    assert every.exit_code == 0, every.stderr
    assert json.loads(every.stdout)["policy"] == "knee-resurfacing"  # one object: its own policy only


def test_a_knee_form_never_decides_hip_in_a_batch(tmp_path: Path) -> None:
    from llr_asp.engines.batch import LineError, iterate_decisions

    response = knee_response()
    hip = list(iterate_decisions([response], policy="hip-resurfacing"))
    assert (
        len(hip) == 1 and isinstance(hip[0], LineError) and "knee-resurfacing questionnaire" in hip[0].error
    )
    every = list(iterate_decisions([response], policy="all"))
    assert [r.to_json()["policy"] for r in every] == ["knee-resurfacing"]


def test_a_knee_form_never_decides_hip_through_the_api(client: TestClient) -> None:
    reply = client.post("/api/v1/explain?policy=hip-resurfacing", json=knee_response())
    assert reply.status_code == 422 and "knee-resurfacing questionnaire" in reply.json()["error"]


def test_a_decision_resting_on_administrative_gender_says_so(client: TestClient) -> None:
    """Review N9: no sex answered, Patient.gender male: the card says the sex came from the
    administrative record, warns, and codes it (llr-asp.filled)."""
    body = without_sex("route-c1-pain", "male")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == "Sex from the EHR (administrative gender): confirm. Meets ARP 55 criteria"
    assert card["indicator"] == "warning"
    assert card["extension"]["llr-asp.filled"] == [
        {"field": "sex", "value": "male", "source": "the EHR (administrative gender)"}
    ]


def test_an_urgent_card_is_never_info_unless_it_refers(client: TestClient) -> None:
    """Review LOW: 'Urgent (C6): confirm…' shown as info."""
    body = without_sex("route-c6-destruction-risk", None)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]  # no sex anywhere
    assert card["summary"].startswith("Urgent (C6): confirm") and card["indicator"] == "warning"


def disputed(record: dict[str, Any], field: str) -> Any:
    """`record`'s patient with `field` given two values by two sources: yes on the form, no in
    the EHR (a conflict: unknown for the decision)."""
    stated = [Stated(field, True, FORM, "answer"), Stated(field, False, "the EHR", "clinical")]
    return dataclasses.replace(validate(record, RULES, "t"), conflicts=settle(stated).conflicts)


def test_a_conflict_that_could_settle_a_reading_is_asked_first_naming_the_sources() -> None:
    """A field the adopted reading does not need but another reading does (to_settle: C5's
    'replacement would relieve' for a C5 patient short of care, under C5.route), given two values
    by two sources: disputed all the same, asked first with what each source says."""
    patient = disputed(
        changed(C5, independence__replacement_would_relieve=None), "independence.replacement_would_relieve"
    )
    [step] = Interviewer(RULES).next(patient, [RULES.policies["hip-resurfacing"]])
    decision = step.decision
    assert decision.missing == () and "independence.replacement_would_relieve" in decision.to_settle
    assert [c.field for c in decision.disputed] == ["independence.replacement_would_relieve"]
    assert step.question is not None and step.question.field == "independence.replacement_would_relieve"
    assert step.question.caveats[0].startswith("The sources disagree (the ARP 55 answers: yes")


def test_care_an_urgent_route_says_not_to_wait_for_is_never_the_step(whatif_of: Any) -> None:
    """A C6 patient with care short and undocumented: documenting more conservative care is care a
    clinician could give, but it is what C6 says not to wait for: neither the step nor 'first, now'."""
    record = changed(C6, conservative__months=2, conservative__documented=False)
    answer = whatif_of(record)
    assert answer.withheld == "C6" and not any(c.field.startswith("conservative.") for c in answer.steps)
    from llr_asp.core.urgency import urgent_route

    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert urgent_route(decision) is not None and urgent_route(decision)[1] == "ask"


def test_a_contested_determination_is_coded_as_such() -> None:
    """Item 6: an EHR that keeps the determination's code keeps the doubt beside it."""
    from llr_asp.formats.fhir import determination

    contested = json.loads((EXAMPLE.parent / "route-c4-sfi.json").read_text())
    [decision] = Reasoner(RULES).decide(validate(contested, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.contested and not decision.disputed
    coded = {e["url"]: e["valueCoding"]["code"] for e in determination(decision)}
    assert coded == {
        "urn:llr-asp:determination": decision.decision,
        "urn:llr-asp:robustness": "contested",
        "urn:llr-asp:edition": "hip-resurfacing",
    }


# -- the third review's findings -----------------------------------------------------------------
@pytest.mark.parametrize("status", ["entered-in-error", "stopped"])
def test_a_retracted_response_is_never_decided_anywhere(
    client: TestClient, tmp_path: Path, status: str
) -> None:
    """Third review, HIGH: a voided form gave a certain ELIGIBLE on the API, CLI, batch and page."""
    from typer.testing import CliRunner

    from llr_asp.cli import app
    from llr_asp.engines.batch import LineError, iterate_decisions

    response = knee_response() | {"status": status}
    reply = client.post("/api/v1/explain", json=response)
    assert reply.status_code == 422 and status in reply.json()["error"]
    path = tmp_path / "void.json"
    path.write_text(json.dumps(response))
    refused = CliRunner().invoke(app, ["explain", str(path)])
    assert refused.exit_code == 2 and "never decided from" in refused.stderr
    [line] = list(iterate_decisions([response]))
    assert isinstance(line, LineError) and status in line.error


def test_a_draft_never_outranks_a_finished_form(client: TestClient) -> None:
    """Third review, MEDIUM: a newer in-progress form funded over an older completed refusal."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({}, {"pain.severity": mild})
    body["prefetch"]["answers"]["entry"][0]["resource"]["status"] = "in-progress"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "not_eligible" and "given on 2026-06-01" in card["detail"]


def test_an_urgent_card_never_urges_on_administrative_sex_alone(client: TestClient) -> None:
    """Third review, MEDIUM: C6, care short, no sex answered, Patient.gender male: was 'Urgent (C6):
    ask the ICB now'; the procedure is contra-indicated in women, so confirm the sex first."""
    body = without_sex("route-c6-destruction-risk", "male", months=2)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Urgent (C6): confirm the procedure suits the patient first")
    assert "known only from the EHR (administrative gender)" in card["detail"]
    assert "do not delay the referral" not in card["detail"]


def test_a_form_that_names_no_llr_asp_questionnaire_is_said_so(client: TestClient) -> None:
    """Third review, LOW: the card said 'Answers given for unnamed were set aside'."""
    body = call("route-c1-pain", "male")
    body["prefetch"]["answers"]["entry"][0]["resource"]["questionnaire"] = (
        "http://ehr.example/Questionnaire/x"
    )
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert "unnamed" not in card["detail"] and "does not name llr-asp's questionnaire" in card["detail"]
    assert card["summary"].startswith("ARP 55: the answers found are on a form for another questionnaire")


@pytest.mark.parametrize("second", ["2026-11-01T09:00:00Z", "2026-11-01"])
@pytest.mark.parametrize("newest_first", [True, False])
def test_two_forms_as_new_as_each_other_that_disagree_are_a_conflict(
    client: TestClient, second: str, newest_first: bool
) -> None:
    """Fourth review, MEDIUM: two finished forms authored at the same time (or the same day, one
    giving a date only) were decided by the server's order. Both now give every answer; where
    they disagree it is a conflict, whatever the order."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({}, {"pain.severity": mild})
    entries = body["prefetch"]["answers"]["entry"]
    entries[1]["resource"]["authored"] = second
    if not newest_first:
        entries.reverse()
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on pain") and card["indicator"] == "warning"
    assert card["extension"]["llr-asp.decision"] != "eligible"


# -- the fifth review's findings -----------------------------------------------------------------
def test_a_form_answering_a_question_twice_differently_is_never_decided(client: TestClient) -> None:
    """Fifth review, HIGH: a hip form answering sex female, then male, was decided from the last
    answer (ELIGIBLE, robust) on every surface. One form contradicting itself is refused: exit 2
    and 422 naming the item, a card saying nothing was decided."""
    body = without_sex("route-c1-pain", "male")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    sexes = [{"linkId": "sex", "answer": [{"valueCoding": {"code": code}}]} for code in ("female", "male")]
    response["item"] += sexes
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == "ARP 55: not checked, the answers cannot be read" and "extension" not in card
    assert 'answers sex again, differently ("female" before, "male" here)' in card["detail"]
    alone = {**response, "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing"}
    refused = client.post("/api/v1/explain?policy=hip-resurfacing", json=alone)
    assert refused.status_code == 422 and "linkId sex" in refused.json()["error"]
    # the same answer twice is no contradiction
    response["item"][-2] = response["item"][-1]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == "Meets ARP 55 criteria"


@pytest.mark.parametrize(
    ("quantity", "refused"),
    [
        ({"value": 10, "system": "http://unitsofmeasure.org", "code": "wk"}, "not in 'wk'"),
        ({"value": 30, "unit": "d"}, "not in 'd'"),
        ({"value": 10}, "not without a unit"),
        ({"value": 10, "system": "http://unitsofmeasure.org", "code": "mo"}, None),
    ],
)
def test_months_given_as_a_quantity_must_be_months(quantity: dict[str, Any], refused: str | None) -> None:
    """Fifth review, HIGH: 10 weeks of care sent as a Quantity were read as 10 months (ELIGIBLE;
    the letter certified "10 months"). Only the field's own unit (unit/2: UCUM "mo") is read."""
    from llr_asp.core.errors import InputError

    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "item": [{"linkId": "conservative.months", "answer": [{"valueQuantity": quantity}]}],
    }
    if refused is None:
        assert validate(response, RULES, "qr").values["conservative.months"] == 10
        return
    with pytest.raises(InputError) as error:
        validate(response, RULES, "qr")
    assert 'expected a valueQuantity with the UCUM code "mo", ' + refused in str(error.value)


CLINICAL_USE = "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse"


def clinical_use(code: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """An entry of the Patient's sex parameter for clinical use, with its period."""
    parts: list[dict[str, Any]] = [{"url": "value", "valueCodeableConcept": {"coding": [{"code": code}]}}]
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        parts.append({"url": "period", "valuePeriod": period})
    return {"url": CLINICAL_USE, "extension": parts}


@pytest.mark.parametrize(
    ("entries", "gender", "answered", "summary"),
    [
        # the entry that ended in 2020 says nothing of today: the current one is female
        (
            [
                clinical_use("male-typical", "2000-01-01", "2020-01-01"),
                clinical_use("female-typical", "2020-01-02"),
            ],
            "male",
            "male",
            "Sources disagree on sex",
        ),
        (
            [clinical_use("male-typical", "2000-01-01", "2020-01-01")],
            "female",
            None,
            "Not for this patient (ARP 55)",
        ),
        # two current entries that disagree are a conflict, whatever their order
        (
            [clinical_use("female-typical"), clinical_use("male-typical")],
            "male",
            "male",
            "Sources disagree on sex",
        ),
        (
            [clinical_use("male-typical"), clinical_use("female-typical")],
            "male",
            None,
            "Sources disagree on sex",
        ),
        # an end given to the year holds the whole of that year; a start not yet come does not hold
        ([clinical_use("female-typical", end="2999")], "male", "male", "Sources disagree on sex"),
        ([clinical_use("female-typical", start="2999-01-01")], "male", None, "Meets ARP 55 criteria"),
    ],
)
def test_only_current_entries_of_sex_for_clinical_use_count(
    client: TestClient, entries: list[dict[str, Any]], gender: str, answered: str | None, summary: str
) -> None:
    """Fifth review, HIGH: only the first entry of the sex for clinical use was read, whatever its
    period: a male-typical entry that ended in 2020 gave a plain ELIGIBLE for a patient whose
    current entry is female-typical."""
    body = call("route-c1-pain", gender) if answered is None else with_sex("route-c1-pain", answered, gender)
    if answered is None:
        response = body["prefetch"]["answers"]["entry"][0]["resource"]
        response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    body["prefetch"]["patient"]["extension"] = entries
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert summary in card["summary"], card["summary"]


@pytest.mark.parametrize("authored", ["2026", "2026-11"])
@pytest.mark.parametrize("newest_first", [True, False])
def test_a_form_dated_to_the_year_or_month_is_not_the_oldest(
    client: TestClient, authored: str, newest_first: bool
) -> None:
    """Fifth review, MEDIUM: a newer form authored "2025" (FHIR lets a dateTime stop at the year)
    was taken as the oldest, so the superseded answers decided (certain ELIGIBLE). A partial
    date is its period's first day, and a form inside that period is as new as it: where the two
    disagree it is a conflict."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({"pain.severity": mild}, {})
    entries = body["prefetch"]["answers"]["entry"]
    entries[0]["resource"]["authored"] = authored
    entries[1]["resource"]["authored"] = "2025-06-01T09:00:00Z"  # a year before: older either way
    if not newest_first:
        entries.reverse()
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "not_eligible"  # the newer form's mild pain
    entries[0 if newest_first else 1]["resource"]["authored"] = "2026-11-01T09:00:00Z"
    entries[1 if newest_first else 0]["resource"]["authored"] = authored
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on pain")


def test_a_fact_from_an_older_form_is_named_with_its_date_and_confirmed(client: TestClient) -> None:
    """Fifth review, MEDIUM: the sex (or a knee's compartments) from a form years old stood in
    silently for the newest form's blank: the card named only the newest date, and an urgent
    patient was told "do not delay the referral". Such a value is now filled from the older
    form: named with its date, a warning to confirm, and urgency's "confirm first"."""
    male = {"valueCoding": {"code": "male"}}
    body = two_responses({"sex": None}, {"sex": male})
    body["prefetch"]["patient"].pop("gender")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == (
        "Sex from the ARP 55 answers of 2026-06-01: confirm. Sex not compared with the EHR's (its record "
        "gives none). Meets ARP 55 criteria"
    )
    assert card["indicator"] == "warning"
    [filled] = card["extension"]["llr-asp.filled"]
    assert (filled["field"], filled["value"], filled["date"]) == ("sex", "male", "2026-06-01T09:00:00Z")
    assert (
        "from the ARP 55 answers of 2026-06-01; given on an earlier form and not confirmed since"
        in card["detail"]
    )
    urgent = copy.deepcopy(body)  # C6 met, two months of care: urgent, the sex only from June
    for entry in urgent["prefetch"]["answers"]["entry"]:
        for item in entry["resource"]["item"]:
            if item["linkId"] == "conservative.months":
                item["answer"] = [{"valueDecimal": 2}]
        entry["resource"]["item"] = [
            i for i in entry["resource"]["item"] if i["linkId"] != "joint.destruction_risk"
        ]
        entry["resource"]["item"].append(
            {"linkId": "joint.destruction_risk", "answer": [{"valueBoolean": True}]}
        )
    [card] = client.post(HIP, json=urgent, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Urgent (C6): confirm the procedure suits the patient first"), card[
        "summary"
    ]
    assert "known only from the ARP 55 answers of 2026-06-01" in card["detail"]
    assert "do not delay the referral" not in card["detail"]


KNEE_FORM = "urn:llr-asp:questionnaire:knee-resurfacing"
KNEE_CODE = {
    "system": "http://snomed.info/sct",
    "code": "test-knee-resurfacing",
    "display": "Knee (test code)",
}


@pytest.fixture(scope="module")
def knee_client(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """The service of the CDS tests with an order code declared for the knee as well."""
    import shutil

    copied = tmp_path_factory.mktemp("knee") / "cds"
    shutil.copytree(folder, copied, ignore=shutil.ignore_patterns("state"))
    with (copied / "rules" / "llr_icb.lp").open("a") as declared:
        declared.write(
            'procedure("knee-resurfacing", "{system}", "{code}", "{display}").\n'.format(**KNEE_CODE)
        )
    return TestClient(test_cds_hooks.make_app(copied))


def test_a_knee_card_says_nothing_of_the_sex_knee_resurfacing_never_asks(knee_client: TestClient) -> None:
    """Fifth review, LOW: knee cards warned "(sex from the EHR's administrative record: confirm)"
    though ARP 60 asks no sex: noise that teaches a GP to skip warnings."""
    knee = "/cds-services/knee-resurfacing-order-select"
    body = without_sex("route-c1-pain", "female")
    body["prefetch"]["answers"]["entry"][0]["resource"]["questionnaire"] = KNEE_FORM
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"]["coding"] = [KNEE_CODE]
    [card] = knee_client.post(knee, json=body, headers=auth(knee)).json()["cards"]
    assert "sex" not in card["summary"] and "llr-asp.filled" not in card["extension"], card["summary"]


@pytest.mark.parametrize(
    ("record", "route"),
    [
        (lambda: changed(C5, sex=None, conservative__months=0), "C5"),
        (lambda: changed(C6, conservative__months=2), "C6"),
    ],
)
def test_the_fhir_determination_leads_with_the_urgent_line(record: Any, route: str) -> None:
    """Fifth review, MEDIUM: `explain --format fhir` said "NOT ELIGIBLE ON THE ADOPTED READING"
    with no word of urgency for a C5/C6 patient, where every other surface leads with it: a
    system that keeps only this resource kept a refusal for a patient not to be kept waiting."""
    from llr_asp.formats.fhir import decision_response
    from llr_asp.views.wording import urgent_note

    patient = validate(record(), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision)
    assert note is not None and route in note
    [coded] = [
        e
        for e in decision_response(patient, [decision], RULES)["extension"]
        if e["url"].endswith("determination")
    ]
    assert coded["valueCoding"]["display"].startswith(f"ARP 55: {note} ")


# -- the sixth review's findings -----------------------------------------------------------------
def months_answered(answer: dict[str, Any], nested: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    response = json.loads((EXAMPLE.parent / "route-c1-pain.json").read_text())
    items = [i for i in test_cds_hooks.answer_items("route-c1-pain") if i["linkId"] != "conservative.months"]
    items.append(
        {"linkId": "conservative.months", "answer": [{**answer, **({"item": nested} if nested else {})}]}
    )
    assert response  # the example the items answer
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "item": items,
    }


def test_a_quantity_with_a_comparator_is_no_exact_value() -> None:
    """Sixth review, HIGH: months given as `< 6` were read as 6 (certain ELIGIBLE, "Conservative
    care: 6 months")."""
    from llr_asp.core.errors import InputError

    quantity = {"value": 6, "comparator": "<", "system": "http://unitsofmeasure.org", "code": "mo"}
    with pytest.raises(InputError) as error:
        validate(months_answered({"valueQuantity": quantity}), RULES, "qr")
    assert "comparator '<' is not an exact value" in str(error.value)


def test_a_question_nested_under_an_answer_is_read_and_a_contradiction_refused() -> None:
    """Sixth review, MEDIUM: answers nested under an answer (QuestionnaireResponse.item.answer.item,
    legal FHIR) were skipped, so a form saying both 8 and 2 months was decided from the 8."""
    from llr_asp.core.errors import InputError

    nested = [{"linkId": "conservative.failed", "answer": [{"valueBoolean": False}]}]
    with pytest.raises(InputError) as error:
        validate(months_answered({"valueInteger": 8}, nested), RULES, "qr")
    assert "answers conservative.failed again, differently (true before, false here)" in str(error.value)
    alone = months_answered({"valueInteger": 8}, nested)
    alone["item"] = [i for i in alone["item"] if i["linkId"] != "conservative.failed"]
    assert validate(alone, RULES, "qr").values["conservative.failed"] is False  # read where it stands


def test_an_urgent_patient_is_never_turned_away_on_an_unconfirmed_sex(client: TestClient) -> None:
    """Sixth review, HIGH: Patient.gender female (no sex for clinical use, none answered), C6
    met, two months of care: the card said "Does not meet ARP 55 … do not refer for it", the
    "confirm" cut off the summary. An unsuitability resting on a value no one confirmed is to
    confirm first, the doubt ahead of the verdict."""
    body = without_sex("route-c6-destruction-risk", "female", months=2)
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith(
        "Urgent (C6): confirm the procedure suits the patient first. Sex from the EHR (administrative gender): confirm."
    ), card["summary"]
    assert "do not refer" not in card["detail"].lower() and card["indicator"] == "warning"
    # answered female on the form: confirmed, so the urgency is for another procedure
    response["item"].append({"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}]})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert (
        card["summary"].startswith("Urgent (C6), but not this procedure") and "not suitable" in card["detail"]
    )


def test_a_knee_card_names_no_disagreement_about_the_sex_it_never_asks(knee_client: TestClient) -> None:
    """Sixth review, LOW: a knee card listed a sex conflict (llr-asp.conflicts, "which is right for
    this procedure?") though ARP 60 asks no sex."""
    knee = "/cds-services/knee-resurfacing-order-select"
    body = with_sex("route-c1-pain", "male", "female")
    body["prefetch"]["answers"]["entry"][0]["resource"]["questionnaire"] = KNEE_FORM
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"]["coding"] = [KNEE_CODE]
    [card] = knee_client.post(knee, json=body, headers=auth(knee)).json()["cards"]
    assert "llr-asp.conflicts" not in card["extension"] and "sex" not in card["detail"].lower(), card[
        "summary"
    ]


def test_answers_that_could_not_be_fetched_are_never_said_to_be_none(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixth review, LOW: a Patient in the prefetch and a fhirServer the service may not read gave
    "no answers found": the GP fills a second form that may contradict the stored one."""
    from llr_asp.web import cards

    found = cards.Found(answered=False, unreached="answers and adaptiveAnswers")
    [decision] = Reasoner(RULES).decide(
        validate({"id": "p"}, RULES, "t"), [RULES.policies["hip-resurfacing"]]
    )
    said = cards.card(decision, RULES, "http://testserver", found)["summary"]
    assert said == "ARP 55: the EHR's answers could not be read; answer the ARP 55 questions"
    none = cards.card(decision, RULES, "http://testserver", cards.Found(answered=False))["summary"]
    assert none == "ARP 55: no answers found; answer the ARP 55 questions"


@pytest.mark.parametrize(
    ("record", "urgent"),
    [
        (lambda: changed(C6, conservative__months=2), {"route": "C6", "status": "met", "action": "ask"}),
        (
            lambda: changed(C6, conservative__months=2, sex=None),
            {"route": "C6", "status": "met", "action": "confirm"},
        ),
        (lambda: changed(C6, sex="female"), {"route": "C6", "status": "met", "action": "unsuitable"}),
        (lambda: changed(C6, joint__destruction_risk=False), None),
    ],
)
def test_every_decisions_json_names_its_urgency(record: Any, urgent: dict[str, str] | None) -> None:
    """Sixth review, MEDIUM: the JSON of /api/v1/explain and `explain -f json` said "not_eligible:
    B" for a C6 patient with two months of care, with no word of urgency: an EHR built on it
    showed an urgent patient as refused."""
    [decision] = Reasoner(RULES).decide(validate(record(), RULES, "t"), [RULES.policies["hip-resurfacing"]])
    said = decision.to_json()["urgent"]
    assert (said and {k: said[k] for k in ("route", "status", "action")}) == urgent


# -- the seventh review's findings ---------------------------------------------------------------
def test_a_newer_answer_supersedes_an_older_forms_fact(client: TestClient) -> None:
    """Seventh review, HIGH: a 2023 form's 'conservative care not contra-indicated' stood against
    today's 'contra-indicated' as a conflict no answer could settle (and a knee's two compartments
    against today's three): facts change. An older form's fact only fills what the newest
    leaves blank; today's answer decides."""
    yes, no = {"valueBoolean": True}, {"valueBoolean": False}
    body = two_responses({"conservative.contraindicated": yes}, {"conservative.contraindicated": no})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert "llr-asp.conflicts" not in card["extension"], card["summary"]
    assert "Sources disagree" not in card["summary"]
    blank = two_responses({"conservative.contraindicated": None}, {"conservative.contraindicated": no})
    [card] = client.post(HIP, json=blank, headers=auth(HIP)).json()["cards"]
    [filled] = [
        f for f in card["extension"]["llr-asp.filled"] if f["field"] == "conservative.contraindicated"
    ]
    assert (filled["value"], filled["date"]) == (
        False,
        "2026-06-01T09:00:00Z",
    )  # blank now: filled, to confirm


def test_next_and_whatif_json_name_the_urgency(whatif_of: Any) -> None:
    """Seventh review, MEDIUM: a program driving the form through /api/v1/next saw a C5 patient
    as refused with nothing left to ask; what-if's JSON had no action (confirm) for a C6 patient
    of unknown sex. Both carry the decision's `urgent` now, as explain does."""
    interviewer = Interviewer.load()
    record = changed(C6, conservative__months=2, sex=None)
    patient = validate(record, RULES, "t")
    hip = RULES.policies["hip-resurfacing"]
    [step] = interviewer.next(patient, [hip])
    assert step.to_json()["urgent"]["action"] == "confirm"
    [decision] = interviewer.decide(patient, [hip])
    answer = whatif_of(record)
    assert answer.to_json()["urgent"] == decision.urgent_json() and decision.urgent_json()["route"] == "C6"


def test_an_urgent_patient_this_procedure_does_not_suit_keeps_the_urgency(
    client: TestClient, whatif_of: Any
) -> None:
    """Seventh review, MEDIUM: for a woman at risk of joint destruction (C6), the hip card's
    summary was a routine refusal listing six months of care first, and what-if pointed to
    another procedure with no word of urgency."""
    body = call("route-c6-destruction-risk", "female")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    response["item"].append({"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}]})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Urgent (C6), but not this procedure: refer for the one indicated now.")
    assert "urgent route (C6): the urgency stands" in said(whatif_of(changed(C6, sex="female")))


def test_a_decision_resting_on_an_unconfirmed_value_is_not_coded_certain(client: TestClient) -> None:
    """Seventh review, MEDIUM: a C6 refusal resting only on the administrative gender was coded
    robust with possible [not_eligible], more certain than the same answers with no Patient
    (not robust). A decision that would differ were the unconfirmed value not known is not
    robust: its possible holds the other decisions, its FHIR robustness is `unconfirmed`, and
    its headline says what to confirm."""
    from llr_asp.formats.fhir import determination
    from llr_asp.views.wording import headline

    body = without_sex("route-c6-destruction-risk", "female")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.robust"] is False and len(card["extension"]["llr-asp.possible"]) > 1
    body["prefetch"].pop("patient")
    [alone] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    # what the same answers decide with no Patient is among what the unconfirmed decision may be
    assert alone["extension"]["llr-asp.decision"] in card["extension"]["llr-asp.possible"]
    record = changed(C6, sex=None)
    patient = dataclasses.replace(
        validate(record, RULES, "t"),
        values={**validate(record, RULES, "t").values, "sex": "female"},
        filled=(Stated("sex", "female", EHR, "administrative"),),
    )
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    assert not decision.robust and not decision.contested and decision.unconfirmed
    coded = {e["url"]: e["valueCoding"]["code"] for e in determination(decision)}
    assert coded["urn:llr-asp:robustness"] == "unconfirmed"
    assert headline(decision).endswith(
        "resting on sex from the EHR (administrative gender), not yet confirmed: confirm it first"
    )


def test_a_coding_from_another_code_system_is_refused_everywhere() -> None:
    """Seventh review, LOW: sex coded {"system": SNOMED, "code": "male", "display": "Female"}
    was read as male by explain and the CDS card but refused by $next-question. A coding that
    names another system than the question's is refused on every surface; one naming none is
    read by its code."""
    from llr_asp.core.errors import InputError

    response = months_answered({"valueInteger": 8})
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    foreign = {"system": "http://snomed.info/sct", "code": "male", "display": "Female"}
    response["item"].append({"linkId": "sex", "answer": [{"valueCoding": foreign}]})
    with pytest.raises(InputError) as error:
        validate(response, RULES, "qr")
    assert "a coding in 'http://snomed.info/sct'; this question's codes are in urn:llr-asp:values:sex" in str(
        error.value
    )
    response["item"][-1]["answer"] = [{"valueCoding": {"code": "male"}}]
    assert validate(response, RULES, "qr").values["sex"] == "male"


def test_confirm_first_still_names_the_assessment_to_make_now() -> None:
    """Seventh review, LOW: an urgent patient whose suitability is unknown was told only to
    confirm it and ask the ICB; the MSK assessment the policy asks under every reading went
    unnamed, a round trip lost."""
    from llr_asp.views.wording import urgent_note

    record = changed(C6, conservative__months=2, sex=None, msk__assessed=None)
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision)
    assert note is not None and "first confirm the procedure suits the patient" in note
    assert "If it does, first, now: assessed by Musculoskeletal Services; then ask the ICB" in note, note


# -- the eighth review's findings ----------------------------------------------------------------
@pytest.mark.parametrize("code", ["specified", "unknown"])
def test_a_sex_for_clinical_use_that_is_not_simple_puts_the_answer_in_doubt(
    client: TestClient, code: str
) -> None:
    """Eighth review, HIGH: the form said male; the EHR's sex for clinical use said `specified`
    ("read the comment": a trans woman on oestrogen). The card was a plain green 'Meets ARP 55
    criteria': the entry silenced the administrative gender and nothing was left to conflict."""
    body = with_sex("route-c1-pain", "male", "female")
    body["prefetch"]["patient"]["extension"] = [clinical_use(code)]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on sex") and card["indicator"] == "warning"
    assert card["extension"]["llr-asp.robust"] is False


def test_a_sex_for_clinical_use_coded_in_another_system_is_not_read(client: TestClient) -> None:
    """Eighth review, MEDIUM: a local code system's 'female-typical' was read as the HL7 code and
    refused an urgent man ('do not refer'). A coding in another system is not read: given, but
    not simply (the sex is asked)."""
    body = call("route-c1-pain", "male")  # the form gives no sex: the EHR's alone speak
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    entry = clinical_use("female-typical")
    entry["extension"][0]["valueCodeableConcept"]["coding"][0]["system"] = "http://example.org/local-sex"
    body["prefetch"]["patient"]["extension"] = [entry]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert "Does not meet" not in card["summary"] and card["extension"]["llr-asp.decision"] != "not_eligible"


def test_an_urgent_route_resting_on_an_older_form_is_to_confirm_first(client: TestClient) -> None:
    """Eighth review, MEDIUM: C5 met only through an older form's 'conservative care
    contra-indicated' (the newest left it blank) said 'ask the ICB now; do not delay the
    referral for conservative care', the contra-indication perhaps ended since."""
    body = call("route-c5-independence", "male")
    older = copy.deepcopy(body["prefetch"]["answers"]["entry"][0]["resource"]) | {
        "authored": "2026-02-01T09:00:00Z"
    }
    newer = copy.deepcopy(older) | {"authored": "2026-11-20T09:00:00Z"}
    newer["item"] = [i for i in newer["item"] if i["linkId"] != "conservative.contraindicated"]
    assert len(newer["item"]) < len(older["item"])  # the example answers it: the newest leaves it blank
    body["prefetch"]["answers"]["entry"] = [{"resource": newer}, {"resource": older}]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Urgent (C5): confirm what the urgency rests on first"), card["summary"]
    assert (
        "on a value no one has confirmed — first confirm conservative management contra-indicated"
        in card["detail"]
    )
    assert "do not delay the referral" not in card["detail"]


def test_a_card_without_a_patient_names_the_hooks_patient(client: TestClient) -> None:
    """Eighth review, LOW: with no Patient in the prefetch the card said 'Patient: prefetch.'."""
    body = call("route-c1-pain", "male")
    body["prefetch"].pop("patient")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert "Patient: pat-1." in card["detail"] and "Patient: prefetch" not in card["detail"]


# -- the tenth review's findings -----------------------------------------------------------------
def test_next_at_the_terminal_leads_with_the_urgent_line(tmp_path: Path) -> None:
    """Tenth review, HIGH: `llr-asp next` (text) showed 'Nothing more to ask now' or the next
    question for a C5/C6 patient with no urgent line; its JSON and every other surface had it."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    record = tmp_path / "c6.json"
    record.write_text(json.dumps(changed(C6, msk__assessed=None)))
    said = CliRunner().invoke(app, ["next", str(record), "-p", "hip-resurfacing"], env={"COLUMNS": "300"})
    assert said.exit_code == 0 and "⚠ Meets an urgent route (C6" in said.stdout, said.stdout


def test_a_form_left_half_way_still_says_the_urgency(client: TestClient) -> None:
    """Tenth review, MEDIUM: an in-progress $next-question response for a patient already meeting
    C5 asked the next question with no word of urgency; only the completed form said it."""
    from llr_asp.formats.fhir import questionnaire

    form = questionnaire(RULES, RULES.policies["hip-resurfacing"])
    from llr_asp.formats.fhir import decision_response

    answers = changed(C5)
    answers.pop("sex")  # not yet asked (null would be "not known": nothing more to ask)

    patient = validate(answers, RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    response = decision_response(patient, [decision], RULES)
    response.pop("extension")
    response["status"] = "in-progress"
    response["contained"] = [{**form, "id": "adaptive", "item": []}]
    response["questionnaire"] = "#adaptive"
    reply = client.post("/fhir/Questionnaire/$next-question", json=response)
    assert reply.status_code == 200, reply.text
    [adapted] = reply.json()["contained"]
    said = [i for i in adapted["item"] if i.get("linkId") == "urgent"]
    assert (
        reply.json()["status"] == "in-progress"
        and said
        and said[0]["text"].startswith("⚠ Meets an urgent route (C5")
    )
    assert adapted["item"][-1]["linkId"] == "sex"  # and the question that settles it comes next


URGENT_MID_WALK = {
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "joint": {"destruction_risk": True},
}
"""A patient meeting C6 with conservative care not yet asked: the interview goes on."""


def test_the_page_interview_says_the_urgency_before_the_next_question(client: TestClient) -> None:
    """Eleventh review, MEDIUM: mid-interview the page said only "Not decided yet … UNDETERMINED"
    and asked about conservative care; a GP who stopped there never read "do not delay"."""
    page = client.post("/ask", data={"policy": "hip-resurfacing", "record": json.dumps(URGENT_MID_WALK)}).text
    assert 'name="field"' in page  # still asking
    urgent = page.find("⚠ Meets an urgent route (C6")
    assert 0 <= urgent < page.find('name="field"'), page


def test_the_terminal_interview_says_the_urgency_before_the_next_question(tmp_path: Path) -> None:
    """Eleventh review, MEDIUM: `llr-asp ask` asked about conservative care with no urgent line."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    start = tmp_path / "partial.json"
    start.write_text(json.dumps(URGENT_MID_WALK))
    said = CliRunner().invoke(
        app, ["ask", "-p", "hip-resurfacing", "--from", str(start)], input="", env={"COLUMNS": "300"}
    )
    assert said.exit_code == 1  # the answers ended before the questionnaire
    urgent = said.stderr.find("⚠ ARP 55: Meets an urgent route (C6")
    assert 0 <= urgent < said.stderr.find("Question 1"), said.stderr


def test_the_all_form_names_the_policy_of_each_urgent_line(client: TestClient) -> None:
    """Eleventh review, MEDIUM: the "all" form joined both policies' urgent lines with no policy
    named, so "do not refer for it" (hip, a woman) sat beside "do not delay the referral" (knee)."""
    from llr_asp.formats.fhir import decision_response, questionnaire

    answers = changed(C6, sex="female")
    answers.pop("knee")  # not yet asked: the form goes on
    patient = validate(answers, RULES, "t")
    decisions = Reasoner(RULES).decide(patient, list(RULES.policies.values()))
    response = decision_response(patient, decisions, RULES)
    response.pop("extension")
    response["status"] = "in-progress"
    response["contained"] = [{**questionnaire(RULES), "id": "adaptive", "item": []}]
    response["questionnaire"] = "#adaptive"
    reply = client.post("/fhir/Questionnaire/$next-question", json=response)
    assert reply.status_code == 200, reply.text
    [said] = [i["text"] for i in reply.json()["contained"][0]["item"] if i.get("linkId") == "urgent"]
    lines = said.removeprefix("⚠ ").split(" ARP ")
    assert lines[0].startswith("ARP 55: Meets an urgent route (C6") and "do not refer for it" in lines[0], (
        said
    )
    assert lines[1].startswith("60: Meets an urgent route (C6") and "do not refer" not in lines[1], said


def test_a_card_whose_call_sent_no_patient_says_the_sex_was_not_compared(client: TestClient) -> None:
    """Tenth review, MEDIUM: with no Patient in the prefetch, a hip card said a plain 'Meets ARP 55
    criteria' (info): the comparison of the answered sex with the EHR's silently did not run."""
    body = call("route-c1-pain", "male")
    body["prefetch"].pop("patient")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and "the sex was not compared with the EHR's" in card["detail"]
    # and the summary says so before the verdict (eleventh review: a plain 'Meets ARP 55 criteria')
    assert card["summary"] == "Sex not compared with the EHR's (no Patient record). Meets ARP 55 criteria"


def test_a_coding_that_shows_another_answer_or_text_for_a_coded_item_is_refused() -> None:
    """Tenth review, MEDIUM: pain coded 'severe' but displayed 'mild' (no system) was decided
    ELIGIBLE and robust, and sex as text ('male') was read by explain and CDS while
    $next-question refused it. Both are refused on every surface."""
    from llr_asp.core.errors import InputError

    response = months_answered({"valueInteger": 8})
    items = [i for i in response["item"] if i["linkId"] != "pain.severity"]
    shown = {"code": "severe", "display": "mild"}
    response["item"] = [*items, {"linkId": "pain.severity", "answer": [{"valueCoding": shown}]}]
    with pytest.raises(InputError) as error:
        validate(response, RULES, "qr")
    assert "the coding says 'severe' but shows 'mild'" in str(error.value)
    response["item"][-1]["answer"] = [{"valueString": "severe"}]
    with pytest.raises(InputError) as error:
        validate(response, RULES, "qr")
    assert "expected a valueCoding" in str(error.value)
    response["item"][-1]["answer"] = [{"valueCoding": {"code": "severe", "display": "Severe"}}]
    assert validate(response, RULES, "qr").values["pain.severity"] == "severe"


# -- the eleventh review's findings --------------------------------------------------------------
UCUM = "http://unitsofmeasure.org"
UNREADABLE = [
    # (the item's linkId, its one answer, what the refusal says)
    (
        "conservative.months",
        {"valueQuantity": {"value": 10, "unit": "weeks", "system": UCUM, "code": "mo"}},
        "a valueQuantity whose unit 'weeks' is not its code 'mo'",
    ),
    (
        "conservative.months",
        {"valueQuantity": {"value": 10, "unit": "days", "code": "mo"}},
        "a valueQuantity whose unit 'days' is not its code 'mo'",
    ),
    (
        "conservative.months",
        {"valueQuantity": {"value": 10, "system": "http://snomed.info/sct", "code": "mo"}},
        "a valueQuantity in the system 'http://snomed.info/sct'",
    ),
    (
        "conservative.months",
        {"valueDecimal": 10, "valueQuantity": {"value": 2, "code": "mo"}},
        "an answer has one value, this one has 2 (valueDecimal, valueQuantity)",
    ),
    (
        "conservative.months",
        {"valueDecimal": 2, "valueInteger": 10},
        "an answer has one value, this one has 2 (valueDecimal, valueInteger)",
    ),
    (
        "msk.end_stage_oa",
        {"valueBoolean": True, "valueString": "no"},
        "an answer has one value, this one has 2 (valueBoolean, valueString)",
    ),
]


def answered(link: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """route-c1-pain's answers (ELIGIBLE, robust) with `link` answered by `answer` alone."""
    items = [i for i in answer_items("route-c1-pain") if i["linkId"] != link]
    return [*items, {"linkId": link, "answer": [answer]}]


@pytest.mark.parametrize(("link", "answer", "refused"), UNREADABLE)
def test_an_answer_with_two_values_or_a_unit_at_odds_is_refused_on_every_surface(
    client: TestClient, tmp_path: Path, link: str, answer: dict[str, Any], refused: str
) -> None:
    """Eleventh review, MEDIUM (M6, L7): months as {10, unit "weeks", code "mo"} were read as 10
    months, an answer with two value[x] (valueDecimal 10 and a valueQuantity; valueBoolean true
    and valueString "no") by the first, a SNOMED "mo" as UCUM months: explain, the API and CDS
    decided (ELIGIBLE) what $next-question refused. FHIR gives an answer one value[x]; each is
    refused as every unreadable form is: exit 2 naming the item, 422, a card that decides
    nothing."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "item": answered(link, answer),
    }
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(response))
    said = CliRunner().invoke(app, ["explain", str(path), "-p", "hip-resurfacing"], env={"COLUMNS": "300"})
    assert said.exit_code == 2 and said.stderr.count("\n") == 1, said.stdout
    assert str(path) in said.stderr and f"linkId {link}" in said.stderr and refused in said.stderr
    api = client.post("/api/v1/explain?policy=hip-resurfacing", json=response)
    assert api.status_code == 422 and refused in api.json()["error"]
    body = call(None)
    body["prefetch"]["answers"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": response}],
    }
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"] == "ARP 55: not checked, the answers cannot be read" and "extension" not in card
    assert refused in card["detail"]


@pytest.mark.parametrize(
    "quantity",
    [
        {"value": 10, "unit": "months", "system": UCUM, "code": "mo"},
        {"value": 10, "unit": "Month", "system": UCUM, "code": "mo"},
        {"value": 10, "unit": "mo", "system": UCUM, "code": "mo"},
        {"value": 10, "system": UCUM, "code": "mo"},
    ],
)
def test_months_in_ucum_with_a_unit_that_says_months_are_read(quantity: dict[str, Any]) -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "item": answered("conservative.months", {"valueQuantity": quantity}),
    }
    assert validate(response, RULES, "qr").values["conservative.months"] == 10


# -- the eleventh review's findings (the CDS Hooks path) -------------------------------------------
@pytest.mark.parametrize("authored", [None, "yesterday", "2026-13-01"])
@pytest.mark.parametrize("newest_first", [True, False])
def test_a_form_with_no_readable_date_is_never_ranked_below_a_dated_one(
    client: TestClient, authored: str | None, newest_first: bool
) -> None:
    """Eleventh review, HIGH: a form with no `authored` (or one that does not parse) was ranked
    oldest, so an older dated form decided: a plain info 'Meets ARP 55 criteria' that never named
    the form set aside. It is now as new as the newest (as a form of the same day is): where the
    two disagree it is a conflict, asked, and the card says a form had no readable date."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({"pain.severity": mild}, {})
    undated = body["prefetch"]["answers"]["entry"][0]["resource"]
    undated.pop("authored")
    if authored is not None:
        undated["authored"] = authored
    if not newest_first:
        body["prefetch"]["answers"]["entry"].reverse()
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on pain"), card["summary"]
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.decision"] != "eligible"
    assert "no readable date" in card["detail"]


def test_a_form_authored_in_a_leap_second_is_dated(client: TestClient) -> None:
    """Eleventh review, HIGH: `23:59:60` (a leap second, valid in FHIR) did not parse, so the
    newer form was ranked oldest and the older one decided. It is the second before."""
    mild = {"valueCoding": {"code": "mild"}}
    body = two_responses({"pain.severity": mild}, {})
    body["prefetch"]["answers"]["entry"][0]["resource"]["authored"] = "2026-06-30T23:59:60Z"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "not_eligible", card["summary"]
    assert "given on 2026-06-30" in card["detail"] and "no readable date" not in card["detail"]


DTR_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"


def origin(code: str) -> list[dict[str, Any]]:
    """Da Vinci DTR's information-origin extension of an item: `auto` (pre-filled from the EHR,
    left as it was), `override` (pre-filled, then changed) or `manual`."""
    return [{"url": DTR_ORIGIN, "extension": [{"url": "source", "valueCode": code}]}]


@pytest.mark.parametrize(("code", "confirmed"), [("auto", False), ("override", True), ("manual", True)])
def test_an_answer_the_form_filler_prefilled_is_not_the_clinicians(
    client: TestClient, code: str, confirmed: bool
) -> None:
    """Eleventh review, MEDIUM: the DTR form filler's answer pre-filled from the EHR and left as
    it was (`auto`) counted as the clinician's: 'Meets ARP 55 criteria', info, robust, on the
    EHR's administrative gender alone. It is a value no one confirmed: named, to confirm."""
    body = call("route-c1-pain", "male")
    for item in body["prefetch"]["answers"]["entry"][0]["resource"]["item"]:
        if item["linkId"] == "sex":
            item["extension"] = origin(code)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    if confirmed:
        assert (card["summary"], card["indicator"]) == ("Meets ARP 55 criteria", "info")
        return
    assert card["summary"].startswith("Sex from the ARP 55 answers pre-filled from the EHR"), card["summary"]
    assert "confirm. Meets ARP 55 criteria" in card["summary"] and card["indicator"] == "warning"
    assert card["extension"]["llr-asp.robust"] is False
    assert "sex" in [f["field"] for f in card["extension"]["llr-asp.filled"]]


@pytest.mark.parametrize("code", ["auto", "manual"])
def test_a_prefilled_answer_is_to_confirm_on_every_surface(client: TestClient, code: str) -> None:
    """Eleventh review, MEDIUM 2 beyond CDS: explain (and the API) read the same form's `auto`
    answer as the clinician's: a robust ELIGIBLE on the EHR's administrative gender alone."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads((EXAMPLE.parent / "route-c1-pain.json").read_text())), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    response = decision_response(patient, [decision], RULES)
    response.pop("extension")
    for item in response["item"]:
        if item["linkId"] == "sex":
            item["extension"] = origin(code)
    said = client.post("/api/v1/explain", json=response).json()
    decided = said  # one policy: the form names it
    if code == "manual":
        assert decided["robust"] is True
        return
    assert decided["decision"] == "eligible" and decided["robust"] is False, decided
    assert [f["field"] for f in decided["filled"]] == ["sex"], decided["filled"]
    read = validate(response, RULES, "t")
    assert [(s.field, s.kind) for s in read.filled] == [("sex", "prefilled")]


def test_a_prefetch_patient_that_is_not_a_patient_is_not_compared(client: TestClient) -> None:
    """Eleventh review, MEDIUM: a Bundle holding a female Patient in `prefetch.patient` was
    passed over in silence and counted as sent: the answered male decided a plain info 'Meets'."""
    body = call("route-c1-pain", "female")
    woman = body["prefetch"]["patient"]
    body["prefetch"]["patient"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": woman}],
    }
    for item in body["prefetch"]["answers"]["entry"][0]["resource"]["item"]:
        if item["linkId"] == "sex":
            item["answer"] = [{"valueCoding": {"code": "male"}}]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning", card["summary"]
    assert "the sex was not compared with the EHR's" in card["detail"] and "not a Patient" in card["detail"]


@pytest.mark.parametrize("unsent", ["answers", "adaptiveAnswers"])
def test_answers_the_prefetch_did_not_send_are_named(client: TestClient, unsent: str) -> None:
    """Eleventh review, MEDIUM: a prefetch without one of the answer keys discovery declares (not
    null: absent, so the EHR did not look) was decided from the other as if it were all, a plain
    info card: a newer form could be in the search not sent."""
    body = call("route-c1-pain", "male")
    body["prefetch"]["adaptiveAnswers"] = body["prefetch"]["answers"]
    body["prefetch"].pop(unsent)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.robust"] is False
    assert f"`{unsent}`" in card["detail"] and "not sent" in card["detail"], card["detail"][:300]
    assert "not sent" in card["summary"], card["summary"]


def test_answers_the_fhir_server_could_not_give_are_never_a_plain_card() -> None:
    """Eleventh review, MEDIUM: the same when the service tried to fetch the missing key from
    `fhirServer` and could not: the card names it and is neither info nor robust."""
    from llr_asp.web import cards

    record = json.loads(EXAMPLE.read_text())
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.decision == "eligible" and decision.robust
    found = cards.Found(unreached="adaptiveAnswers", unseen=("adaptiveAnswers",))
    said = cards.card(decision, RULES, "http://testserver", found)
    assert said["indicator"] == "warning" and said["extension"]["llr-asp.robust"] is False
    assert said["summary"].startswith("adaptiveAnswers not fetched") and "`adaptiveAnswers`" in said["detail"]


def test_a_form_still_in_progress_is_not_yet_an_answer(client: TestClient) -> None:
    """Eleventh review, MEDIUM: a form still in progress, the only one, decided a plain info
    'Meets ARP 55 criteria' with nothing saying it came from a draft; the documentation said a
    form still in progress is not yet an answer. It is set aside, and the card says so."""
    body = call("route-c1-pain", "male")
    body["prefetch"]["answers"]["entry"][0]["resource"]["status"] = "in-progress"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] != "eligible" and card["indicator"] == "warning"
    assert "in progress" in card["summary"] and "still in progress" in card["detail"], card["summary"]
    # a newer draft beside an older finished form: the finished one decides, the draft is named
    body = two_responses({"pain.severity": {"valueCoding": {"code": "mild"}}}, {})
    body["prefetch"]["answers"]["entry"][0]["resource"]["status"] = "in-progress"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "eligible" and "given on 2026-06-01" in card["detail"]
    assert "still in progress" in card["detail"] and card["indicator"] == "warning"
    # and it is never certain: the newer form may change it (sixteenth review, MEDIUM: a newer
    # draft saying female left 'Urgent (C6): refer without delay', robust)
    assert card["extension"]["llr-asp.robust"] is False


# -- the twelfth review's findings ---------------------------------------------------------------


def pasted_form(leave_out: str) -> dict[str, Any]:
    """route-c1-pain's answers as a QuestionnaireResponse (as pasted on the page), `leave_out`
    not yet asked."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads((EXAMPLE.parent / "route-c1-pain.json").read_text())), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    response = decision_response(patient, [decision], RULES)
    response.pop("extension")
    response["item"] = [i for i in response["item"] if i["linkId"] != leave_out]
    return response


@pytest.mark.parametrize(("field", "answer"), [("sex", "male"), ("msk.assessed", "yes")])
def test_the_page_interview_keeps_answers_to_a_pasted_form(
    client: TestClient, field: str, answer: str
) -> None:
    """Twelfth review, MEDIUM: answering the page's question about a pasted QuestionnaireResponse
    wrote the answer beside the form's items, where nothing reads it: the same question came
    back, or the result stayed UNDETERMINED."""
    form = {"policy": "hip-resurfacing", "record": json.dumps(pasted_form(field))}
    asked = client.post("/ask", data=form).text
    assert f'name="field" value="{field}"' in asked  # it asks what the form leaves out
    page = client.post("/ask", data={**form, "field": field, "answer": answer, "trail": ""}).text
    assert f'name="field" value="{field}"' not in page, "the same question came back"
    assert "ELIGIBLE" in page and "UNDETERMINED" not in page
    # Change takes the answer away again and asks it
    record = re.search(r'name="record" value="([^"]*)"', page)
    assert record is not None
    again = client.post("/ask", data={**form, "record": html.unescape(record[1]), "change": field}).text
    assert f'name="field" value="{field}"' in again


@pytest.mark.parametrize(
    ("example", "policy", "said"),
    [
        ("refused-hip-female", "hip-resurfacing", "Not for this patient (ARP 55): no_contraindication (Not"),
        (
            "refused-knee-three-compartments",
            "knee-resurfacing",
            "Not for this patient (ARP 60): compartments (Deterioration",
        ),
    ],
)
def test_a_procedure_not_for_the_patient_is_said_first(example: str, policy: str, said: str) -> None:
    """Twelfth review, MEDIUM: a woman's hip card (two months of care) led with "B (six months of
    documented conservative measures…)" and cut the contra-indication off at 140 characters, and
    the adaptive form ended with only "does not meet the funding criteria": a GP could go on with
    conservative care towards a procedure that is not for the patient."""
    from llr_asp.formats.fhir import said as closing
    from llr_asp.web.cards import card

    record = changed(json.loads((EXAMPLE.parent / f"{example}.json").read_text()), conservative__months=2)
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies[policy]])
    summary = card(decision, RULES, "http://x")["summary"]
    assert summary.startswith(said) and "also B" in summary and len(summary) < 140, summary
    assert "not for this patient" in closing(decision), closing(decision)


NEXT = "/fhir/Questionnaire/$next-question"


def test_next_question_keeps_when_a_form_was_authored_unless_an_answer_is_added(client: TestClient) -> None:
    """Twelfth review, M6: $next-question stamped every response it returned `authored` now: an
    old completed 2024 form posted again came back dated today, so stored it outranked a
    clinician's newer form and the card said its answers were given today."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads(EXAMPLE.read_text())), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    old = decision_response(patient, [decision], RULES)
    old.pop("extension")
    old |= {"authored": "2026-01-01T09:00:00Z", "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing"}
    reply = client.post(NEXT, json=old).json()
    assert reply["status"] == "completed" and reply["authored"] == "2026-01-01T09:00:00Z", reply["authored"]
    # older than the ICB allows (answers_current_for/1): its answers are asked again, its date kept
    reply = client.post(NEXT, json=old | {"authored": "2024-01-01T09:00:00Z"}).json()
    assert reply["status"] == "in-progress" and reply["authored"] == "2024-01-01T09:00:00Z", reply["status"]
    # a step of a form in progress that adds an answer is authored now
    start = {"resourceType": "QuestionnaireResponse", "status": "in-progress"}
    start["questionnaire"] = "urn:llr-asp:questionnaire:hip-resurfacing"
    step = client.post(NEXT, json=start).json() | {"authored": "2024-01-01T09:00:00Z"}
    asked = step["contained"][0]["item"][-1]["linkId"]
    answer = (
        {"linkId": asked, "answer": [{"valueBoolean": True}]}
        if asked != "sex"
        else {"linkId": "sex", "answer": [{"valueCoding": {"code": "male"}}]}
    )
    after = client.post(NEXT, json={**step, "item": [answer]}).json()
    assert after["authored"] > "2026", after["authored"]


@pytest.mark.parametrize("codes", [["male-typical", "female-typical"], ["female-typical", "male-typical"]])
def test_two_codes_of_one_entry_of_sex_for_clinical_use_that_disagree_are_a_conflict(
    client: TestClient, codes: list[str]
) -> None:
    """Twelfth review, M7: one entry of the sex for clinical use coded [male-typical,
    female-typical] decided by its first code (robust either way); two entries that disagree
    were already a conflict. The answers leave sex blank: only the EHR's entry speaks."""
    body = call("route-c1-pain", "male")
    response = body["prefetch"]["answers"]["entry"][0]["resource"]
    response["item"] = [i for i in response["item"] if i["linkId"] != "sex"]
    entry = clinical_use(codes[0])
    entry["extension"][0]["valueCodeableConcept"]["coding"].append({"code": codes[1]})
    body["prefetch"]["patient"]["extension"] = [entry]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sources disagree on sex"), card["summary"]
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.robust"] is False
    assert card["extension"]["llr-asp.conflicts"][0]["field"] == "sex"


def draft_of(example: Path = EXAMPLE) -> dict[str, Any]:
    """A hip form still in progress whose answers, finished, would decide ELIGIBLE."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads(example.read_text())), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    assert decision.decision == "eligible" and decision.robust
    response = decision_response(patient, [decision], RULES)
    response.pop("extension")
    return response | {"status": "in-progress"}


def test_a_form_still_in_progress_is_never_decided_plainly_anywhere(
    client: TestClient, tmp_path: Path
) -> None:
    """Twelfth review, M5: a form still in progress gave a plain robust ELIGIBLE from explain, the
    API, the page and batch; only the CDS card set it aside ("finish it, then order again").
    Every surface now refuses it in one line saying to finish the form; $next-question, whose
    working state a form in progress is, still asks on."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    draft = draft_of()
    said = client.post("/api/v1/explain", json=draft)
    assert said.status_code == 422 and "in progress" in said.json()["error"], said.text
    assert "finish" in said.json()["error"]
    page = client.post("/record", data={"document": json.dumps(draft), "policy": "hip-resurfacing"})
    assert "ELIGIBLE" not in page.text and "in progress" in page.text
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    run = CliRunner().invoke(app, ["explain", str(path)])
    assert run.exit_code == 2 and "in progress" in run.stderr, run.output
    cohort = tmp_path / "drafts.jsonl"
    cohort.write_text(json.dumps(draft) + "\n")
    run = CliRunner().invoke(app, ["batch", str(cohort), "-p", "hip-resurfacing"])
    [line] = [json.loads(x) for x in run.stdout.splitlines() if x.strip()]
    assert "in progress" in line.get("error", ""), line
    # the adaptive form's own working state: still asked on, and completed from
    step = client.post(NEXT, json=draft)
    assert step.status_code == 200 and step.json()["status"] == "completed", step.text


def test_explain_as_fhir_keeps_what_no_one_confirmed_unconfirmed(client: TestClient, tmp_path: Path) -> None:
    """Twelfth review, H1: `explain --format fhir` wrote an answer DTR pre-filled from the EHR
    (information-origin `auto`) as a plain item: read back, or stored and read by a card, it was
    the clinician's: a plain ELIGIBLE, an info card. Round trip explain -> fhir -> explain, and ->
    CDS card: it stays unconfirmed (not robust, a warning); a form in progress is never written
    out `completed` (explain refuses it: M5)."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    response = draft_of() | {"status": "completed"}
    for item in response["item"]:
        if item["linkId"] == "sex":
            item["extension"] = origin("auto")
    given = tmp_path / "given.json"
    given.write_text(json.dumps(response))
    run = CliRunner().invoke(app, ["explain", str(given), "--format", "fhir"])
    assert run.exit_code == 0, run.output
    written = json.loads(run.stdout)
    [sex] = [i for i in written["item"] if i["linkId"] == "sex"]
    assert sex.get("extension") == origin("auto"), sex
    again = tmp_path / "again.json"
    again.write_text(run.stdout)
    run = CliRunner().invoke(app, ["explain", str(again), "--format", "json"])
    decided = json.loads(run.stdout)
    assert decided["decision"] == "eligible" and decided["robust"] is False, decided["robust"]
    assert [f["field"] for f in decided["filled"]] == ["sex"]
    # stored in the EHR and read by the next card
    body = call("route-c1-pain", "male")
    stored = written | {"authored": "2026-11-01T09:00:00Z", "subject": {"reference": "Patient/pat-1"}}
    stored.pop("id")
    body["prefetch"]["answers"]["entry"] = [{"resource": stored}]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and card["extension"]["llr-asp.robust"] is False, card["summary"]
    # a form in progress is never written out completed
    given.write_text(json.dumps(response | {"status": "in-progress"}))
    run = CliRunner().invoke(app, ["explain", str(given), "--format", "fhir"])
    assert run.exit_code == 2 and "completed" not in run.stdout


@pytest.mark.parametrize("kind", ["administrative", "earlier", "clinical"])
def test_a_value_no_answer_gave_is_never_written_as_an_answer(kind: str) -> None:
    """Twelfth review, H1: a value the administrative record, an older form or the EHR gave
    (Patient.filled) is written with information-origin `auto`: read back it is to confirm,
    never a clinician's answer."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads(EXAMPLE.read_text())), RULES, "t")
    patient = dataclasses.replace(patient, filled=(Stated("sex", "male", "the EHR", kind),))
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    written = decision_response(patient, [decision], RULES)
    [sex] = [i for i in written["item"] if i["linkId"] == "sex"]
    assert sex.get("extension") == origin("auto"), sex
    assert [(s.field, s.kind) for s in validate(written, RULES, "t").filled] == [("sex", "prefilled")]


# -- twelfth review: a value no one confirmed decides nothing plainly, on any surface ---------------
def prefilled_form(record: dict[str, Any], auto: tuple[str, ...], policy: str = "hip-resurfacing") -> Any:
    """`record` as its policy's QuestionnaireResponse, the answers to `auto` pre-filled by the form
    filler from the EHR and left as they were (DTR's information-origin `auto`)."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(record, RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies[policy]])
    response = decision_response(patient, [decision], RULES)
    response.pop("extension")
    for item in response["item"]:
        if item["linkId"] in auto:
            item["extension"] = origin("auto")
    return response


UNCONFIRMED_CASES = [
    # (the record, the answers pre-filled and unchanged, what explain decides, its possible decisions)
    (changed(C6), ("sex", "conservative.months"), "eligible", ["eligible", "undetermined"]),
    (changed(C6, sex="female"), ("sex",), "not_eligible", ["not_eligible", "undetermined"]),
    # (a reading of C6 that dispenses with care would fund: contested as well)
    (
        changed(C6, conservative__months=2),
        ("conservative.months",),
        "not_eligible",
        ["eligible", "not_eligible", "undetermined"],
    ),
    (changed(C6), (), "eligible", ["eligible"]),  # every answer the clinician's: robust
]


@pytest.mark.parametrize(("record", "auto", "decision", "possible"), UNCONFIRMED_CASES)
def test_whatif_and_batch_weigh_an_unconfirmed_value_as_explain_does(
    whatif_of: Any, record: dict[str, Any], auto: tuple[str, ...], decision: str, possible: list[str]
) -> None:
    """Twelfth review, M1: what-if said 'Already eligible under every reading: nothing needs to
    change' (robust true) and a cohort line robust true where explain, for the same form, said
    not robust, resting on a sex pre-filled from the EHR. Every surface agrees with explain."""
    from llr_asp.engines.batch import iterate_decisions

    form = prefilled_form(record, auto)
    [explained] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert (explained.decision, list(explained.possible)) == (decision, possible)
    robust = len(possible) == 1
    answer = whatif_of(form)
    assert (answer.decision, answer.robust, list(answer.possible)) == (decision, robust, possible)
    assert (answer.to_json()["robust"], answer.to_json()["possible"]) == (robust, possible)
    [line] = list(iterate_decisions([form], policy="hip-resurfacing"))
    assert (line.to_json()["robust"], line.to_json()["possible"]) == (robust, possible)
    words = said(answer)
    if not robust:  # never 'under every reading', never the unconfirmed value as a fixed fact
        assert "under every reading" not in words and "confirm" in words, words
        assert not set(auto) & set(answer.to_json().get("cannot", {}).get("fixed", {})), answer.to_json()


def test_whatif_never_turns_a_patient_away_on_a_prefilled_sex(whatif_of: Any) -> None:
    """Twelfth review, M1: a pre-filled female sex with C6 met: explain says to confirm first that
    the procedure suits the patient; what-if said 'This procedure is not for the patient … (sex
    is female) … consider total hip replacement', the EHR's value as a fixed fact."""
    answer = whatif_of(prefilled_form(changed(C6, sex="female"), ("sex",)))
    json_said, words = answer.to_json(), said(answer)
    assert "sex" not in json_said["cannot"]["fixed"]
    assert json_said["cannot"]["to_confirm"] == {"sex": "female"}
    assert "This procedure is not for the patient" not in words, words
    assert "confirm" in words and "pre-filled from the EHR" in words, words
    # (eighteenth review, LOW: 'not met only on values no one has confirmed' said of a requirement
    # not met on the clinician's own answer; what rests on the unconfirmed value is any change)
    assert "is not met, and whether anything could change that rests on values no one has confirmed" in words


def next_step(page: str) -> str:
    """The words of a result page's 'What to do next', markup and spacing set aside."""
    import html
    import re

    found = re.search(r'<div class="next-step"[^>]*>(.*?)</div>', page, re.S)
    assert found is not None, page[:500]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


PAGE_CASES = [
    # (the record, the answers pre-filled and left as they were, what 'What to do next' must name)
    (changed(C6), ("sex", "conservative.months"), ("sex (male)", "conservative care (8)")),
    (changed(C6, sex="female"), ("sex",), ("sex (female)",)),
]


@pytest.mark.parametrize(("record", "auto", "named"), PAGE_CASES)
def test_the_pages_next_step_says_to_confirm_an_unconfirmed_value_first(
    client: TestClient, record: dict[str, Any], auto: tuple[str, ...], named: tuple[str, ...]
) -> None:
    """Twelfth review, M2: under the headline 'ELIGIBLE — resting on … pre-filled from the EHR,
    not yet confirmed: confirm it first', 'What to do next' said 'The patient meets the policy's
    criteria under every reading of its text' (and, for a pre-filled female sex with C6, 'does not
    meet …, under every reading … consider total hip replacement'). It says to confirm first,
    naming the values, and never 'under every reading' while the decision rests on them."""
    form = json.dumps(prefilled_form(record, auto))
    for page in (
        client.post("/record", data={"document": form}).text,
        client.post("/result", data={"record": form}).text,
    ):
        said = next_step(page)
        assert "under every reading" not in said, said
        assert "confirm" in said and "pre-filled from the EHR" in said, said
        assert all(n in said for n in named), said
    plain = json.dumps(prefilled_form(record, ()))  # the same answers, every one the clinician's
    assert "under every reading" in next_step(client.post("/record", data={"document": plain}).text)


ASKED_CASES = [
    # (the record, the answers pre-filled and left as they were, the question asked first, and the
    # answers a clinician gives at the terminal until nothing is left to ask)
    (changed(C6, sex="female"), ("sex",), "sex", ["female"]),
    (changed(C6, sex="female"), ("sex",), "sex", ["male"]),
    (changed(C6), ("sex", "conservative.months"), "sex", ["male", "8"]),
    (changed(C6, conservative__months=2), ("conservative.months",), "conservative.months", ["9"]),
    (changed(C6), (), None, []),  # every answer the clinician's: nothing to ask
]


@pytest.mark.parametrize(("record", "auto", "first", "answers"), ASKED_CASES)
def test_a_value_no_one_confirmed_that_decides_is_asked_first(
    tmp_path: Path, record: dict[str, Any], auto: tuple[str, ...], first: str | None, answers: list[str]
) -> None:
    """Twelfth review, M3: with a sex pre-filled from the EHR the only answer, `next` said 'Decided
    under every reading of the policy: nothing more to ask' (and $next-question completed) after no
    clinician answered anything: only missing, to_settle or disputed fields were asked. A value no
    one confirmed that the decision rests on is asked first, to confirm; the clinician's answer
    replaces it, and the questions end."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    form = prefilled_form(record, auto)
    [step] = Interviewer(RULES).next(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert (step.question.field if step.question else None) == first
    if first is not None:
        assert step.question is not None and "no one has confirmed" in " ".join(step.question.caveats)
    path = tmp_path / "form.json"
    path.write_text(json.dumps(form))
    shown = CliRunner().invoke(app, ["next", str(path)], env={"COLUMNS": "300"})
    assert shown.exit_code == 0 and ("nothing more to ask" in shown.stdout) == (first is None), shown.stdout
    ask = CliRunner().invoke(app, ["ask", "--from", str(path)], input="".join(f"{a}\n" for a in answers))
    assert ask.exit_code == 0, ask.stderr  # ended before the answers ran out
    assert "not yet confirmed" not in ask.stdout and "Question" not in ask.stdout, ask.stdout


@pytest.mark.parametrize("answer", ["female", "male"])
def test_the_page_interview_asks_a_prefilled_sex_and_the_answer_replaces_it(
    client: TestClient, answer: str
) -> None:
    """Twelfth review, M3 on the page: the pasted form's pre-filled sex is asked first (the result's
    'Confirm it now'), and the clinician's answer, kept in the form's own item, replaces the EHR's:
    the decision no longer rests on it (before, an answer to a pasted form was lost)."""
    form = json.dumps(prefilled_form(changed(C6, sex="female"), ("sex",)))
    asked = client.post("/ask", data={"record": form}).text
    assert 'name="field" value="sex"' in asked and "no one has confirmed" in asked, asked[-3000:]
    done = client.post("/ask", data={"record": form, "field": "sex", "answer": answer}).text
    assert "Decision" in done and "not yet confirmed" not in done and "no one has confirmed" not in done
    assert ("NOT ELIGIBLE" in done) == (answer == "female")


def test_next_question_never_completes_on_a_prefilled_sex_alone(client: TestClient) -> None:
    """Twelfth review, M3 in SDC's adaptive form: $next-question completed after zero clinician
    answers, the only answer a sex pre-filled from the EHR. It asks it to be confirmed; once the
    clinician changed it (DTR `override`), that answer is theirs and decides."""
    form = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing-adaptive",
        "item": [
            {"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}], "extension": origin("auto")}
        ],
    }
    reply = client.post("/fhir/Questionnaire/$next-question", json=form).json()
    assert reply["status"] == "in-progress", reply.get("contained")
    assert "no one has confirmed" in json.dumps(reply["contained"])
    # the question is asked afresh: one item for it in the form, the last, and no pre-filled answer
    # left in the response (a form filler keeping `auto` on an accepted value asked for ever)
    links = [i["linkId"] for i in reply["contained"][0]["item"] if i.get("type") != "display"]
    assert links.count("sex") == 1 and links[-1] == "sex", links
    assert [i for i in reply.get("item", []) if i["linkId"] == "sex"] == []
    answered = {
        **reply,
        "item": [*reply.get("item", []), {"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}]}],
    }
    again = client.post("/fhir/Questionnaire/$next-question", json=answered).json()
    assert again["status"] == "completed" and "not yet confirmed" not in json.dumps(again)  # the clinician's
    form["item"][0]["extension"] = origin("override")
    reply = client.post("/fhir/Questionnaire/$next-question", json=form).json()
    assert reply["status"] == "completed" and "not yet confirmed" not in json.dumps(reply)  # a plain refusal


# -- the thirteenth review's findings ------------------------------------------------------------


@pytest.mark.parametrize("status", [None, "draft", "preliminary", "in-progress"])
def test_a_form_that_is_not_finished_is_never_decided_plainly(client: TestClient, status: str | None) -> None:
    """Thirteenth review, MEDIUM: a response with no status, or one FHIR does not know (`draft`),
    was decided plainly by explain, the API and batch while the card set it aside as unfinished."""
    form = draft_of()
    if status is None:
        form.pop("status")
    else:
        form["status"] = status
    said = client.post("/api/v1/explain", json=form)
    assert said.status_code == 422 and "finish" in said.json()["error"], said.text
    assert "None" not in said.json()["error"]  # no Python words (fourteenth review, LOW)


@pytest.mark.parametrize("gender", ["other", "unknown", None])
def test_a_patient_record_that_gives_no_sex_is_said_not_compared(
    client: TestClient, gender: str | None
) -> None:
    """Thirteenth review, MEDIUM: a Patient with gender other, unknown or none gave a plain info
    'Meets ARP 55 criteria', while no Patient at all said the sex was not compared."""
    body = call("route-c1-pain", "male")
    if gender is None:
        body["prefetch"]["patient"].pop("gender")
    else:
        body["prefetch"]["patient"]["gender"] = gender
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Sex not compared with the EHR's (its record gives none)"), card[
        "summary"
    ]
    assert card["indicator"] == "warning" and "gives no sex to compare" in card["detail"]


def test_a_form_for_every_procedure_stays_one_through_explain_as_fhir(client: TestClient) -> None:
    """Thirteenth review, HIGH: the `all` form's answers, written by `explain -p hip --format fhir`,
    became a hip form: stored, the hip card lost its 'to confirm for this joint' and was a plain
    info 'Meets ARP 55 criteria'."""
    from llr_asp.formats.fhir import decision_response

    body = call("route-c1-pain", "male")
    form = body["prefetch"]["answers"]["entry"][0]["resource"]
    form["questionnaire"] = "urn:llr-asp:questionnaire:all"
    form["authored"] = "2026-11-01"
    patient = validate(form, RULES, "qr")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    written = decision_response(patient, [decision], RULES)
    assert written["questionnaire"] == "urn:llr-asp:questionnaire:all"
    body["prefetch"]["answers"]["entry"][0]["resource"] = {**written, "authored": "2026-11-02"}
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and "form for every procedure" in card["summary"], card["summary"]


def test_a_contested_headline_resting_on_unconfirmed_values_says_to_confirm_them_first() -> None:
    """Thirteenth review, MEDIUM: C5 resting on a contra-indication and a danger to independence
    pre-filled from the EHR read 'NOT ELIGIBLE ON THE ADOPTED READING — another reading of the
    policy would fund: ask the ICB', without 'confirm': a GP would go to the ICB on them."""
    from llr_asp.views.wording import headline

    form = prefilled_form(changed(C5), ("conservative.contraindicated", "independence.immediate_danger"))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    said = headline(decision)
    assert decision.contested and decision.unconfirmed, said
    assert said.startswith("NOT ELIGIBLE ON THE ADOPTED READING — first confirm "), said
    assert (
        "conservative management contra-indicated" in said
        and "another reading of the policy would fund" in said
    )


def test_whatif_names_what_an_urgent_route_rests_on_to_confirm(whatif_of: Any) -> None:
    """Thirteenth review, MEDIUM: C5 resting on values pre-filled from the EHR (the sex the
    clinician's): what-if said 'first confirm the procedure suits the patient', pointing at the
    sex, while explain, next and the card pointed at the pre-filled values."""
    from llr_asp.views.wording import withheld_words

    form = prefilled_form(changed(C5), ("conservative.contraindicated", "independence.immediate_danger"))
    said = withheld_words(whatif_of(form, "hip-resurfacing"), RULES) or ""
    assert "suits the patient" not in said, said
    assert "first confirm conservative management contra-indicated (yes, from " in said, said
    assert "conservative.contraindicated" not in said, said  # by its label, never its path


# -- the fourteenth review's findings ------------------------------------------------------------


def test_an_urgent_route_on_unconfirmed_facts_is_to_confirm_even_where_the_procedure_does_not_suit(
    client: TestClient,
) -> None:
    """Fourteenth review, HIGH: a woman (the clinician's answer) whose C6 rested only on a
    destruction risk pre-filled from the EHR was told, with no doubt, that the urgency stands for
    another procedure ('refer for the one indicated now'), robust, with nothing more to ask."""
    from llr_asp.views.wording import urgent_note
    from llr_asp.web.cards import card

    form = prefilled_form(changed(C6, sex="female"), ("joint.destruction_risk",))
    patient = validate(form, RULES, "t")
    [step] = Interviewer(RULES).next(patient, [RULES.policies["hip-resurfacing"]])
    decision = step.decision
    assert decision.urgent_json()["action"] == "unsuitable"
    assert decision.urgent_json()["to_confirm"] == ["joint.destruction_risk"]
    note = urgent_note(decision) or ""
    assert "first confirm at risk of joint destruction" in note and "do not refer for it" in note, note
    assert step.question is not None and step.question.field == "joint.destruction_risk"
    assert "urgent route rests on it" in " ".join(step.question.caveats)
    summary = card(decision, RULES, "http://x")["summary"]
    assert summary.startswith("Urgent (C6) on a value to confirm, but not this procedure"), summary


def test_an_urgent_route_on_unconfirmed_facts_is_named_while_suitability_is_open() -> None:
    """Fourteenth review, MEDIUM: with the knee's compartments not known, a C6 resting on a
    destruction risk pre-filled from the EHR said only 'first confirm the procedure suits the
    patient … If it does, ask the ICB now'; the card the same."""
    from llr_asp.views.wording import urgent_note
    from llr_asp.web.cards import card

    record = changed(C6)
    record.pop("knee")
    form = prefilled_form(record, ("joint.destruction_risk",), policy="knee-resurfacing")
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["knee-resurfacing"]])
    note = urgent_note(decision) or ""
    assert (
        "first confirm the procedure suits the patient" in note and "at risk of joint destruction" in note
    ), note
    summary = card(decision, RULES, "http://x")["summary"]
    assert summary.startswith("Urgent (C6): confirm its facts and that the procedure suits first"), summary


# -- the fifteenth review's findings -------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "auto", "action"),
    [
        (
            changed(C6, conservative__months=2, msk__suitable_for_surgical_referral=False),
            ("msk.suitable_for_surgical_referral",),
            "refused",
        ),
        (changed(C6), ("msk.end_stage_oa",), "refer"),
    ],
)
def test_an_urgent_action_resting_on_unconfirmed_values_says_to_confirm_them_first(
    record: dict[str, Any], auto: tuple[str, ...], action: str
) -> None:
    """Fifteenth review, MEDIUM: a C6 patient refused ('whatever the ICB is asked') or told 'refer
    without delay' only on an MSK finding pre-filled from the EHR: the urgent line, the card and
    the urgent JSON never said to confirm it."""
    from llr_asp.views.wording import urgent_note
    from llr_asp.web.cards import card

    form = prefilled_form(record, auto)
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    said = decision.urgent_json()
    assert said["action"] == action and said["to_confirm"] == list(auto), said
    note = urgent_note(decision) or ""
    assert f"first confirm {RULES.fields[auto[0]].name.lower()}" in note.lower(), note
    assert auto[0] not in note, note  # the field in words, never its JSON path (seventeenth review)
    summary = card(decision, RULES, "http://x")["summary"]
    assert summary.startswith("Urgent (C6): first confirm the values below"), summary


def test_a_contested_headline_on_disputed_sources_says_to_settle_them_first() -> None:
    """Fifteenth review, MEDIUM: contested, with the sources disagreeing on the sex: 'another
    reading of the policy would fund: ask the ICB', no word of settling the sex first."""
    from llr_asp.core.sources import Conflict
    from llr_asp.views.wording import headline

    patient = validate(changed(C6, conservative__months=2, sex=None), RULES, "t")
    conflict = Conflict(
        "sex",
        (Stated("sex", "female", "the form", "answer"), Stated("sex", "male", "the EHR", "administrative")),
    )
    patient = dataclasses.replace(patient, conflicts=(conflict,))
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    said = headline(decision)
    assert decision.contested and decision.disputed, said
    assert "first settle sex (the sources disagree)" in said, said


# -- the sixteenth review's findings -------------------------------------------------------------


@pytest.mark.parametrize(
    "marked",
    [
        "two marks, manual then auto",  # ambiguous: read as pre-filled
        "AUTO",  # a code in capitals
        "auto on the group",  # the mark on the item that holds the question
    ],
)
def test_a_prefilled_mark_anywhere_the_reader_finds_it_is_heard(marked: str) -> None:
    """Sixteenth review, MEDIUM: a pre-filled sex was read as the clinician's where its mark sat on
    the enclosing group, was coded 'AUTO', or followed a 'manual' mark: a plain NOT ELIGIBLE."""
    form = prefilled_form(changed(C6, sex="female"), ())
    [sex] = [i for i in form["item"] if i["linkId"] == "sex"]
    if marked.startswith("two"):
        sex["extension"] = origin("manual") + origin("auto")
    elif marked == "AUTO":
        sex["extension"] = origin("AUTO")
    else:
        form["item"] = [i for i in form["item"] if i["linkId"] != "sex"]
        form["item"].append({"linkId": "about", "extension": origin("auto"), "item": [sex]})
    assert [(s.field, s.kind) for s in validate(form, RULES, "t").filled] == [("sex", "prefilled")]


def test_an_explicit_mark_on_the_question_beats_its_groups() -> None:
    form = prefilled_form(changed(C6, sex="female"), ())
    [sex] = [i for i in form["item"] if i["linkId"] == "sex"]
    sex["extension"] = origin("override")
    form["item"] = [i for i in form["item"] if i["linkId"] != "sex"]
    form["item"].append({"linkId": "about", "extension": origin("auto"), "item": [sex]})
    assert validate(form, RULES, "t").filled == ()


def test_an_urgent_referral_waits_for_a_newer_form_in_progress_to_be_read(client: TestClient) -> None:
    """Sixteenth review, MEDIUM: a newer form still in progress answering 'female' left an older
    man's C6 card at 'Urgent (C6): refer without delay', robust."""
    female = {"valueCoding": {"code": "female"}}
    body = two_responses({"sex": female}, {})
    for entry in body["prefetch"]["answers"]["entry"]:
        entry["resource"]["item"] = [
            i for i in entry["resource"]["item"] if i["linkId"] != "joint.destruction_risk"
        ]
        entry["resource"]["item"].append(
            {"linkId": "joint.destruction_risk", "answer": [{"valueBoolean": True}]}
        )
    body["prefetch"]["answers"]["entry"][0]["resource"]["status"] = "in-progress"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.robust"] is False
    assert card["summary"].startswith("Urgent (C6): read the newer form in progress first"), card["summary"]


# -- seventeenth review ---------------------------------------------------------------------------
def _retagged(response: dict[str, Any], family: str) -> dict[str, Any]:
    """`response` as a knee form resumed under the hip's canonical: llr-asp's tag and a contained
    adaptive form derived from `family`'s questionnaire, its canonical left as it was."""
    return response | {
        "meta": {"tag": [{"system": "urn:llr-asp:questionnaire", "code": family}]},
        "contained": [
            {
                "resourceType": "Questionnaire",
                "id": "adaptive",
                "status": "active",
                "derivedFrom": [f"urn:llr-asp:questionnaire:{family}-adaptive"],
            }
        ],
    }


def test_a_response_whose_canonical_tag_and_form_name_two_procedures_decides_neither(
    client: TestClient,
) -> None:
    """Seventeenth review, HIGH: a knee form (its tag and contained form the knee's) resumed
    under the hip's canonical decided a hip order 'Meets ARP 55 criteria', robust, on the API and
    a card, where $next-question refused it. Every place that names a questionnaire must agree:
    refused (exit 2's one line) by explain and the API, set aside (and said) on a card."""
    from llr_asp.core.documents import procedure_of
    from llr_asp.core.errors import InputError

    body = call("route-c1-pain", "male")
    answers = body["prefetch"]["answers"]["entry"][0]
    answers["resource"] = _retagged(answers["resource"], "knee-resurfacing")
    with pytest.raises(InputError, match=r"meta\.tag\[0\] knee-resurfacing"):
        validate(answers["resource"], RULES, "t")
    assert procedure_of(_retagged(answers["resource"], "hip-resurfacing")) == "hip-resurfacing"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["extension"]["llr-asp.decision"] == "undetermined", card["summary"]
    assert "set aside" in card["detail"], card["detail"][:400]


def test_this_procedures_own_older_answer_is_heard_beside_the_shared_forms_newer_one(
    client: TestClient,
) -> None:
    """Seventeenth review, HIGH: the hip's own form of June answered 'at risk of joint destruction:
    yes' (C6); November's form for every procedure (which may describe another joint) said no.
    The card read 'Does not meet ARP 55', the hip's yes named nowhere, no urgency. The two
    disagree: named, and the route may be met ('Maybe urgent (C6)'). Where they agree, or the
    newer answer is this procedure's own, the newer decides as before."""
    yes, no = {"valueBoolean": True}, {"valueBoolean": False}
    for newer, older, conflict in ((no, yes, True), (yes, yes, False), (no, no, False)):
        changes = ({"joint.destruction_risk": newer}, {"joint.destruction_risk": older})
        body = two_responses(*changes, example="route-c6-destruction-risk")
        body["prefetch"]["answers"]["entry"][0]["resource"]["questionnaire"] = "urn:llr-asp:questionnaire:all"
        [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
        disputed = [c["field"] for c in card["extension"].get("llr-asp.conflicts", [])]
        assert disputed == (["joint.destruction_risk"] if conflict else []), card["summary"]
        if conflict:
            assert card["summary"].startswith(
                "Maybe urgent (C6): find out now. Sources disagree on at risk"
            ), card["summary"]
            assert "the ARP 55 answers of 2026-06-01: yes" in card["detail"], card["detail"]
    own = two_responses(  # both the hip's own
        {"joint.destruction_risk": no}, {"joint.destruction_risk": yes}, "route-c6-destruction-risk"
    )
    [card] = client.post(HIP, json=own, headers=auth(HIP)).json()["cards"]
    assert "llr-asp.conflicts" not in card["extension"], card["summary"]


@pytest.mark.parametrize(
    ("field", "newer", "older", "disagree"),
    [
        ("sex", {"valueCoding": {"code": "male"}}, {"valueCoding": {"code": "female"}}, True),
        ("conservative.contraindicated", {"valueBoolean": False}, {"valueBoolean": True}, False),
    ],
)
def test_a_fact_answered_otherwise_on_an_older_form_is_a_disagreement_unless_it_may_change(
    client: TestClient, field: str, newer: dict[str, Any], older: dict[str, Any], disagree: bool
) -> None:
    """Seventeenth review, MEDIUM: June's form said female, November's male: 'Meets ARP 55
    criteria', robust, June's female named nowhere. A sex does not change from form to form; a
    contra-indication may begin or end (changes/2 in rules/fields.lp), so a newer answer of it
    stands."""
    body = two_responses({field: newer}, {field: older})
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    disputed = [c["field"] for c in card["extension"].get("llr-asp.conflicts", [])]
    assert disputed == ([field] if disagree else []), card["summary"]
    assert (card["indicator"] != "info" and not card["extension"]["llr-asp.robust"]) if disagree else True


@pytest.mark.parametrize(("newer", "older", "disagree"), [(2, 3, True), (3, 2, False)])
def test_fewer_knee_compartments_than_an_older_form_is_a_disagreement_more_is_the_disease(
    knee_client: TestClient, newer: int, older: int, disagree: bool
) -> None:
    """Seventeenth review, MEDIUM: 3 compartments in June, 2 in November: 'info', eligible. Arthritis
    spreads (changes(…, rising)); it does not withdraw: fewer is asked, more supersedes."""
    knee = "/cds-services/knee-resurfacing-order-select"
    body = two_responses(
        {"knee.compartments_affected": {"valueInteger": newer}},
        {"knee.compartments_affected": {"valueInteger": older}},
    )
    for entry in body["prefetch"]["answers"]["entry"]:
        entry["resource"]["questionnaire"] = KNEE_FORM
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"]["coding"] = [KNEE_CODE]
    [card] = knee_client.post(knee, json=body, headers=auth(knee)).json()["cards"]
    disputed = [c["field"] for c in card["extension"].get("llr-asp.conflicts", [])]
    assert disputed == (["knee.compartments_affected"] if disagree else []), card["summary"]


def test_a_form_dated_ahead_of_today_never_outranks_a_clinicians_newest_answer(client: TestClient) -> None:
    """Seventeenth review, MEDIUM: a form dated 2031 that said male outranked last week's female
    answer: 'Urgent (C6): refer without delay. Meets ARP 55 criteria', robust. A date still to
    come is no date: taken as new as the newest, so the two disagree (asked)."""
    female, male = {"valueCoding": {"code": "female"}}, {"valueCoding": {"code": "male"}}
    body = two_responses({"sex": male}, {"sex": female})
    body["prefetch"]["answers"]["entry"][0]["resource"]["authored"] = "2031-01-01T09:00:00Z"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert [c["field"] for c in card["extension"]["llr-asp.conflicts"]] == ["sex"], card["summary"]
    assert "a date still to come" in card["detail"] and card["indicator"] != "info"


def test_answers_older_than_the_icb_allows_are_to_confirm(client: TestClient) -> None:
    """Seventeenth review, MEDIUM: answers of ten years ago gave 'info', robust: 'Meets ARP 55
    criteria'. Past answers_current_for/1 (twelve months, rules/llr_icb.lp) they are named with
    their date, to confirm, and the card is never robust; a year's answers decide as before."""
    for authored, stale in (("2025-12-01T09:00:00Z", True), ("2026-01-01T09:00:00Z", False)):
        body = call("route-c1-pain", "male")
        body["prefetch"]["answers"]["entry"][0]["resource"]["authored"] = authored
        [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
        assert card["extension"]["llr-asp.robust"] is not stale, card["summary"]
        if stale:
            said = rf"\d+ answers from the ARP 55 answers of {authored[:10]}\b.*: confirm\. Meets ARP 55"
            assert re.match(said, card["summary"]), card["summary"]


def test_a_failed_answers_search_is_named_as_the_answers_not_the_record(client: TestClient) -> None:
    """Seventeenth review, LOW: an OperationOutcome for the answers search read 'the EHR could not
    fetch the patient's record' though the Patient was fetched."""
    body = call("route-c1-pain", "male")
    body["prefetch"]["answers"] = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].endswith("the EHR could not fetch the patient's answers"), card["summary"]


# -- the seventeenth review's findings -----------------------------------------------------------
# F6: a set that is reached only if the patient, so changed, meets an urgent route (C5, C6) and
# that waits for more conservative care (B) was offered, with "may meet C6 (not yet known)".
C6_MAY_SHORT = {  # the review's repro: a man, three months of care, destruction risk not known
    "id": "c6_mayrisk_short",
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 3, "documented": True, "failed": True, "contraindicated": False},
    "pain": {"severity": "mild", "persistent": False},
    "function": {
        "impairment": "mild",
        "prevents_work_or_education": False,
        "prevents_domestic_or_carer": False,
    },
    "joint": {"instability": "none"},
    "radiology": {"severity": "mild"},
    "independence": {"immediate_danger": False, "replacement_would_relieve": False},
    "knee": {"compartments_affected": 2},
}
C1_MET = {"pain__severity": "severe", "pain__persistent": True, "function__impairment": "moderate"}
PERSISTENT = "“Is the patient's pain persistent?”"
RISK = "“Is the joint at risk of destruction so severe that delaying surgery would increase its technical difficulty?”"
WITHHOLDING = [
    # (case, record, the route withheld, its action, words it must say, the sets' fields)
    (
        "C6 may meet, care short (the repro): no set adds care, the step named",
        C6_MAY_SHORT,
        "C6",
        "find out",
        [f"find out now {RISK}; if the answer meets C6, ask the ICB now", "May meet an urgent route (C6"],
        [],
    ),
    (
        "C5 may meet (pain persistent not known), care failed not known: the set that answers both is "
        "withheld; C3 on radiology, which leaves C5 unknown, is kept",
        changed(C5, conservative__months=6, pain__persistent=None, conservative__failed=False),
        "C5",
        "find out",
        [f"find out now {PERSISTENT}; if the answer meets C5, ask the ICB now"],
        [["conservative.failed", "radiology.severity"]],
    ),
    (
        "C6 may meet, care done: the set that answers it waits for no care, and is offered",
        {**C6_MAY_SHORT, "conservative": {**C6_MAY_SHORT["conservative"], "months": 6}},
        None,
        None,
        [f"Eligible if you find out {RISK} and the answer is yes"],
        [["joint.destruction_risk"]],
    ),
    (
        "C6 met, care short: no care set (kept as it was)",
        changed(C6, conservative__months=2),
        "C6",
        "ask",
        ["Meets an urgent route (C6", "— ask the ICB now"],
        [],
    ),
    (
        "not urgent (C1 met, no destruction risk), care short: the care set is offered",
        changed(C6, conservative__months=3, joint__destruction_risk=False, **C1_MET),
        None,
        None,
        ["Eligible if conservative care went from 3 months to 6 months"],
        [["conservative.months"]],
    ),
    (
        "C1 met, destruction risk not known, care short: so changed, C6 is still not known: the care "
        "set is offered, with the caution",
        changed(C6, conservative__months=3, joint__destruction_risk=None, **C1_MET),
        None,
        None,
        ["may meet C6 (not yet known)"],
        [["conservative.months"]],
    ),
    (
        "no destruction risk, care short, nothing else near: the set that needs the joint at risk is "
        "withheld, and what to do should it be",
        changed(
            C6,
            conservative__months=3,
            joint__destruction_risk=False,
            pain__severity="mild",
            pain__persistent=False,
            function__impairment="mild",
            radiology__severity="mild",
        ),
        "C6",
        "if met",
        ["should the patient come to meet C6, ask the ICB now"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("record", "route", "action", "words", "sets"),
    [case[1:] for case in WITHHOLDING],
    ids=[case[0].split(":")[0] for case in WITHHOLDING],
)
def test_no_set_waits_for_care_that_the_changed_patient_need_not_wait_for(
    whatif_of: Any,
    record: dict[str, Any],
    route: str | None,
    action: str | None,
    words: list[str],
    sets: list[Any],
) -> None:
    """Seventeenth review, F6 (MEDIUM): every set offered, applied, is one in which the patient
    meets no urgent route while a change waits for the care it says not to wait for; what is
    withheld is named with the route's own step, never 'no change can make the patient eligible'."""
    policy = RULES.policies["hip-resurfacing"]
    answer = whatif_of(record)
    assert (answer.withheld, answer.advice) == (route, action)
    assert [[c.field for c in s] for s in answer.counterfactuals] == sets
    waited = {field for rid in policy.cautions for field in policy.tested_below(rid)}
    patient = validate(record, RULES, "t")
    for changes in answer.counterfactuals:  # applied, the changed patient is not urgent, or waits for nothing
        values = {**patient.values, **{c.field: c.after for c in changes}}
        [decision] = Reasoner(RULES).decide(dataclasses.replace(patient, values=values), [policy])
        status = {n.id: n.status for n in decision.tree.walk()}
        urgent = {u for routes in policy.cautions.values() for u in routes if status[u] == "met"}
        assert not (urgent and waited & {c.field for c in changes}), (urgent, changes)
    text = said(answer)
    for word in words:
        assert word in text, text
    assert "no change to the record can make the patient eligible" not in text
    if route is not None:
        assert answer.to_json()["withheld"]["action"] == action


def test_a_standalone_whatif_names_what_to_confirm_inline(tmp_path: Path, client: TestClient) -> None:
    """Seventeenth review, F10 (LOW): a standalone what-if said 'first confirm the procedure suits
    the patient (see the urgent line above)', with no urgent line above it. It names the fact, by
    its label, never a field's path, at the terminal, on the page and the same words everywhere."""
    from typer.testing import CliRunner

    from llr_asp.cli import app

    record = {
        **C6_MAY_SHORT,
        "id": "c6_sexunk_short",
        "sex": None,
        "joint": {"instability": "none", "destruction_risk": True},
    }
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["whatif", str(path), "-p", "hip-resurfacing"], env={"COLUMNS": "400"})
    terminal = " ".join(result.stdout.split())
    page = " ".join(
        html.unescape(
            client.post("/result", data={"record": json.dumps(record), "policy": "hip-resurfacing"}).text
        ).split()
    )
    first = (
        "no change that waits for more conservative care is offered — first confirm sex (not known; not "
        "female: the procedure is contra-indicated in women); if the procedure suits the patient, ask the ICB now."
    )
    for text in (terminal, page):
        assert first in text, text
    assert "urgent line above" not in terminal + page
    assert "joint.destruction_risk" not in terminal


# -- eighteenth review ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("newest", "summary"),
    [
        # the newest hip form's 'no' pre-filled from the EHR, left as it was: the EHR's against
        # the clinician's earlier 'yes': they disagree
        ({"valueBoolean": False}, "Maybe urgent (C6): find out now. Sources disagree on at risk"),
        # the newest hip form leaves it blank: the earlier 'yes' is heard, to confirm
        (None, "Urgent (C6): confirm what the urgency rests on first. At risk of joint destruction"),
    ],
)
def test_a_clinicians_earlier_yes_is_never_lost_behind_a_newer_form_that_does_not_answer_it(
    client: TestClient, newest: dict[str, Any] | None, summary: str
) -> None:
    """Eighteenth review, HIGH: June's hip form answered 'at risk of joint destruction: yes' (C6,
    two months of care); November's left it blank, or held the EHR's 'no' pre-filled and left as
    it was. The card read NOT ELIGIBLE (or 'not known'), no urgency, the 'yes' named nowhere.
    An older form's answer is heard wherever no clinician answered it on the newest form."""
    answer = None
    if newest is not None:
        answer = {"valueBoolean": newest["valueBoolean"], "extension": origin("auto")}
    body = two_responses(
        {"joint.destruction_risk": answer},
        {"joint.destruction_risk": {"valueBoolean": True}},
        "route-c6-destruction-risk",
    )
    for entry in body["prefetch"]["answers"]["entry"]:
        items = {i["linkId"]: i for i in entry["resource"]["item"]}
        two = {"value": 2, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"}
        items["conservative.months"] = {"linkId": "conservative.months", "answer": [{"valueQuantity": two}]}
        entry["resource"]["item"] = list(items.values())
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith(summary), card["summary"]
    assert (
        "2026-06-01: yes" in card["detail"] or "yes, from the ARP 55 answers of 2026-06-01" in card["detail"]
    )
    assert not card["extension"]["llr-asp.robust"]


def test_an_urgent_patient_refused_on_a_whatever_the_sex_is_told_so_not_to_confirm_the_sex() -> None:
    """Eighteenth review, MEDIUM: C6 met, sex not known, MSK found no end-stage osteoarthritis:
    robust NOT ELIGIBLE on A, yet every surface said 'first confirm the procedure suits the
    patient … If it does, ask the ICB now'. A refuses it whatever the sex: `refused`, the
    urgency standing for the care indicated instead. (A woman by the EHR's gender alone, B short,
    is still to confirm: the sixth review's test.)"""
    from llr_asp.views.wording import urgent_note

    record = changed(C6, sex=None, msk__end_stage_oa=False)
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.urgent_json()["action"] == "refused", decision.urgent_json()
    note = urgent_note(decision) or ""
    assert "is not met under any reading" in note and "ask the ICB now" not in note, note


def test_answers_older_than_the_icb_allows_are_to_confirm_on_every_surface(client: TestClient) -> None:
    """Eighteenth review, MEDIUM: a hip form of 2016 was a plain ELIGIBLE, robust, everywhere but
    a CDS card. Past answers_current_for/1 (rules/llr_icb.lp) its answers are to confirm, named
    by their date, on explain, the API and the page alike; a form of this year decides as before."""
    from llr_asp.views.wording import headline

    form = prefilled_form(changed(C6), ())
    for authored, robust in (("2016-01-01", False), ("2026-06-01", True)):
        dated = form | {"authored": authored}
        [decision] = Reasoner(RULES).decide(validate(dated, RULES, "t"), [RULES.policies["hip-resurfacing"]])
        assert decision.robust is robust, decision.possible
        answer = client.post("/api/v1/explain?policy=hip-resurfacing", json=dated).json()
        assert answer["robust"] is robust and answer["decision"] == "eligible"
        if not robust:
            assert {s["date"] for s in answer["filled"]} == {authored}
            assert re.search(
                r"resting on \d+ answers from the ARP 55 answers of 2016-01-01", headline(decision)
            )


def with_third_form(body: dict[str, Any], authored: str | None, at_risk: bool) -> dict[str, Any]:
    """`two_responses`' call with a third form, a copy of its older one dated `authored` (None: no
    date), answering 'at risk of joint destruction' `at_risk`."""
    third = copy.deepcopy(body["prefetch"]["answers"]["entry"][1])
    third["resource"].pop("authored")
    if authored is not None:
        third["resource"]["authored"] = authored
    for item in third["resource"]["item"]:
        if item["linkId"] == "joint.destruction_risk":
            item["answer"] = [{"valueBoolean": at_risk}]
    body["prefetch"]["answers"]["entry"].append(third)
    return body


def test_of_the_older_forms_the_most_recent_answer_is_heard(client: TestClient) -> None:
    """Where the newest form leaves a finding blank, the most recent older answer is the one to
    confirm: September's 'no' after June's 'yes' (a clinician's later answer), never both as a
    disagreement among forms the newest superseded."""
    body = two_responses(
        {"joint.destruction_risk": None}, {"joint.destruction_risk": {"valueBoolean": False}}
    )
    with_third_form(body, "2026-01-01T09:00:00Z", True)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert "llr-asp.conflicts" not in card["extension"], card["extension"]["llr-asp.conflicts"]
    filled = [f for f in card["extension"]["llr-asp.filled"] if f["field"] == "joint.destruction_risk"]
    assert [(f["value"], f["date"][:10]) for f in filled] == [(False, "2026-06-01")], filled


def test_the_urgent_lines_words_name_what_refuses_and_ask_what_is_not_known(
    whatif_of: Any,
) -> None:
    """Eighteenth review, LOW: a standalone what-if said 'refused on another requirement … (see
    above)' with nothing above; 'find out now (conservative management is contra-indicated)'
    read as a statement of fact."""
    from llr_asp.views.wording import urgent_note, withheld_words

    said = withheld_words(whatif_of(changed(C6, msk__end_stage_oa=False)), RULES) or ""
    assert "A (assessed by MSK Services" in said and "see above" not in said, said
    record = changed(C5, conservative__months=3, conservative__contraindicated=None)
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision) or ""
    assert "(conservative management is contra-indicated: not yet known)" in note, note


# -- nineteenth review ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "then"),
    [
        ({"msk.assessed": {"valueBoolean": False}}, "first, now: assessed by Musculoskeletal Services"),
        (
            {"msk.end_stage_oa": {"valueBoolean": False}},
            "the urgency stands for the care indicated instead: A (",
        ),
        ({"sex": {"valueCoding": {"code": "female"}}}, "the urgency is for the procedure indicated instead"),
    ],
)
def test_a_route_a_source_says_is_met_is_maybe_urgent_whatever_else_the_patient_stands_on(
    client: TestClient, changes: dict[str, Any], then: str
) -> None:
    """Nineteenth review, HIGH: June's 'at risk of joint destruction: yes' against November's 'no'
    pre-filled from the EHR, for a patient not yet assessed, refused on A, or a woman: 'Does not
    meet ARP 55', robust, no urgent line, the conflict in the extension alone (the decision did
    not turn on it). Maybe urgent, with what it asks as the patient stands."""
    body = two_responses(
        {"joint.destruction_risk": {"valueBoolean": False, "extension": origin("auto")}, **changes},
        {"joint.destruction_risk": {"valueBoolean": True}, **changes},
        "route-c6-destruction-risk",
    )
    if "sex" in changes:  # a woman by every source
        body["prefetch"]["patient"]["gender"] = "female"
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Maybe urgent (C6): find out now."), card["summary"]
    line = next(b for b in card["detail"].split("\n\n") if "May meet an urgent route (C6" in b)
    assert then in line, line
    assert "ask the ICB without waiting" not in line or then.startswith("first, now"), line


@pytest.mark.parametrize(
    ("newest", "summary"), [(None, "Urgent (C6): confirm"), (False, "Maybe urgent (C6)")]
)
def test_an_older_shared_forms_joint_answer_is_heard_as_one_to_confirm(
    client: TestClient, newest: bool | None, summary: str
) -> None:
    """Nineteenth review, HIGH: June's form for every procedure said 'at risk of joint destruction:
    yes'; November's hip form left it blank (or held the EHR's 'no', pre-filled): no urgency, the
    'yes' nowhere. It is heard as the shared form's answer (it may be another joint's): to
    confirm, or a disagreement."""
    answer = None if newest is None else {"valueBoolean": newest, "extension": origin("auto")}
    body = two_responses(
        {"joint.destruction_risk": answer},
        {"joint.destruction_risk": {"valueBoolean": True}},
        "route-c6-destruction-risk",
    )
    body["prefetch"]["answers"]["entry"][1]["resource"]["questionnaire"] = "urn:llr-asp:questionnaire:all"
    for entry in body["prefetch"]["answers"]["entry"]:
        two = {"value": 2, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"}
        items = {i["linkId"]: i for i in entry["resource"]["item"]}
        items["conservative.months"] = {"linkId": "conservative.months", "answer": [{"valueQuantity": two}]}
        entry["resource"]["item"] = list(items.values())
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith(summary), card["summary"]
    assert "the form for every procedure of 2026-06-01" in card["detail"], card["detail"][:600]


def test_a_route_on_an_unconfirmed_fact_of_a_patient_refused_on_a_is_refused_after_confirming_it() -> None:
    """Nineteenth review, MEDIUM: not end-stage (A refused under every reading), 'at risk of joint
    destruction' pre-filled from the EHR: 'first confirm … If it holds, ask the ICB now' for a
    procedure A refuses. Confirm it, and if it holds, the urgency stands for the care instead."""
    from llr_asp.views.wording import urgent_note

    form = prefilled_form(changed(C6, msk__end_stage_oa=False), ("joint.destruction_risk",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.urgent_json()["action"] == "refused", decision.urgent_json()
    note = urgent_note(decision) or ""
    assert "first confirm at risk of joint destruction" in note and "ask the ICB now" not in note, note
    assert "is not met under any reading: this procedure is refused" in note, note
    from llr_asp.web.cards import card

    summary = card(decision, RULES, "http://x")["summary"]
    assert summary.startswith("Urgent (C6): first confirm the values below, then refused"), summary


def test_an_answer_given_on_the_page_to_an_old_form_is_heard_as_given_today(client: TestClient) -> None:
    """Nineteenth review, MEDIUM: on the page, a form of 2025 (older than answers_current_for/1)
    asked 'What is the patient's sex?' again and again: the answer went into the old form and
    took its date. An answer the page adds carries its own date (urn:llr-asp:answered): heard as
    given today, the next value to confirm asked."""
    stale = prefilled_form(changed(C6), ()) | {"authored": "2025-06-01"}
    form = {"record": json.dumps(stale), "policy": "hip-resurfacing", "field": "sex", "answer": "male"}
    page = client.post("/ask", data=form | {"trail": "sex"}).text
    record = json.loads(html.unescape(re.search(r'name="record" value="([^"]*)"', page).group(1)))
    [sex] = [i for i in record["item"] if i["linkId"] == "sex"]
    assert sex["extension"][0]["url"] == "urn:llr-asp:answered", sex
    patient = validate(record, RULES, "t")
    assert "sex" not in {s.field for s in patient.filled}, patient.filled
    assert len(patient.filled) == len(validate(stale, RULES, "t").filled) - 1


# -- twentieth review -----------------------------------------------------------------------------
def test_a_prefilled_or_shared_value_on_a_form_between_hides_no_clinicians_older_answer(
    client: TestClient,
) -> None:
    """Twentieth review, HIGH: November's and October's hip forms held the EHR's 'no', pre-filled
    and left as it was; June's a clinician's 'yes'. Of the older forms only the most recent answer
    was heard, October's pre-filled 'no' (named as 'the ARP 55 answers'): no conflict, no urgency.
    A pre-filled or shared value hides no clinician's answer, and is named as what it is."""
    no = {"valueBoolean": False, "extension": origin("auto")}
    body = two_responses(
        {"joint.destruction_risk": no}, {"joint.destruction_risk": no}, "route-c6-destruction-risk"
    )
    with_third_form(body, "2026-02-01T09:00:00Z", True)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Maybe urgent (C6): find out now."), card["summary"]
    [conflict] = card["extension"]["llr-asp.conflicts"]
    said = {(v["value"], v["source"]) for v in conflict["values"]}
    assert (True, "the ARP 55 answers") in said, said
    assert (False, "the ARP 55 answers pre-filled from the EHR") in said
    assert (False, "the ARP 55 answers") not in said, said  # never named as a clinician's answer
    prefilled_on = sorted(v["date"][:10] for v in conflict["values"] if "pre-filled" in v["source"])
    assert prefilled_on == ["2026-06-01", "2026-11-01"], conflict  # the form between named too


def test_an_unassessed_patients_urgency_on_an_unconfirmed_value_is_to_confirm_first() -> None:
    """Twentieth review, MEDIUM: not yet assessed by MSK, 'at risk of joint destruction' only
    pre-filled from the EHR: 'Meets an urgent route … first, now: assessed by MSK. Then ask the
    ICB', the card 'Urgent (C6): first assessed …', robust. Confirm it first; if it holds, the
    assessment, then the ICB."""
    from llr_asp.views.wording import urgent_note
    from llr_asp.web.cards import card

    form = prefilled_form(changed(C6, msk__assessed=False), ("joint.destruction_risk",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.urgent_json()["action"] == "confirm", decision.urgent_json()
    note = urgent_note(decision) or ""
    assert "first confirm at risk of joint destruction" in note, note
    assert "If it holds, first, now: assessed by Musculoskeletal Services; then ask the ICB" in note, note
    assert card(decision, RULES, "http://x")["summary"].startswith(
        "Urgent (C6): confirm what the urgency rests on"
    )


@pytest.mark.parametrize(
    ("given", "robust"), [("unknown", False), ("2099-01-01", False), ("2026-12-01", True)]
)
def test_an_answers_own_date_counts_only_when_it_can_be_its_date(given: str, robust: bool) -> None:
    """Twentieth review, LOW: a 2016 form whose answers said they were given on 'unknown' or in
    2099 was a plain ELIGIBLE; and a current form's answer dated 2015 was current. An answer's own
    date counts where it is a date not ahead of today; otherwise the form's."""
    stale = prefilled_form(changed(C6), ()) | {"authored": "2016-01-01"}
    for item in stale["item"]:
        item["extension"] = [{"url": "urn:llr-asp:answered", "valueDateTime": given}]
    [decision] = Reasoner(RULES).decide(validate(stale, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert decision.robust is robust, decision.possible
    current = prefilled_form(changed(C6), ()) | {"authored": "2026-11-01"}
    for item in current["item"]:
        item["extension"] = [{"url": "urn:llr-asp:answered", "valueDateTime": "2015-01-01"}]
    [decision] = Reasoner(RULES).decide(validate(current, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert not decision.robust and decision.filled[0].date == "2015-01-01"


# -- twenty-first review --------------------------------------------------------------------------
@pytest.mark.parametrize("authored", [None, "2027-10-01T09:00:00Z"])
def test_a_form_whose_date_cannot_be_told_hides_no_older_answer(
    client: TestClient, authored: str | None
) -> None:
    """Twenty-first review, HIGH: November's form left 'at risk of joint destruction' blank; a form
    with no date (or dated 2027) said no; June's clinician said yes. The undated form's 'no' won
    outright: robust, no urgency. It may be the oldest: where it differs from June's, a conflict."""
    body = two_responses(
        {"joint.destruction_risk": None},
        {"joint.destruction_risk": {"valueBoolean": True}},
        "route-c6-destruction-risk",
    )
    with_third_form(body, authored, False)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["summary"].startswith("Maybe urgent (C6): find out now."), card["summary"]
    assert [c["field"] for c in card["extension"]["llr-asp.conflicts"]] == ["joint.destruction_risk"]


def test_whatif_says_to_confirm_what_a_refusal_or_an_urgency_rests_on_as_explain_does(whatif_of: Any) -> None:
    """Twenty-first review, MEDIUM and LOWs: what-if said 'this procedure is refused whatever the
    ICB is asked' where the refusal rested on a pre-filled 'no end-stage osteoarthritis'; named
    'joint.destruction_risk' for a woman; and put the MSK assessment after 'ask the ICB now'."""
    from llr_asp.views.wording import cannot_words, withheld_words

    refused = whatif_of(prefilled_form(changed(C6, msk__end_stage_oa=False), ("msk.end_stage_oa",)))
    said = withheld_words(refused, RULES) or ""
    assert "first confirm end-stage osteoarthritis diagnosed by MSK Services" in said, said
    assert said.index("first confirm") < said.index("this procedure is refused"), said
    woman = whatif_of(
        prefilled_form(changed(C6, sex="female", msk__assessed=False), ("joint.destruction_risk",))
    )
    words = cannot_words(woman, RULES) if woman.blocker is not None else withheld_words(woman, RULES) or ""
    assert "joint.destruction_risk" not in words and "at risk of joint destruction" in words, words
    unassessed = whatif_of(prefilled_form(changed(C6, msk__assessed=False), ("joint.destruction_risk",)))
    said = withheld_words(unassessed, RULES) or ""
    assert "if it holds, first, now: assessed by Musculoskeletal Services; then ask the ICB" in said, said


# -- twenty-second review -------------------------------------------------------------------------
@pytest.mark.parametrize("authored", [None, "2027-05-01T09:00:00Z", "unknown"])
def test_a_form_whose_date_cannot_be_told_is_no_newer_than_the_newest_dated_one(
    client: TestClient, authored: str | None
) -> None:
    """Twenty-second review, MEDIUM: a form of 2024 and the same answers with no readable date:
    'Meets ARP 55 criteria', info, robust, all eighteen answers current. A form whose date cannot
    be told is as old as the newest dated one: here, older than the ICB allows, to confirm."""
    body = call("route-c1-pain", "male")
    dated = body["prefetch"]["answers"]["entry"][0]
    dated["resource"]["authored"] = "2024-01-01T09:00:00Z"
    copy_ = copy.deepcopy(dated)
    copy_["resource"].pop("authored")
    if authored is not None:
        copy_["resource"]["authored"] = authored
    body["prefetch"]["answers"]["entry"].append(copy_)
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and not card["extension"]["llr-asp.robust"], card["summary"]


def test_an_urgent_line_on_an_unconfirmed_sex_names_it_and_says_what_if_it_holds() -> None:
    """Twenty-second review, MEDIUM: a C6 patient whose sex was female only as pre-filled from the
    EHR read, word for word as one pre-filled male, 'first confirm the procedure suits the patient
    (not female …)… If it does, ask the ICB now': the recorded value unnamed, and nothing said of
    the likely branch. It names the value, and what the urgency asks if she is female."""
    from llr_asp.views.wording import urgent_note

    notes = {}
    for sex in ("female", "male"):
        form = prefilled_form(changed(C6, sex=sex), ("sex",))
        [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
        notes[sex] = urgent_note(decision) or ""
        assert f"sex {sex}, known only from the answers pre-filled from the EHR" in notes[sex], notes[sex]
    assert "If it does not (as recorded), the urgency stands for whatever procedure" in notes["female"]
    assert "If it does not" not in notes["male"], notes["male"]


# -- twenty-third review --------------------------------------------------------------------------
def test_a_patient_the_procedure_does_not_suit_who_may_meet_an_urgent_route_is_told_so() -> None:
    """Twenty-third review, HIGH: a woman (the clinician's answer) in immediate danger of losing
    her independence, C5 not yet known (the contra-indication of care not known): NOT ELIGIBLE,
    no urgent line anywhere, though the same record pre-filled female or male said 'May meet an
    urgent route (C5)'. A confirmed unsuitability makes the urgency another procedure's, not none."""
    from llr_asp.views.wording import urgent_note

    record = changed(C5, sex="female", conservative__contraindicated=None, conservative__months=None)
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    urgent = decision.urgent_json()
    assert urgent is not None and (urgent["route"], urgent["action"]) == ("C5", "find out"), urgent
    assert "the urgency is for the procedure indicated instead" in (urgent_note(decision) or "")


def test_an_undated_copy_is_as_old_as_the_newest_dated_answer_to_each_question(client: TestClient) -> None:
    """Twenty-third review, MEDIUM: a hip form of 2024, an undated copy, and November's hip form
    answering only the sex: 'Meets ARP 55 criteria', info, robust, seventeen answers of 2024 made
    current by a form that did not give them. An undated answer is as old as the newest dated
    answer to its question."""
    body = call("route-c1-pain", "male")
    dated = body["prefetch"]["answers"]["entry"][0]
    dated["resource"]["authored"] = "2024-01-01T09:00:00Z"
    undated = copy.deepcopy(dated)
    undated["resource"].pop("authored")
    november = copy.deepcopy(dated)
    november["resource"]["authored"] = "2026-11-01T09:00:00Z"
    november["resource"]["item"] = [i for i in november["resource"]["item"] if i["linkId"] == "sex"]
    body["prefetch"]["answers"]["entry"] = [dated, undated, november]
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    assert card["indicator"] == "warning" and not card["extension"]["llr-asp.robust"], card["summary"]


def test_whatif_and_every_urgent_line_on_an_open_suitability_say_both_branches(whatif_of: Any) -> None:
    """Twenty-third review, MEDIUMs: what-if for a woman only by a pre-filled sex ended 'the patient
    meets an urgent route (C6): confirm it now' (not explain's line); and where the sex was not
    known (sources that disagree, or none), the urgent line gave only 'if it does, ask the ICB'."""
    from llr_asp.views.wording import cannot_words, urgent_note

    woman = whatif_of(prefilled_form(changed(C6, sex="female", msk__assessed=False), ("sex",)))
    said = cannot_words(woman, RULES) if woman.blocker is not None else ""
    assert "first, now: assessed by Musculoskeletal Services; then ask the ICB" in said, said
    assert "sex female, known only from the answers pre-filled from the EHR" in said, said
    [decision] = Reasoner(RULES).decide(
        validate(changed(C6, sex=None), RULES, "t"), [RULES.policies["hip-resurfacing"]]
    )
    note = urgent_note(decision) or ""
    assert "If it does not, the urgency stands for whatever procedure is indicated instead" in note, note


def test_a_may_meet_line_never_states_an_unsuitability_no_one_confirmed() -> None:
    """Twenty-third review, L1: a woman (or a knee with three compartments) only by a value
    pre-filled from the EHR who may meet C5 was told 'if it is met, the urgency is for the
    procedure indicated instead: this one does not suit the patient', as a fact. Confirmed by the
    clinician it is a fact; pre-filled, both branches, the value named."""
    from llr_asp.views.wording import urgent_note

    maybe = {"sex": "female", "conservative__contraindicated": None}
    hip = RULES.policies["hip-resurfacing"]
    for auto, fact in (((), True), (("sex",), False)):
        form = prefilled_form(changed(C5, **maybe), auto)
        [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
        note = urgent_note(decision) or ""
        assert note.startswith("May meet an urgent route (C5"), note
        assert ("this one does not suit the patient" in note) is fact, note
        if not fact:
            assert "sex female, known only from the answers pre-filled from the EHR" in note, note
            assert (
                "if it does, ask the ICB without waiting for more care; if it does not, the urgency" in note
            )


def test_an_urgent_line_on_disputed_suitability_names_what_each_source_says(client: TestClient) -> None:
    """Twenty-third review, L2: a C6 patient answered male on the form, the EHR's administrative
    gender female: the card's urgent line said 'first confirm the procedure suits the patient (not
    female …)' without naming the two values a GP has to choose between."""
    body = with_sex("route-c6-destruction-risk", "male", "female")
    [card] = client.post(HIP, json=body, headers=auth(HIP)).json()["cards"]
    line = next(b for b in card["detail"].split("\n\n") if "Meets an urgent route (C6" in b)
    assert f"the sources disagree on sex: male in {FORM} of 2026-11-02; female in {EHR}" in line, line


# -- twenty-fourth review ---------------------------------------------------------------------------
C5_CARE_MET = {"conservative__months": 8, "conservative__failed": True, "conservative__contraindicated": None}


@pytest.mark.parametrize(
    ("record", "policy"),
    [
        (changed(C5, sex="female", **C5_CARE_MET), "hip-resurfacing"),
        (changed(C5, knee__compartments_affected=3, **C5_CARE_MET), "knee-resurfacing"),
    ],
    ids=["woman", "three compartments"],
)
def test_a_patient_the_procedure_does_not_suit_who_may_meet_c5_is_told_to_find_out_whatever_her_care(
    record: dict[str, Any], policy: str
) -> None:
    """Twenty-fourth review, F1 (HIGH): a woman (a knee of three compartments) who may meet C5,
    with eight months of care documented and failed, got no urgent line on any surface: B met
    silenced it, though her urgency is for the procedure indicated instead."""
    from llr_asp.views.wording import urgent_note

    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies[policy]])
    assert decision.decision == "not_eligible" and decision.statuses["B"] == "met"
    assert (decision.urgent_json() or {}).get("action") == "find out", decision.urgent_json()
    note = urgent_note(decision) or ""
    assert note.startswith("May meet an urgent route (C5") and "procedure indicated instead" in note, note


def test_whatif_that_offers_no_change_still_says_a_route_the_patient_may_meet(whatif_of: Any) -> None:
    """Twenty-fourth review, F2: what-if for a woman who may meet C5 (no change offered: the
    procedure does not suit her), or for a man whom no change can make eligible, said nothing
    of the route every other surface leads with."""
    from llr_asp.views.wording import cannot_words

    maybe = {"conservative__contraindicated": None}
    for record in (changed(C5, sex="female", **maybe), changed(C5, pain__persistent=None)):
        answer = whatif_of(record)
        said = cannot_words(answer, RULES) if answer.blocker is not None else ""
        assert "⚠ May meet an urgent route (C5" in said, said


def test_a_route_refuted_only_by_a_value_no_one_confirmed_may_be_met(whatif_of: Any) -> None:
    """Twenty-fourth review, F3a: every finding of C5 met, two months of care, 'conservative care
    contra-indicated: no' only as pre-filled from the EHR: no urgent line anywhere, and what-if
    offered four more months of care with no caution. Left blank, the same record was cautioned."""
    from llr_asp.views.wording import change_words, urgent_note

    record = changed(
        C5, conservative__months=2, conservative__failed=True, conservative__contraindicated=False
    )
    form = prefilled_form(record, ("conservative.contraindicated",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert (decision.urgent_json() or {}).get("action") == "find out", decision.urgent_json()
    note = urgent_note(decision) or ""
    assert "conservative management contra-indicated no, known only from the answers pre-filled" in note, note
    [[change]] = whatif_of(form).counterfactuals
    assert change.caution is not None and change.caution.route == "C5", change
    said = change_words(change, RULES)
    assert "recorded as no, known only from the answers pre-filled from the EHR, so confirm it first" in said
    # the clinician's own 'no' refutes it: no urgency, no caution
    [plain] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    assert plain.urgent_json() is None and whatif_of(record).counterfactuals[0][0].caution is None


def test_whatif_names_a_value_no_one_confirmed_that_every_change_rests_on(whatif_of: Any) -> None:
    """Twenty-fourth review, F3b: 'Eligible if conservative care went from 3 to 6 months' for a
    man only by a sex pre-filled from the EHR, the sex never named."""
    from llr_asp.views.wording import resting_words

    record = changed(json.loads((EXAMPLE.parent / "route-c1-pain.json").read_text()), conservative__months=3)
    answer = whatif_of(prefilled_form(record, ("sex",)))
    assert answer.counterfactuals, answer
    said = resting_words(answer, RULES) or ""
    assert "first confirm sex (male, from the answers pre-filled from the EHR)" in said, said
    assert resting_words(whatif_of(record), RULES) is None  # the clinician's answer: nothing to confirm
    # twenty-fifth review, L1: a value no met condition tests (instability 'none', pre-filled) is
    # not one the changes rest on
    assert resting_words(whatif_of(prefilled_form(record, ("joint.instability",))), RULES) is None
    # twenty-sixth review, L4: nor one met inside a route that is not met (pain persistent, met
    # inside C5 and C1, for a patient eligible through C4 once changed)
    c4 = changed(
        record, pain__severity="mild", function__impairment="mild", function__prevents_work_or_education=True
    )
    assert resting_words(whatif_of(prefilled_form(c4, ("pain.persistent",))), RULES) is None
    # twenty-seventh review, M2: but one met inside a route a change completes is (C1 on a pain
    # pre-filled from the EHR, its impairment still to find out)
    c1 = changed(record, function__impairment=None)
    said = resting_words(whatif_of(prefilled_form(c1, ("pain.severity", "pain.persistent"))), RULES) or ""
    assert "pain persistent (yes, from the answers pre-filled from the EHR)" in said, said


def test_an_urgent_line_that_asks_the_icb_names_the_findings_still_to_find_out() -> None:
    """Twenty-fourth review, L1: C6 met, two months of care, the MSK assessment made but its
    findings not known: 'ask the ICB now; do not delay the referral', nothing of the findings
    the ICB will need (an unassessed patient is told 'first, now: assessed by MSK')."""
    from llr_asp.views.wording import urgent_note

    record = changed(
        C6, conservative__months=2, msk__end_stage_oa=None, msk__suitable_for_surgical_referral=None
    )
    [decision] = Reasoner(RULES).decide(validate(record, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision) or ""
    assert "ask the ICB now; do not delay the referral for conservative care. Find out now too: " in note, (
        note
    )
    assert "diagnosed with end-stage osteoarthritis; suitable for referral" in note, note
    [known] = Reasoner(RULES).decide(
        validate(changed(C6, conservative__months=2), RULES, "t"), [RULES.policies["hip-resurfacing"]]
    )
    assert "Find out now too" not in (urgent_note(known) or "")


def test_a_route_the_sources_disagree_on_is_named_once_and_an_eligible_patient_is_referred() -> None:
    """Twenty-fourth review, L2: sources that disagree on the contra-indication of care, C5's
    other findings met: 'find out now (conservative management is contra-indicated; conservative
    management contra-indicated: not yet known)' named it twice, and told a patient already
    eligible to 'ask the ICB without waiting for more care', not to refer without delay."""
    from llr_asp.views.wording import urgent_note

    record = changed(
        C5, conservative__months=8, conservative__failed=True, conservative__contraindicated=None
    )
    patient = disputed(record, "conservative.contraindicated")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision) or ""
    assert decision.decision == "eligible", decision.decision
    assert (
        "find out now (the sources disagree on conservative management contra-indicated: not yet" in note
    ), note
    assert note.endswith("if it is met, refer without delay."), note


def test_next_never_says_nothing_more_to_ask_plainly_while_an_urgent_route_is_to_find_out() -> None:
    """Twenty-fourth review, L3: for a woman who may meet C5, `next` said 'find out now (…)' and
    then 'Decided under every reading of the policy: nothing more to ask'."""
    from rich.console import Console

    from llr_asp.views.terminal import next_view

    hip = [RULES.policies["hip-resurfacing"]]
    console = Console(record=True, width=300)
    woman = validate(changed(C5, sex="female", conservative__contraindicated=None), RULES, "t")
    [step] = Interviewer(RULES).next(woman, hip)
    console.print(next_view(step))
    said = console.export_text()
    assert "nothing more to ask for its funding; find out what the urgent line above asks." in said, said
    [plain] = Interviewer(RULES).next(validate(changed(C5, sex="female"), RULES, "t"), hip)
    console.print(next_view(plain))
    assert (
        console.export_text()
        .rstrip()
        .endswith("Decided under every reading of the policy: nothing more to ask.")
    )


def test_a_route_a_clinician_refuted_is_not_made_possible_by_another_value_no_one_confirmed(
    whatif_of: Any,
) -> None:
    """Twenty-fifth review, M1: C5 refuted by the clinician's own answers (mild pain, no danger to
    independence), only 'pain persistent: yes' pre-filled from the EHR: what-if cautioned 'the
    patient may meet C5 … do not delay the referral' where every other surface says no route.
    A route is possible only where what refutes it is a value no one confirmed."""
    from llr_asp.core.urgency import possible_routes

    hip = RULES.policies["hip-resurfacing"]
    refuted = changed(
        C5,
        pain__severity="mild",
        independence__immediate_danger=False,
        conservative__contraindicated=False,
        conservative__months=3,
        conservative__failed=True,
    )
    form = prefilled_form(refuted, ("pain.persistent",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
    assert "C5" not in possible_routes(decision) and decision.urgent_json() is None
    assert all(c.caution is None for changes in whatif_of(form).counterfactuals for c in changes)
    # refuted only on the pre-filled value: possible
    only = prefilled_form(
        changed(refuted, pain__severity="severe", independence__immediate_danger=True),
        ("conservative.contraindicated",),
    )
    [maybe] = Reasoner(RULES).decide(validate(only, RULES, "t"), [hip])
    assert "C5" in possible_routes(maybe)


def test_a_decision_the_readings_contest_does_not_rest_on_a_value_that_changes_nothing() -> None:
    """Twenty-fifth review, M2: a C6 patient with three months of care (not eligible on the adopted
    reading, eligible under C6's other) whose 'joint instability: none' was pre-filled from the
    EHR was told the decision rests on it ('first confirm joint instability'), asked it before
    the ICB, though unknown it changes nothing: every reading's decision was already possible."""
    from llr_asp.views.wording import urgent_note

    hip = RULES.policies["hip-resurfacing"]
    form = prefilled_form(changed(C6, conservative__months=3), ("joint.instability",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
    assert decision.contested and decision.under_unconfirmed == (), decision.under_unconfirmed
    assert "to_confirm" not in (decision.urgent_json() or {}) and "confirm" not in (
        urgent_note(decision) or ""
    )
    # a value the adopted decision turns on still does: the sex pre-filled, not known, undetermined
    sexed = prefilled_form(changed(C6, conservative__months=3), ("sex",))
    [rests] = Reasoner(RULES).decide(validate(sexed, RULES, "t"), [hip])
    assert rests.under_unconfirmed and rests.unconfirmed[0].field == "sex"


def test_next_question_keeps_the_date_each_answer_was_given_when_it_restamps_a_form(
    client: TestClient,
) -> None:
    """Twenty-fifth review, M3: a form of 2024 posted to $next-question asked only the sex; its
    next step, restamped today, made every 2024 answer current, and the form completed ELIGIBLE,
    robust. The answers a step carries keep the date they were given; only the answer just given
    is today's, so the stale ones are asked, as the page asks them."""
    from llr_asp.core.documents import ANSWERED
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads(EXAMPLE.read_text())), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    old = decision_response(patient, [decision], RULES)
    old.pop("extension")
    old |= {"authored": "2024-03-01T09:00:00Z", "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing"}
    reply, asked, replies = client.post(NEXT, json=old).json(), [], []
    while reply["status"] == "in-progress" and len(asked) < 25:
        question = reply["contained"][0]["item"][-1]["linkId"]
        asked.append(question)
        [given] = [i for i in old["item"] if i["linkId"] == question]  # the same answer, given today
        reply = client.post(NEXT, json={**reply, "item": [*reply.get("item", []), given]}).json()
        replies.append(reply)
    assert len(asked) > 5 and len(set(asked)) == len(asked), asked  # every stale answer, each once
    assert reply["status"] == "completed", asked
    # after the first answer: that one is today's, an answer not asked yet keeps its date of 2024
    items = {i["linkId"]: i.get("extension", []) for i in replies[0]["item"]}
    assert {"url": ANSWERED, "valueDateTime": "2024-03-01T09:00:00Z"} in items[asked[-1]], items[asked[-1]]
    assert not any(e.get("url") == ANSWERED and "2024" in e["valueDateTime"] for e in items[asked[0]])


@pytest.mark.parametrize(
    "canonical",
    ["http://127.0.0.1:8925/fhir/Questionnaire/knee-resurfacing", "http://ehr.example/Questionnaire/x", None],
    ids=["the service's own URL", "another questionnaire", "none"],
)
def test_a_form_that_names_no_questionnaire_of_llr_asps_is_never_decided(
    client: TestClient, tmp_path: Path, canonical: str | None
) -> None:
    """Twenty-fifth review, M4: a knee form naming the service's own Questionnaire URL (not its
    canonical) was decided for hip, ELIGIBLE and robust, by explain, the API and batch, and
    counted in hip's funnels; a card set it aside. Which joint its answers are about cannot be
    told: refused on every surface, saying why (exit 2, 422, a line's error)."""
    from typer.testing import CliRunner

    from llr_asp.cli import app
    from llr_asp.engines.batch import LineError, iterate_decisions

    response = knee_response()
    response.pop("questionnaire")
    if canonical is not None:
        response["questionnaire"] = canonical
    path = tmp_path / "form.json"
    path.write_text(json.dumps(response))
    refused = CliRunner().invoke(app, ["explain", str(path), "--policy", "hip-resurfacing"])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
    assert (
        "questionnaire: this QuestionnaireResponse names" in refused.stderr
        and "another joint" in refused.stderr
    )
    reply = client.post("/api/v1/explain?policy=hip-resurfacing", json=response)
    assert reply.status_code == 422 and "one of llr-asp's" in reply.json()["error"]
    [line] = list(iterate_decisions([response], policy="hip-resurfacing"))
    assert isinstance(line, LineError) and "one of llr-asp's" in line.error


@pytest.mark.parametrize(
    ("authored", "said"),
    [
        ("2026-11-01T09:00:00Z", "Answers given on 1 November 2026."),
        ("2027-06-01", "The form's date (2027-06-01) cannot be when it was answered"),
        ("2026", "Answers given in 2026."),  # (twenty-sixth review, L5: a year alone is not 1 January)
        ("2024-03-01/2026-12-01", "Answers given between 1 March 2024 and 1 December 2026."),
        # (twenty-seventh review, L2: a form dated ahead stays said so whatever its answers say;
        # a month alone is a month)
        ("2027-06-01/2026-12-01", "The form's date (2027-06-01) cannot be when it was answered"),
        ("2026-10/2026-12-01", "Answers given between October 2026 and 1 December 2026."),
        # (an answer's date in another ISO form is put in time order, never hidden)
        ("2024-12-01/20240301", "Answers given between 1 March 2024 and 1 December 2024."),
        (None, None),
    ],
)
def test_the_letter_says_when_the_answers_were_given(authored: str | None, said: str | None) -> None:
    """Twenty-fifth review, L5 (issue 32: 'the card and letter say when the answers were given'):
    the letter carried today's date only, even for a form dated a year still to come."""
    from llr_asp.formats.fhir import decision_response
    from llr_asp.views.letter import plain_letter

    hip = RULES.policies["hip-resurfacing"]
    patient = validate(changed(json.loads(EXAMPLE.read_text())), RULES, "t")
    form = decision_response(patient, Reasoner(RULES).decide(patient, [hip]), RULES)
    form.pop("extension")
    form.pop("authored", None)
    if authored is not None and "/" in authored:  # a form of 2024, one answer confirmed since
        form["authored"], since = authored.split("/")
        form["item"][0]["extension"] = [{"url": "urn:llr-asp:answered", "valueDateTime": since}]
    elif authored is not None:
        form["authored"] = authored
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
    head = plain_letter([decision], RULES, datetime.date(2026, 12, 7)).split("\n\n")[1]
    assert (said in head) if said else ("Answers given" not in head and "form's date" not in head), head


def test_an_urgent_line_s_json_names_what_the_line_asks_to_confirm() -> None:
    """Twenty-fifth review, L2: a C6 patient whose sex (female) was only pre-filled from the EHR
    is told 'first confirm the procedure suits the patient (sex female, known only from …)'; the
    `urgent` JSON a program reads had no `to_confirm`."""
    form = prefilled_form(changed(C6, sex="female", msk__assessed=False), ("sex",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    urgent = decision.urgent_json() or {}
    assert urgent.get("action") == "confirm" and urgent.get("to_confirm") == ["sex"], urgent


def test_an_eligible_patient_on_an_urgent_route_to_confirm_is_referred_without_delay() -> None:
    """Twenty-fifth review, L3: an eligible C6 patient whose sex was only pre-filled was told
    'If it does, ask the ICB now, without waiting for more care': eligible as it stands, the
    referral itself is what must not wait."""
    from llr_asp.views.wording import urgent_note

    hip = RULES.policies["hip-resurfacing"]
    form = prefilled_form(changed(C6), ("sex",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
    assert decision.decision == "eligible" and (decision.urgent_json() or {}).get("action") == "confirm"
    assert (urgent_note(decision) or "").endswith("If it does, refer without delay."), urgent_note(decision)
    short = prefilled_form(changed(C6, conservative__months=2), ("sex",))  # not eligible: ask the ICB
    [asks] = Reasoner(RULES).decide(validate(short, RULES, "t"), [hip])
    assert "If it does, ask the ICB now, without waiting for more care." in (urgent_note(asks) or "")


def test_a_cohort_decides_a_form_for_its_own_procedure_however_it_names_it() -> None:
    """Twenty-sixth review, M1: batch without --policy read a form's procedure from its top-level
    `questionnaire` only: a knee form named by llr-asp's tag (or its contained adaptive form, as
    $next-question writes it) got a hip line, counted in hip's funnel, and with a value pre-filled
    from the EHR the whole cohort failed (exit 2, no line)."""
    from llr_asp.core.documents import INFORMATION_ORIGIN, TAG
    from llr_asp.engines.batch import iterate_decisions

    tagged = knee_response()
    tagged.pop("questionnaire")
    tagged["meta"] = {"tag": [{"system": TAG, "code": "knee-resurfacing"}]}
    prefilled = copy.deepcopy(tagged)
    for item in prefilled["item"]:
        if item["linkId"] == "sex":
            item["extension"] = [
                {"url": INFORMATION_ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
            ]
    lines = list(iterate_decisions([tagged, prefilled], policy=None))
    assert [(line.to_json()["line"], line.to_json()["policy"]) for line in lines] == [
        (1, "knee-resurfacing"),
        (2, "knee-resurfacing"),
    ], [line.to_json() for line in lines]


@pytest.mark.parametrize("named", ["knee", "knee-resurfacing-2027"])
def test_a_form_for_a_procedure_these_rules_lack_is_never_decided(client: TestClient, named: str) -> None:
    """Twenty-sixth review, M2: a form naming llr-asp's questionnaire of a policy the loaded rules
    do not hold (a typo, an edition of another rule set) was decided for every policy, hip and
    knee ELIGIBLE, robust; a card set it aside."""
    from llr_asp.engines.batch import LineError, iterate_decisions

    response = knee_response() | {"questionnaire": f"urn:llr-asp:questionnaire:{named}"}
    reply = client.post("/api/v1/explain", json=response)
    assert reply.status_code == 422 and "which these rules do not hold" in reply.json()["error"], reply.text
    [line] = list(iterate_decisions([response], policy=None))
    assert isinstance(line, LineError) and "which these rules do not hold" in line.error


def test_another_reading_funding_only_on_a_value_no_one_confirmed_rests_on_it() -> None:
    """Twenty-sixth review, L3 (from the twenty-fifth's M2 fix): 'another reading of the policy
    would fund' resting only on a C6 'yes' pre-filled from the EHR was no longer said to rest on
    it where the readings already reached 'undetermined': without it, the funding reading is gone."""
    hip = RULES.policies["hip-resurfacing"]
    record = changed(
        C5, conservative__months=2, conservative__contraindicated=None, joint__destruction_risk=True
    )
    [plain] = Reasoner(RULES).decide(validate(record, RULES, "t"), [hip])
    assert "eligible" in plain.possible and "undetermined" in plain.possible, plain.possible
    form = prefilled_form(record, ("joint.destruction_risk",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [hip])
    assert decision.under_unconfirmed and decision.unconfirmed[0].field == "joint.destruction_risk"


def test_a_may_meet_line_asks_to_confirm_a_suitability_met_only_on_a_prefilled_value() -> None:
    """Twenty-sixth review, L1: a man only by a sex pre-filled from the EHR who may meet C5 was
    told 'if it is met, ask the ICB without waiting for more care', the sex not named (its JSON
    named it to confirm)."""
    from llr_asp.views.wording import urgent_note

    form = prefilled_form(changed(C5, conservative__contraindicated=None), ("sex",))
    [decision] = Reasoner(RULES).decide(validate(form, RULES, "t"), [RULES.policies["hip-resurfacing"]])
    note = urgent_note(decision) or ""
    assert note.startswith("May meet an urgent route (C5"), note
    assert "first confirm the procedure suits the patient (sex male, known only from" in note, note


def test_values_to_confirm_are_asked_in_the_urgent_lines_order() -> None:
    """Twenty-sixth review, L2: the urgent line says 'first confirm' whether the procedure suits
    the patient, then what the urgency rests on; every questionnaire asked the values pre-filled
    from the EHR in the form's order (at risk of joint destruction 15th)."""
    hip = [RULES.policies["hip-resurfacing"]]
    record = changed(C6, conservative__months=2)
    every = tuple(f for f in RULES.fields if f in validate(record, RULES, "t").values)
    for auto, first in ((every, "sex"), (tuple(f for f in every if f != "sex"), "joint.destruction_risk")):
        [step] = Interviewer(RULES).next(validate(prefilled_form(record, auto), RULES, "t"), hip)
        assert step.question is not None and step.question.field == first, (first, step.question)


def test_a_form_for_a_family_whose_first_edition_is_retired_is_that_familys(tmp_path: Path) -> None:
    """Twenty-seventh review, M1: in rules where no edition keeps the family's id (the first
    edition retired, `hip-resurfacing-2027` of family `hip-resurfacing`), llr-asp's own form for
    the family (`explain --format fhir`, the DTR package's adaptive form) was refused everywhere
    as 'a questionnaire these rules do not hold', while a card decided it. It is the family's."""
    import shutil

    from llr_asp.core.errors import InputError
    from llr_asp.formats.fhir import decision_response

    rules = tmp_path / "rules"
    shutil.copytree(EXAMPLE.parent.parent / "rules", rules)
    source = (rules / "hip_resurfacing.lp").read_text().replace('"hip-resurfacing"', '"hip-resurfacing-2027"')
    (rules / "hip_resurfacing.lp").write_text(
        source + '\nedition("hip-resurfacing-2027", "hip-resurfacing", "2020-01-01").\n'
    )
    retired = load_rules(rules)
    edition = retired.policies["hip-resurfacing-2027"]
    patient = validate(changed(json.loads(EXAMPLE.read_text())), retired, "t")
    form = decision_response(patient, Reasoner(retired).decide(patient, [edition]), retired)
    assert form["questionnaire"] == "urn:llr-asp:questionnaire:hip-resurfacing"
    read = validate(form, retired, "form")
    assert read.answers_for == "hip-resurfacing"
    [decision] = Reasoner(retired).decide(read, [edition])
    assert decision.decision == "eligible"
    with pytest.raises(InputError, match="never used for knee-resurfacing"):
        Reasoner(retired).decide(read, [retired.policies["knee-resurfacing"]])


def test_next_question_never_turns_an_answer_dated_ahead_into_one_given_today(client: TestClient) -> None:
    """Twenty-seventh review, L4: a form of 2024 in progress whose pain answer said it was given in
    2099 (a clock error): re-dating kept the 2099 date, which counts for nothing, so the answer
    fell to the form's new `authored` (today) and a 2024 pain grade became current. It is dated
    as the form was."""
    from llr_asp.core.documents import ANSWERED
    from llr_asp.formats.fhir import decision_response

    patient = validate(changed(json.loads(EXAMPLE.read_text()), sex=None), RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies["hip-resurfacing"]])
    form = decision_response(patient, [decision], RULES)
    form.pop("extension")
    form |= {"status": "in-progress", "authored": "2024-05-01T09:00:00Z"}
    form["item"] = [i for i in form["item"] if i["linkId"] != "sex"]
    [pain] = [i for i in form["item"] if i["linkId"] == "pain.severity"]
    pain["extension"] = [{"url": ANSWERED, "valueDateTime": "2099-01-01T00:00:00Z"}]
    reply = client.post(NEXT, json=form).json()
    [kept] = [i for i in reply["item"] if i["linkId"] == "pain.severity"]
    assert kept["extension"] == [{"url": ANSWERED, "valueDateTime": "2024-05-01T09:00:00Z"}], kept


def test_an_answer_with_several_dates_is_as_old_as_the_latest_that_can_be_its_date() -> None:
    """Focused review of the twenty-eighth's follow-ups, L1: an item dated 2024 and 2099 (or 2024
    and garbage) was read by its last date, which is none, so the answer fell to the form's new
    date (today) on a $next-question step and a 2024 pain grade decided as current. A malformed
    extension beside them is passed over, never a crash."""
    from llr_asp.core.documents import ANSWERED, answered_on

    for dates in (["2024-01-01", "2099-01-01"], ["2024-01-01", "garbage"], ["2099-01-01", "2024-01-01"]):
        extension = ["junk", *({"url": ANSWERED, "valueDateTime": d} for d in dates)]
        item = {"linkId": "pain.severity", "extension": extension}
        assert answered_on({"item": [item]}, RULES) == {"pain.severity": "2024-01-01"}, dates
    two = [{"url": ANSWERED, "valueDateTime": d} for d in ("2025-01-01", "2024-01-01")]
    assert answered_on({"item": [{"linkId": "sex", "extension": two}]}, RULES) == {"sex": "2025-01-01"}


@pytest.mark.parametrize("chosen", ["record", "all"])
def test_the_page_reads_a_forms_procedure_however_it_names_it(client: TestClient, chosen: str) -> None:
    """Twenty-seventh review L1, twenty-eighth L1: a knee form naming its procedure only in
    llr-asp's tag (as $next-question and the DTR flow write theirs, or a family whose first
    edition is retired) was 'The record names none' on the page, and 'every procedure' was
    refused; explain -p all decides it for the knee alone. So does the page."""
    from llr_asp.core.documents import TAG

    tagged = knee_response()
    tagged.pop("questionnaire")
    tagged["meta"] = {"tag": [{"system": TAG, "code": "knee-resurfacing"}]}
    page = client.post("/record", data={"document": json.dumps(tagged), "policy": chosen}).text
    assert "The record names none" not in page and "Policy for Knee Resurfacing" in page, page[-2000:]
    assert "Policy for Hip Resurfacing" not in page
