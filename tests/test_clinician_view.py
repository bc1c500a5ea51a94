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
from llr_asp.views.letter import plain_letter
from llr_asp.views.wording import flags, marked

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
    unnamed = runner.invoke(app, ["explain", str(EXAMPLES / "route-c4-sfi.json"), "-f", "letter"])
    assert unnamed.exit_code == 2 and unnamed.stdout == ""  # never a verdict on another procedure
    assert (
        unnamed.stderr.count("\n") == 1
        and "give --policy hip-resurfacing or knee-resurfacing" in unnamed.stderr
    )
    both = runner.invoke(app, ["explain", str(EXAMPLES / "route-c4-sfi.json"), "-f", "letter", "-p", "all"])
    assert both.exit_code == 0 and both.stdout.count("Decision: ") == 2  # asked for: every policy


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


# -- the clinical safety review's findings ------------------------------------------------------

SEEKING = {  # a patient who meets A, has 2 months of documented conservative care that failed
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 2, "documented": True, "failed": True},
    "knee": {"compartments_affected": 1},
}


# C1 met (severe persistent pain, moderate impairment): a set of care alone makes SEEKING eligible,
# one that leaves C5 and C6 unknown. Without it the smallest sets answer "at risk of joint
# destruction?" yes, and wait for care besides: withheld (the seventeenth review's F6).
C1_MET = {"pain": {"severity": "severe", "persistent": True}, "function": {"impairment": "moderate"}}


def _whatif(document: dict, policy: str = "hip-resurfacing") -> dict:
    path_result = runner.invoke(app, ["whatif", "-", "-p", policy, "-f", "json"], input=json.dumps(document))
    assert path_result.exit_code == 0, path_result.output
    return json.loads(path_result.stdout)


def test_more_care_for_a_patient_who_may_meet_an_urgent_route_carries_the_caution() -> None:
    """C6 not known yet (destruction risk unasked): four more months of care are not advised
    plainly; the route's own sentence goes with them, said as 'may meet'."""
    answer = _whatif(
        {**SEEKING, **C1_MET, "conservative": {**SEEKING["conservative"], "contraindicated": False}}
    )
    changes = [c for s in answer["counterfactuals"] for c in s if c["field"] == "conservative.months"]
    assert changes
    for change in changes:
        assert change["caution"]["route"] == "C6" and change["caution"]["met"] is False
    assert "delaying surgical correction" in change["caution"]["text"]


def test_more_care_while_a_contra_indication_is_unknown_hangs_on_finding_out() -> None:
    document = {**SEEKING, **C1_MET}  # contraindicated not known
    answer = _whatif(document)
    changes = [c for s in answer["counterfactuals"] for c in s if c["field"] == "conservative.months"]
    assert changes and all(
        c["unless"] == [{"field": "conservative.contraindicated", "is": True}] for c in changes
    )
    text = runner.invoke(
        app, ["whatif", "-", "-p", "hip-resurfacing"], input=json.dumps(document), env={"COLUMNS": "300"}
    )
    assert "is not yes: it is not known yet, so find out first" in text.stdout


def test_a_patient_who_meets_an_urgent_route_is_told_to_ask_the_icb_now_not_asked_questions() -> None:
    """C6 met, 2 months of care: the adopted reading refuses, the C6 reading funds; no answer
    can bring the two together, so nothing is asked and the first thing said is the urgency."""
    document = {**SEEKING, "joint": {"destruction_risk": True}}
    step = json.loads(
        runner.invoke(
            app, ["next", "-", "-p", "hip-resurfacing", "-f", "json"], input=json.dumps(document)
        ).stdout
    )
    assert (step["decision"], step["robust"], step["to_settle"], step["question"]) == (
        "not_eligible",
        False,
        [],
        None,
    )
    assert {"eligible", "not_eligible"} <= set(step["possible"])
    letter = runner.invoke(
        app, ["explain", "-", "-p", "hip-resurfacing", "-f", "letter"], input=json.dumps(document)
    ).stdout
    lines = [line for line in letter.splitlines() if line]
    assert lines[3].startswith("Decision: NOT ELIGIBLE ON THE ADOPTED READING")
    assert lines[4].startswith("⚠ Meets an urgent route (C6: at risk of joint destruction")
    action = "— ask the ICB now; do not delay the referral for conservative care."
    assert action in lines[4] and lines[4].index(action) < lines[4].index("“")  # the action first


def _urgent_line(document: dict, policy: str) -> str:
    letter = runner.invoke(app, ["explain", "-", "-p", policy, "-f", "letter"], input=json.dumps(document))
    return next(line for line in letter.stdout.splitlines() if line.startswith("⚠"))


def test_an_urgent_route_never_urges_a_procedure_the_patient_is_not_suitable_for() -> None:
    """The C5 patient as a woman (hip resurfacing is contra-indicated in women) or with three
    knee compartments: the urgency stands, but not for this procedure (bug: "Ask the ICB now;
    do not delay surgery" above the contra-indication)."""
    c5 = json.loads((EXAMPLES / "route-c5-independence.json").read_text())
    for document, policy in (
        ({**c5, "sex": "female"}, "hip-resurfacing"),
        ({**c5, "knee": {"compartments_affected": 3}}, "knee-resurfacing"),
    ):
        line = _urgent_line(document, policy)
        assert "not suitable for the patient" in line and "do not refer for it" in line, line
        assert "ask the ICB now" not in line.lower() and "without delay" not in line


def test_an_eligible_patient_on_an_urgent_route_is_told_to_refer_without_delay() -> None:
    """C6 (delay makes surgery harder) met and eligible: no plain ELIGIBLE that a busy GP files
    as routine (bug: the urgent line only for a patient refused)."""
    document = json.loads((EXAMPLES / "route-c6-destruction-risk.json").read_text())
    line = _urgent_line(document, "hip-resurfacing")
    assert line.startswith("⚠ Meets an urgent route (C6: at risk of joint destruction")
    assert "— refer without delay." in line and line.index("— refer without delay.") < line.index("“")


def test_no_line_below_a_contested_verdict_reads_plain(rules: RuleSet, reasoner: Reasoner) -> None:
    patient = read_patient(str(EXAMPLES / "route-c4-sfi.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies["hip-resurfacing"]])
    letter = plain_letter([decision], rules, TODAY)
    assert "- ⚑ met on the adopted reading: Meets the ARP 55 funding criteria (eligibility)" in letter
    assert "✔ Met: Meets the ARP 55 funding criteria" not in letter
    text = runner.invoke(
        app, ["explain", str(EXAMPLES / "route-c4-sfi.json"), "-p", "hip-resurfacing"], env={"COLUMNS": "200"}
    ).stdout
    assert "⚑ met on the adopted reading: ✔ eligibility" in text
    whatif = runner.invoke(
        app, ["whatif", str(EXAMPLES / "route-c4-sfi.json"), "-p", "hip-resurfacing"], env={"COLUMNS": "200"}
    ).stdout
    assert "Already eligible" not in whatif and "Eligible on the adopted reading only" in whatif


def test_a_refusal_on_clinical_grounds_offers_no_ifr_for_the_procedure() -> None:
    for example, policy, words in (
        ("refused-hip-female", "hip-resurfacing", "total hip replacement"),
        ("refused-knee-three-compartments", "knee-resurfacing", "total knee replacement"),
    ):
        letter = runner.invoke(
            app, ["explain", str(EXAMPLES / f"{example}.json"), "-p", policy, "-f", "letter"]
        ).stdout
        assert "Individual Funding Request for it would not be appropriate" in letter and words in letter
        assert "the ICB's general route for exceptional clinical circumstances" not in letter
    other = runner.invoke(
        app,
        ["explain", str(EXAMPLES / "refused-b-four-months.json"), "-p", "hip-resurfacing", "-f", "letter"],
    ).stdout
    assert "the ICB's general route for exceptional clinical circumstances" in other  # refused for B: the IFR


def test_the_readings_of_c5_and_c6_are_not_worded_as_advice(rules: RuleSet) -> None:
    for policy in rules.policies.values():
        for point in ("C5.route", "C6.route"):
            adopted = policy.readings[point].adopted
            assert (
                "not advice" in adopted and "needed even where" not in adopted and "come first" not in adopted
            )


def test_a_routes_caution_is_said_once_a_set() -> None:
    """A new referral's what-if set asks months, documentation and failure, each cautioned by
    C5 (which the patient may meet): the 60-word sentence once, then named (bug: three times in
    one line). C1 met (severe persistent pain, severe impairment), so that the set needs no
    destruction risk: one that did would be withheld (the seventeenth review's F6)."""
    document = json.loads((EXAMPLES / "undetermined-new-referral.json").read_text())
    document.update(pain={"severity": "severe", "persistent": True}, function={"impairment": "severe"})
    text = runner.invoke(app, ["whatif", "-", "-p", "hip-resurfacing"], input=json.dumps(document)).stdout
    words = " ".join(line.strip() for line in text.splitlines())  # however the lines were wrapped
    first = words.split("1. Eligible if", 1)[1].split(" 2. Eligible if")[0].split("care: what")[0]
    assert first.count("⚠ Caution: the patient may meet C5") == 1
    assert first.count("⚠ (the caution about C5 above)") == 2


def test_no_documentation_is_offered_while_care_is_contra_indicated() -> None:
    """Care contra-indicated now, its documentation answered no: what-if never offers to make it
    documented (care that can no longer be given can only be documented after the fact); the
    other reading's urgent route is said instead."""
    document = json.loads((EXAMPLES / "route-c5-independence.json").read_text())
    document["conservative"] = {"documented": False, "contraindicated": True}
    answer = _whatif(document)
    changed = {c["field"] for changes in answer["counterfactuals"] for c in changes}
    assert "conservative.documented" not in changed and "conservative.months" not in changed
    assert any(c["readings"] == ["C5.route"] and c["decision"] == "eligible" for c in answer["contested"])


def test_a_yes_or_no_outcome_reads_as_an_answer_not_were_yes() -> None:
    """ "Eligible if conservative care failed to improve the symptoms were yes" (GP review): a
    yes/no field is named, then answered; still a condition, not a step."""
    text = runner.invoke(
        app, ["whatif", str(EXAMPLES / "refused-b-not-failed.json"), "-p", "hip-resurfacing"]
    ).stdout
    words = " ".join(line.strip() for line in text.splitlines())
    assert (
        "conservative care failed to improve the symptoms: yes (now no; an outcome of care, not a step"
        in words
    )
    assert "were yes" not in words and "were no" not in words


def test_a_route_the_patient_may_meet_is_said_first_with_what_to_find_out() -> None:
    """The C5 patient with immediate danger not known: some of C5 met, none refuted, a reading
    could fund him: find out now, before waiting for more care (GP review: nothing was said); a
    new referral, of whom nothing is known, gets no such line."""
    document = json.loads((EXAMPLES / "route-c5-independence.json").read_text())
    document["independence"]["immediate_danger"] = None
    line = _urgent_line(document, "hip-resurfacing")
    assert line.startswith("⚠ May meet an urgent route (C5: severe pain and impairment")
    assert "find out now (in immediate danger of losing independence: not yet known)" in line
    letter = runner.invoke(
        app,
        [
            "explain",
            str(EXAMPLES / "undetermined-new-referral.json"),
            "-p",
            "hip-resurfacing",
            "-f",
            "letter",
        ],
    ).stdout
    assert "⚠" not in letter
