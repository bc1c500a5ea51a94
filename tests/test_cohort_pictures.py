"""Cohort pictures: the funnel per policy (patients who reach, pass, stop at or are left open by
each part of the decision), the patients each contested reading decides otherwise, the answers
most often missing; in `batch --report`, the API's batch summary and the terminal summary; and
the classes of patients `diff --format svg` draws."""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleSet, validate
from llr_asp.cli import app
from llr_asp.engines.batch import Summary, iterate_decisions
from llr_asp.views.charts import funnel
from llr_asp.views.svg import text_width

EXAMPLES = Path(__file__).parent.parent / "examples"
NS = "{http://www.w3.org/2000/svg}"
runner = CliRunner()


def cohort() -> list[dict[str, Any]]:
    """The bundled examples, and variations that leave parts of the decision open."""
    documents = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    documents += [
        {"id": "empty"},
        {"id": "woman", "sex": "female"},
        {"id": "no-a", "msk": {"assessed": False}},
    ]
    return documents


@pytest.fixture(scope="module")
def summary(rules: RuleSet) -> Summary:
    counted = Summary(rules)
    for result in iterate_decisions(cohort(), jobs=1):
        counted.add(result)
    return counted


@pytest.mark.parametrize("policy", ["hip-resurfacing", "knee-resurfacing"])
def test_the_funnel_counts_each_patient_where_the_reasoner_says(
    summary: Summary, reasoner: Reasoner, policy: str
) -> None:
    declared = reasoner.rules.policies[policy]
    expected: dict[str, dict[str, int]] = {
        s: {"met": 0, "not_met": 0, "unknown": 0} for s in summary.steps(policy)
    }
    for document in cohort():
        if document.get("policy", policy) != policy:  # a record for another procedure: not in it
            continue
        [decision] = reasoner.decide(validate(document, reasoner.rules, "t"), [declared])
        statuses = {child.id: child.status for child in decision.tree.children}
        for step in summary.steps(policy):  # the tree's statuses, walked in the policy's order
            expected[step][statuses[step]] += 1
            if statuses[step] != "met":
                break
    steps = summary.funnel_json(policy)
    assert {s["requirement"]: {k: s[k] for k in ("met", "not_met", "unknown")} for s in steps} == expected
    decisions = summary.decisions[policy]
    assert steps[0]["reached"] == sum(decisions.values())
    for before, after in itertools.pairwise(steps):
        assert after["reached"] == before["met"]
    assert steps[-1]["met"] == decisions["eligible"]
    refused_later = sum(s["unknown_refused_later"] for s in steps)
    assert sum(s["not_met"] for s in steps) + refused_later == decisions["not_eligible"]
    assert sum(s["unknown"] for s in steps) - refused_later == decisions["undetermined"]
    assert (
        refused_later > 0 or policy == "knee-resurfacing"
    )  # the hip cohort has one: A unknown, refused by B


def test_the_funnel_picture_says_every_count_with_its_symbol(summary: Summary) -> None:
    svg = funnel(summary, "hip-resurfacing")
    root = ET.fromstring(svg)
    words = [t.text or "" for t in root.iter(f"{NS}text")]
    for step in summary.funnel_json("hip-resurfacing"):
        assert step["requirement"] in words
        assert f"✔ {step['met']} pass" in words and f"✘ {step['not_met']} stop" in words
        if step["unknown"]:
            assert any(w.startswith(f"? {step['unknown']} open") for w in words)
    decisions = summary.decisions["hip-resurfacing"]
    assert f"✔ {decisions['eligible']} eligible" in words and f"? {decisions['undetermined']}" in words
    assert root.get("role") == "img" and "ARP 55" in (root[0].text or "") and "style" not in svg
    assert len(list(root.iter(f"{NS}rect"))) > 3 * len(summary.funnel_json("hip-resurfacing"))


def test_batch_writes_the_report_and_draws_bars_in_the_terminal(tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in cohort()) + "{bad\n")
    report = tmp_path / "cohort.html"
    summary_json = tmp_path / "summary.json"
    result = runner.invoke(
        app,
        ["batch", str(source), "-j", "1", "--report", str(report), "--summary-json", str(summary_json)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 1  # the bad line
    html = report.read_text()
    assert html.startswith("<!doctype html>") and "1 bad line<" in html
    assert html.count('id="funnel-hip-resurfacing"') == 1 and html.count('id="funnel-knee-resurfacing"') == 1
    assert 'id="contested-hip-resurfacing"' in html and 'id="missing-knee-resurfacing"' in html
    funnel_json = json.loads(summary_json.read_text())["policies"]["hip-resurfacing"]["funnel"]
    assert [s["requirement"] for s in funnel_json] == ["A", "B", "C", "no_contraindication"]
    terminal = result.stderr
    assert "Through the criteria, in order (█ ✔ pass · ▓ ✘ stop · ░ ? open):" in terminal
    first = funnel_json[0]
    assert f"✔ {first['met']}  ✘ {first['not_met']}  ? {first['unknown']}" in terminal
    assert "█" in terminal.split("Most often missing:")[1]
    assert max(len(line) for line in terminal.splitlines()) <= 80


def test_report_and_out_naming_one_file_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_text('{"id": "a"}\n')
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(source), "-o", str(out), "--report", str(out), "-j", "1"])
    assert result.exit_code == 2 and "--report" in result.stderr and "is the --out file" in result.stderr
    result = runner.invoke(app, ["batch", str(source), "--report", str(source), "-j", "1"])
    assert result.exit_code == 2 and "is the input file" in result.stderr


def test_the_api_summarises_a_cohort_as_the_cli_does(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the web extra is not installed")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    body = "".join(json.dumps(d) + "\n" for d in cohort())
    source = tmp_path / "cohort.jsonl"
    source.write_text(body)
    summary_json = tmp_path / "summary.json"
    runner.invoke(
        app, ["batch", str(source), "-j", "1", "-p", "knee-resurfacing", "--summary-json", str(summary_json)]
    )
    client = TestClient(create_app())
    answer = client.post("/api/v1/batch/summary?policy=knee-resurfacing", content=body)
    assert answer.status_code == 200 and answer.json() == json.loads(summary_json.read_text())
    page = client.post("/api/v1/batch/summary?format=html", content=body)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="funnel-hip-resurfacing"' in page.text and 'id="funnel-knee-resurfacing"' in page.text
    assert client.post("/api/v1/batch/summary?policy=shoulder", content=body).status_code == 404
    assert client.post("/api/v1/batch/summary?format=pdf", content=body).status_code == 422


def test_diff_draws_the_classes_of_patients_that_change() -> None:
    result = runner.invoke(app, ["diff", "hip-resurfacing", "knee-resurfacing", "-f", "json"])
    differences = json.loads(result.stdout)["differences"]
    result = runner.invoke(app, ["diff", "hip-resurfacing", "knee-resurfacing", "-f", "svg"])
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout)
    words = [t.text or "" for t in root.iter(f"{NS}text")]
    assert words[0].startswith("hip-resurfacing vs knee-resurfacing")  # a title drawn, for a file alone
    for difference in differences:
        assert f"{difference['profiles']:,} profiles" in words
        said = f"{difference['decisions'][0]} → {difference['decisions'][1]}".replace("_", " ")
        assert said in words


def test_the_cohort_report_says_readings_and_questions_in_words_with_the_rules_and_date(
    summary: Summary,
) -> None:
    import datetime

    from llr_asp.views.cohort_page import cohort_fragment

    html = cohort_fragment(summary, "cohort", datetime.date(2026, 12, 7))
    assert f"Decided on 2026-12-07 by the rule set <code>{summary.rules.digest}</code>" in html
    for policy in summary.policies():
        for field, _ in summary.missing[policy].most_common(10):  # asked as the rules ask it
            question = summary.rules.fields[field].question
            assert f"{escape(question, quote=False)} ({field}): " in html  # the picture's description
            assert f">{question.split()[0]} " in html and f">{field}<" not in html  # its words
        for (label, described), _ in summary.contested[policy].items():
            for reading, words in zip(label.split("+"), described.split(" And: ")):
                [alternative] = [
                    a
                    for a in summary.rules.policies[policy].readings[reading].alternatives
                    if a.text == words
                ]
                assert f"{alternative.id}: " in html, (reading, alternative.id)
    narrow = [
        root
        for root in (ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html))
        if root.get("id", "").endswith("-narrow")
    ]
    assert narrow and all(float(root.get("width", 0)) <= 310 for root in narrow)
    for root in narrow:  # words that stay within the narrow drawing
        for t in root.iter(f"{NS}text"):
            assert (
                float(t.get("x", 0))
                + text_width(t.text or "", float(t.get("font-size", 13)), t.get("font-weight") == "bold")
                <= 310 + 0.5
            ), t.text
