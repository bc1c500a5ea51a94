"""What the clinician sees (issue "What the clinician sees"): one procedure, a letter fit to paste,
the policy's own caveats where they bear, one meaning for unknown, no misreadings."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from llr_asp import Reasoner, RuleSet, read_patient, validate
from llr_asp.cli import app
from llr_asp.letter import plain_letter
from llr_asp.wording import flags, marked

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()
TODAY = datetime.date(2026, 11, 21)


def test_the_plain_letter_is_dated_in_words_and_has_no_markup(rules: RuleSet, reasoner: Reasoner) -> None:
    patient = read_patient(str(EXAMPLES / "refused-b-four-months.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies["hip-resurfacing"]])
    letter = plain_letter([decision], rules, TODAY)
    assert letter.startswith("Policy for Hip Resurfacing (ARP 55)\n===")
    assert "Patient: refused-b-four-months. Date: 21 November 2026." in letter
    assert "Decision: NOT ELIGIBLE\n" in letter
    assert "Conservative care: 4 months; the policy needs at least 6 months." in letter
    assert "Policy review date: 2026 (review due this year)." in letter
    assert not re.search(r"[\\*`]|[a-z]+\.[a-z_]+ =", letter)  # no escapes, markup or field paths
    assert "conservative.months" not in letter and "needs ≥" not in letter
    # ids once, as the policy's own labels: never "C4.instability (C4.instability)"
    assert not re.search(r"(\b[\w.]+) \(\1\)", letter)
    assert letter.rstrip().endswith(f"llr-asp, rule set sha256 {decision.rules[:16]}.")
    assert letter.count(decision.rules[:16]) == 1


def test_explain_format_letter(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["explain", str(EXAMPLES / "route-c4-sfi.json"), "-p", "hip-resurfacing", "-f", "letter"]
    )
    assert result.exit_code == 0, result.output
    assert "Decision: ELIGIBLE ON THE ADOPTED READING — the ICB must confirm" in result.stdout
    assert "Readings of the policy text under which the decision differs" in result.stdout
    both = runner.invoke(app, ["explain", str(EXAMPLES / "route-c4-sfi.json"), "-f", "letter"])
    assert both.stdout.startswith("The record names no policy")  # the note stays with the letter


def test_the_contraindication_reads_the_right_way_round(rules: RuleSet, reasoner: Reasoner) -> None:
    man = validate({"sex": "male"}, rules, "man")
    woman = validate({"sex": "female"}, rules, "woman")
    hip = rules.policies["hip-resurfacing"]
    for patient, status in ((man, "met"), (woman, "not_met")):
        [decision] = reasoner.decide(patient, [hip])
        [node] = [n for n in decision.tree.walk() if n.id == "no_contraindication"]
        assert (node.status, node.label) == (status, "Not female: the procedure is contra-indicated in women")
    assert "sex criterion" not in json.dumps([r.label for r in hip.requirements.values()])


def test_a_caveat_stands_under_the_requirement_it_concerns(rules: RuleSet, reasoner: Reasoner) -> None:
    patient = read_patient(str(EXAMPLES / "route-c3-radiology-severe.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies["hip-resurfacing"]])
    [c3] = [n for n in decision.tree.walk() if n.id == "C3"]
    assert c3.reason and any("radiological grades" in d for d in c3.defects)
    letter = plain_letter([decision], rules, TODAY)
    assert "The published text: The radiological grades (none, mild, moderate, severe) are named" in letter
    knee = rules.policies["knee-resurfacing"]
    assert any("previous page" in c for c in knee.caveats["pain.severity"])
    assert not any("previous page" in c for c in rules.policies["hip-resurfacing"].caveats["pain.severity"])


def test_the_question_carries_the_caveat_in_next_and_the_fhir_item(tmp_path: Path, rules: RuleSet) -> None:
    record = tmp_path / "p.json"
    record.write_text(
        json.dumps(
            {
                "sex": "male",
                "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
                "conservative": {"months": 8, "documented": True, "failed": True},
                "pain": {"severity": "mild"},
            }
        )
    )
    step = json.loads(
        runner.invoke(app, ["next", str(record), "-p", "knee-resurfacing", "-f", "json"]).stdout
    )
    question = step["question"]
    expected = rules.caveats(question["field"], [rules.policies["knee-resurfacing"]])
    assert question["caveats"] == expected
    pain = runner.invoke(
        app, ["next", "-", "-p", "knee-resurfacing", "-f", "json", "--reask-unknown"], input="{}"
    )
    assert json.loads(pain.stdout)["question"] is not None
    questionnaire = json.loads(runner.invoke(app, ["fhir", "questionnaire", "-p", "knee-resurfacing"]).stdout)
    [radiology] = [i for i in questionnaire["item"] if i["linkId"] == "radiology.severity"]
    [help_item] = radiology["item"]
    assert help_item["type"] == "display" and "never defines them" in help_item["text"]
    assert help_item["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "help"


def test_null_and_absent_both_mean_not_known_and_reask_asks_again(tmp_path: Path) -> None:
    base = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    base["pain"]["severity"] = None
    record = tmp_path / "p.json"
    record.write_text(json.dumps(base))
    explained = json.loads(
        runner.invoke(app, ["explain", str(record), "-p", "hip-resurfacing", "-f", "json"]).stdout
    )
    assert explained["decision"] == "undetermined" and "pain.severity" in explained["missing"]
    plain = json.loads(
        runner.invoke(app, ["next", str(record), "-p", "hip-resurfacing", "-f", "json"]).stdout
    )
    assert plain["question"] is None and plain["missing"] == explained["missing"]
    text = runner.invoke(app, ["next", str(record), "-p", "hip-resurfacing"], env={"COLUMNS": "200"}).stdout
    assert "Nothing left to ask" not in text and "pain.severity was answered as not known" in text
    again = runner.invoke(
        app, ["next", str(record), "-p", "hip-resurfacing", "--reask-unknown", "-f", "json"]
    )
    assert json.loads(again.stdout)["question"]["field"] == "pain.severity"


def test_ask_reask_unknown_asks_a_null_once_more_and_ends(tmp_path: Path) -> None:
    base = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    base["pain"]["severity"] = None
    record = tmp_path / "p.json"
    record.write_text(json.dumps(base))
    result = runner.invoke(
        app, ["ask", "-p", "hip-resurfacing", "--from", str(record), "--reask-unknown"], input="unknown\n"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("How severe is the patient's pain?") == 1  # asked again, once


def test_a_questionnaire_response_is_about_the_policy_its_questionnaire_names(tmp_path: Path) -> None:
    response = json.loads(
        runner.invoke(
            app, ["explain", str(EXAMPLES / "route-c1-pain.json"), "-p", "knee-resurfacing", "-f", "fhir"]
        ).stdout
    )
    assert response["questionnaire"] == "urn:llr-asp:questionnaire:knee-resurfacing"
    path = tmp_path / "qr.json"
    for canonical in (
        "urn:llr-asp:questionnaire:knee-resurfacing",
        "urn:llr-asp:questionnaire:knee-resurfacing|abc",
    ):
        path.write_text(json.dumps({**response, "questionnaire": canonical}))
        out = json.loads(runner.invoke(app, ["explain", str(path), "-f", "json"]).stdout)
        assert isinstance(out, dict) and out["policy"] == "knee-resurfacing", canonical


def test_the_flag_stands_where_the_reading_bears(rules: RuleSet, reasoner: Reasoner) -> None:
    """route-c4-sfi: SFI sits under C2 and under C4; C2 fails for its instability however SFI is
    read, so only the SFI under C4 is flagged ⚑."""
    patient = read_patient(str(EXAMPLES / "route-c4-sfi.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies["hip-resurfacing"]])
    marks = marked(decision)
    sfi = [
        (parent.id, child)
        for parent in decision.tree.walk()
        for child in parent.children
        if child.id == "SFI"
    ]
    assert {parent: flags(child, marks) for parent, child in sfi} == {
        "C2": False,
        "C4.sfi_or_instability": True,
    }


def test_the_terminal_says_the_decision_rests_with_the_icb_once() -> None:
    result = runner.invoke(
        app,
        ["explain", str(EXAMPLES / "route-c1-pain.json"), "-p", "hip-resurfacing"],
        env={"COLUMNS": "200"},
    )
    assert result.stdout.count("The funding decision rests with NHS Leicester") == 1
