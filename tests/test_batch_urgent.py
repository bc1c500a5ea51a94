"""A cohort's lines carry the urgent route (independent safety review F7): each line, in JSON
Lines, CSV and Parquet, names the route the patient meets or may meet that the policy says not
to wait for (C5, C6) and what it asks first, as explain's `urgent` names it (core.urgency, one
function for both), and the summary counts those patients. Tests as data: a table of records
with the urgency each line must carry (potassco coom-suite's style)."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_batch import random_patient
from test_seams import changed
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleSet, load_rules, validate
from llr_asp.cli import app
from llr_asp.engines.batch import Screener, Screening, Summary, iterate_decisions

RULES = load_rules()
EXAMPLES = Path(__file__).parent.parent / "examples"
REPRO = """\
{"id": "c5_base", "sex": "male", "msk": {"assessed": true, "end_stage_oa": true, "suitable_for_surgical_referral": true}, "conservative": {"months": 0, "documented": true, "failed": null, "contraindicated": true}, "pain": {"severity": "severe", "persistent": true}, "function": {"impairment": "severe", "prevents_work_or_education": false, "prevents_domestic_or_carer": false}, "joint": {"instability": "none", "destruction_risk": false}, "radiology": {"severity": "mild"}, "independence": {"immediate_danger": true, "replacement_would_relieve": true}, "knee": {"compartments_affected": 2}}
{"id": "c6_short", "sex": "male", "msk": {"assessed": true, "end_stage_oa": true, "suitable_for_surgical_referral": true}, "conservative": {"months": 3, "documented": true, "failed": true, "contraindicated": false}, "pain": {"severity": "mild", "persistent": false}, "function": {"impairment": "mild", "prevents_work_or_education": false, "prevents_domestic_or_carer": false}, "joint": {"instability": "none", "destruction_risk": true}, "radiology": {"severity": "mild"}, "independence": {"immediate_danger": false, "replacement_would_relieve": false}, "knee": {"compartments_affected": 2}}
"""
"""The review's repro (review17/repro/batch_urgent.jsonl): C5 and C6, both refused for B."""
HIP, KNEE = "hip-resurfacing", "knee-resurfacing"
DTR_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
runner = CliRunner()


def example(name: str) -> dict[str, Any]:
    record = json.loads((EXAMPLES / name).read_text())
    record.pop("meta")
    return record


C6 = example("route-c6-destruction-risk.json")  # a man meeting C6 alone, eligible
C5 = example("route-c5-independence.json")


def prefilled(record: dict[str, Any], auto: tuple[str, ...], policy: str = HIP) -> dict[str, Any]:
    """`record` as its policy's QuestionnaireResponse, the answers to `auto` pre-filled from the EHR
    by the form filler and left as they were (DTR's information-origin `auto`)."""
    from llr_asp.formats.fhir import decision_response

    patient = validate(record, RULES, "t")
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies[policy]])
    response: dict[str, Any] = decision_response(patient, [decision], RULES)
    response.pop("extension")
    for item in response["item"]:
        if item["linkId"] in auto:
            item["extension"] = [{"url": DTR_ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}]
    return response


def urgent(route: str, status: str, action: str, *to_confirm: str) -> dict[str, Any]:
    """The urgent object a line carries (its label: the route's, as the rules declare it)."""
    said = {"route": route, "label": RULES.policies[HIP].requirements[route].label, "status": status}
    said["action"] = action
    return {**said, "to_confirm": list(to_confirm)} if to_confirm else said


CASES = [
    # (case, record, policy, the line's `urgent`)
    ("C6 met, robust, eligible: refer", changed(C6), HIP, urgent("C6", "met", "refer")),
    (
        "C6, a man never assessed: assess",
        changed(C6, msk__assessed=False),
        HIP,
        urgent("C6", "met", "assess"),
    ),
    ("C6, a woman: unsuitable", changed(C6, sex="female"), HIP, urgent("C6", "met", "unsuitable")),
    ("C6, sex not known: confirm", changed(C6, sex=None), HIP, urgent("C6", "met", "confirm")),
    (
        "C6, three compartments: unsuitable",
        changed(C6, knee__compartments_affected=3),
        KNEE,
        urgent("C6", "met", "unsuitable"),
    ),
    ("C6, months short: ask", changed(C6, conservative__months=2), HIP, urgent("C6", "met", "ask")),
    (
        "C6, end-stage not known: settle",
        changed(C6, msk__end_stage_oa=None),
        HIP,
        urgent("C6", "met", "settle"),
    ),
    (
        "C6, no end-stage disease: refused",
        changed(C6, msk__end_stage_oa=False, conservative__months=2),
        HIP,
        urgent("C6", "met", "refused"),
    ),
    ("C5: ask", changed(C5), HIP, urgent("C5", "met", "ask")),
    (
        "C5 may be met (immediate danger not known): find out",
        changed(C5, independence__immediate_danger=None),
        HIP,
        urgent("C5", "unknown", "find out"),
    ),
    ("no urgent route", changed(C5, independence__immediate_danger=False), HIP, None),
    ("C6 refuted", changed(C6, joint__destruction_risk=False), HIP, None),
    # as explain: a single condition not known is not a route 'maybe met' (nothing of it is)
    ("C6 not known", changed(C6, joint__destruction_risk=None), HIP, None),
    (
        "C6 on a sex pre-filled from the EHR: confirm it",
        prefilled(changed(C6), ("sex",)),
        HIP,
        urgent("C6", "met", "confirm", "sex"),
    ),
    (
        "C6 resting on a destruction risk pre-filled from the EHR",
        prefilled(changed(C6, conservative__months=2), ("joint.destruction_risk",)),
        HIP,
        urgent("C6", "met", "confirm", "joint.destruction_risk"),
    ),
]
IDS = [case for case, *_ in CASES]


def cohort(tmp_path: Path) -> Path:
    """The table's records as JSON Lines, one a line, each naming its policy."""
    path = tmp_path / "urgent.jsonl"
    lines = []
    for _, record, policy, _ in CASES:
        lines.append(json.dumps({**record, "policy": policy} if "resourceType" not in record else record))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The cohort's lines as `llr-asp batch` writes them in each format, read back: JSON Lines as
    objects, CSV and Parquet as rows of flat columns."""
    tmp = tmp_path_factory.mktemp("urgent")
    source = cohort(tmp)
    written: dict[str, list[dict[str, Any]]] = {}
    for form, out in (("jsonl", "out.jsonl"), ("csv", "out.csv"), ("parquet", "out.parquet")):
        given = ["--output-format", form, "--out", str(tmp / out)]
        result = runner.invoke(app, ["batch", str(source), "-j", "1", *given])
        assert result.exit_code == 0, result.output
        if form == "jsonl":
            written[form] = [json.loads(line) for line in (tmp / out).read_text().splitlines()]
        elif form == "csv":
            written[form] = list(csv.DictReader(io.StringIO((tmp / out).read_text())))
        else:
            pq = pytest.importorskip("pyarrow.parquet")
            written[form] = pq.read_table(tmp / out).to_pylist()
    return written


@pytest.mark.parametrize(("case", "record", "policy", "said"), CASES, ids=IDS)
def test_each_json_line_names_its_urgent_route(
    outputs: dict[str, list[dict[str, Any]]], case: str, record: Any, policy: str, said: Any
) -> None:
    line = outputs["jsonl"][IDS.index(case)]
    assert (line["policy"], line["urgent"]) == (policy, said)


@pytest.mark.parametrize(("case", "record", "policy", "said"), CASES, ids=IDS)
def test_each_csv_row_names_its_urgent_route(
    outputs: dict[str, list[dict[str, Any]]], case: str, record: Any, policy: str, said: Any
) -> None:
    row = outputs["csv"][IDS.index(case)]
    columns = (row["urgent_route"], row["urgent_status"], row["urgent_action"], row["urgent_to_confirm"])
    if said is None:  # empty cells: none
        assert columns == ("", "", "", "")
    else:
        assert columns == (
            said["route"],
            said["status"],
            said["action"],
            ";".join(said.get("to_confirm", [])),
        )


@pytest.mark.parametrize(("case", "record", "policy", "said"), CASES, ids=IDS)
def test_each_parquet_row_names_its_urgent_route(
    outputs: dict[str, list[dict[str, Any]]], case: str, record: Any, policy: str, said: Any
) -> None:
    row = outputs["parquet"][IDS.index(case)]
    columns = (row["urgent_route"], row["urgent_status"], row["urgent_action"], row["urgent_to_confirm"])
    if said is None:  # nulls: none
        assert columns == (None, None, None, None)
    else:
        assert columns == (said["route"], said["status"], said["action"], said.get("to_confirm", []))


def test_the_reviews_repro_names_c5_and_c6() -> None:
    """F7's repro: two patients refused for B, one meeting C5 and one C6, whose lines said only
    `not_eligible`, stopped by B."""
    result = runner.invoke(app, ["batch", "-", "-p", HIP, "-j", "1"], input=REPRO)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["decision"], x["stopped_by"], x["urgent"]) for x in lines] == [
        ("not_eligible", ["B"], urgent("C5", "met", "ask")),
        ("not_eligible", ["B"], urgent("C6", "met", "ask")),
    ]
    assert "2 patients on an urgent route" in result.stderr  # the summary says so first


def records() -> list[Any]:
    """Every bundled example, the repro's lines and the table's records."""
    found: list[Any] = [example(p.name) for p in sorted(EXAMPLES.glob("*.json"))]
    found += [json.loads(line) for line in REPRO.splitlines()]
    return found + [record for _, record, _, _ in CASES]


def test_a_lines_urgent_is_explains(reasoner: Reasoner) -> None:
    """One function judges both: for every record and every policy, the line's `urgent` is the
    `urgent` explain gives the same record (the same patient, the same policy)."""
    documents = records()
    lines = list(iterate_decisions(documents, policy="all"))
    expected = []
    for document in documents:
        patient = validate(document, RULES, "t")
        expected += [
            (d.policy.id, d.urgent_json()) for d in reasoner.decide(patient, reasoner.chosen(patient, "all"))
        ]
    assert all(isinstance(x, Screening) for x in lines)
    assert [(x.policy, x.urgent) for x in lines if isinstance(x, Screening)] == expected
    assert sum(1 for _, said in expected if said) >= 20  # urgent lines were among them


def test_random_patients_urgency_is_explains(rules: RuleSet, reasoner: Reasoner) -> None:
    """The same over random patients, most with a field or two not known, on two workers."""
    rng = random.Random(17)
    documents = [random_patient(rng, rules) for _ in range(200)]
    lines = [x for x in iterate_decisions(documents, policy="all", jobs=2) if isinstance(x, Screening)]
    expected = [
        (d.policy.id, d.urgent_json())
        for document in documents
        for d in reasoner.decide(
            validate(document, rules, "t"), reasoner.chosen(validate(document, rules, "t"), "all")
        )
    ]
    assert [(x.policy, x.urgent) for x in lines] == expected
    assert {x.urgent["action"] for x in lines if x.urgent} >= {"assess", "ask", "find out", "unsuitable"}


def test_two_lines_of_one_profile_get_their_own_urgency() -> None:
    """Urgency reads the cached verdict (the statuses) and the line's own record: a record and the
    same answers with the sex pre-filled from the EHR share one cached profile (what clingo sees
    of them is the same), yet one line says refer and the other confirm the sex first."""
    screener = Screener.load()
    chosen = screener.policies(HIP)
    plain = changed(C6)
    plain.pop("knee")  # (the hip form asks nothing of the knee)
    form = prefilled(plain, ("sex",))
    lines = screener.screen([(1, plain), (2, form), (3, changed(plain, id="another"))], "t", chosen)
    [lane] = screener._lanes.values()
    assert len(lane.cache) == 1  # one profile, one solve
    assert [x.urgent for x in lines if isinstance(x, Screening)] == [
        urgent("C6", "met", "refer"),
        urgent("C6", "met", "confirm", "sex"),
        urgent("C6", "met", "refer"),
    ]


def test_the_summary_counts_urgent_patients_and_names_none(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = runner.invoke(
        app,
        [
            "batch",
            str(cohort(tmp_path)),
            "-j",
            "1",
            "-o",
            str(tmp_path / "o.jsonl"),
            "--summary-json",
            str(summary_file),
        ],
    )
    assert result.exit_code == 0, result.output
    policies = json.loads(summary_file.read_text())["policies"]
    assert policies[HIP]["urgent"] == {
        "meets": 10,
        "may_meet": 1,
        "routes": {"C5": {"meets": 1, "may_meet": 1}, "C6": {"meets": 9, "may_meet": 0}},
        "actions": {
            "confirm": 3,
            "ask": 2,
            "unsuitable": 1,
            "refer": 1,
            "assess": 1,
            "settle": 1,
            "refused": 1,
            "find out": 1,
        },
    }
    assert policies[KNEE]["urgent"] == {
        "meets": 1,
        "may_meet": 0,
        "routes": {"C6": {"meets": 1, "may_meet": 0}},
        "actions": {"unsuitable": 1},
    }
    assert "patient" not in json.dumps(policies[HIP]["urgent"])  # counts only
    # the terminal's summary leads each policy with them
    assert result.stderr.index("11 patients on an urgent route") < result.stderr.index("NOT ELIGIBLE")


def test_the_service_summary_counts_them_too() -> None:
    pytest.importorskip("fastapi", reason="the web extra is not installed")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    body = REPRO.encode()
    with TestClient(create_app()) as client:
        lines = client.post(f"/api/v1/batch?policy={HIP}", content=body).text.splitlines()
        summary = client.post(f"/api/v1/batch/summary?policy={HIP}", content=body).json()
    assert [json.loads(line)["urgent"]["route"] for line in lines] == ["C5", "C6"]
    assert summary["policies"][HIP]["urgent"]["meets"] == 2


def test_the_summary_adds_up(rules: RuleSet) -> None:
    summary = Summary(rules)
    for line in iterate_decisions(
        [changed(C5), changed(C5, independence__immediate_danger=None)], policy=HIP
    ):
        summary.add(line)
    assert summary.urgent_json(HIP) == {
        "meets": 1,
        "may_meet": 1,
        "routes": {"C5": {"meets": 1, "may_meet": 1}},
        "actions": {"ask": 1, "find out": 1},
    }
