"""`llr-asp analyze`: each finding kind on a synthetic rule set with exactly that defect and on
a twin without it; the findings on the real policies; every witness run through explain."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llr_asp import Reasoner, load_rules, validate
from llr_asp.cli import app
from llr_asp.core.decision import Decision
from llr_asp.core.ruleset import default_rules_dir, engine_file
from llr_asp.engines import analysis as analysis_module
from llr_asp.engines.analysis import KINDS, Finding, analyze

CASES = Path(__file__).parent / "analysis"
TODAY = datetime.date(2026, 11, 21)


def case(tmp_path: Path, kind: str, variant: str) -> Path:
    """A rule set directory: the shared fields and policy plus one case file."""
    target = tmp_path / f"{kind}-{variant}"
    while target.exists():  # the same case again: a fresh directory
        target = target.with_name(target.name + "+")
    target.mkdir()
    for name in ("fields.lp", "policy.lp", f"{kind}.{variant}.lp"):
        shutil.copy(CASES / name, target / name)
    return target


def findings(directory: Path) -> list[Finding]:
    return analyze(directory, today=TODAY)[1]


def explain(directory: Path, witness: dict[str, Any]) -> Decision:
    """What `llr-asp explain` decides for the witness, under the policy it names."""
    reasoner = Reasoner.load(directory)
    patient = validate(witness, reasoner.rules, "witness")
    [decision] = reasoner.decide(patient, reasoner.policies(patient.policy))
    return decision


def statuses(decision: Decision) -> dict[str, str]:
    return {node.id: node.status for node in decision.tree.walk()}


def only(found: list[Finding], kind: str) -> Finding:
    [finding] = [f for f in found if f.kind == kind]
    return finding


KINDS_WITH_CASES = sorted({p.name.split(".")[0] for p in CASES.glob("*.defect.lp")})


def test_every_finding_kind_but_incomplete_has_a_case() -> None:
    # incomplete cannot come from rule files alone: it is tested on a broken engine below
    assert set(KINDS_WITH_CASES) == set(KINDS) - {"incomplete"}


@pytest.mark.parametrize("kind", KINDS_WITH_CASES)
def test_the_defect_is_found_and_its_twin_is_clean(tmp_path: Path, kind: str) -> None:
    defect = findings(case(tmp_path, kind, "defect"))
    twin = findings(case(tmp_path, kind, "twin"))
    assert kind in {f.kind for f in defect}
    assert kind not in {f.kind for f in twin}
    for finding in defect:  # every witness is a valid patient document
        if finding.witness is not None:
            validate(finding.witness, load_rules(case(tmp_path, kind, "defect")), "witness")


def test_exclusion_witness_meets_every_criterion_and_is_refused(tmp_path: Path) -> None:
    rules = case(tmp_path, "exclusion_outside_criteria", "defect")
    finding = only(findings(rules), "exclusion_outside_criteria")
    assert finding.requirements == ("bg",)
    assert finding.witness is not None
    decision = explain(rules, finding.witness)
    assert decision.decision == "not_eligible"
    assert [statuses(decision)[r] for r in ("crit", "route", "bg")] == ["met", "met", "not_met"]


def test_redundant_route_names_the_sibling_that_covers_it(tmp_path: Path) -> None:
    rules = case(tmp_path, "redundant_route", "defect")
    finding = only(findings(rules), "redundant_route")
    assert finding.requirements == ("r2", "r1")
    assert finding.witness is not None
    found = statuses(explain(rules, finding.witness))
    assert found["r2"] == found["r1"] == "met"


def test_dead_route_names_what_it_conflicts_with(tmp_path: Path) -> None:
    rules = case(tmp_path, "dead_route", "defect")
    finding = only(findings(rules), "dead_route")
    assert finding.requirements == ("r2", "crit")
    assert finding.witness is not None
    decision = explain(rules, finding.witness)
    assert decision.decision == "not_eligible"
    assert [statuses(decision)[r] for r in ("r2", "crit")] == ["met", "not_met"]


def test_never_and_always_met_are_reported_where_they_arise(tmp_path: Path) -> None:
    never = only(findings(case(tmp_path, "never_met", "defect")), "never_met")
    always = only(findings(case(tmp_path, "always_met", "defect")), "always_met")
    assert never.requirements == ("r2",)  # not its parts, which can each be met
    assert always.requirements == ("r2",)
    assert always.witness is not None
    assert statuses(explain(case(tmp_path, "always_met", "defect"), always.witness))["r2"] == "met"


def test_inconsistent_rules_give_a_patient_with_two_decisions(tmp_path: Path) -> None:
    finding = only(findings(case(tmp_path, "inconsistent", "defect")), "inconsistent")
    assert finding.severity == "error"
    assert finding.witness is not None and finding.witness["a"] is False


def test_a_broken_engine_leaves_complete_patients_undecided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kleene = Path(engine_file("kleene.lp")).read_text()
    rule = "status(W,P,R,not_met) :- test(P,R,F,_,_), judged(W,P), known(W,F), not holds(W,P,R).\n"
    assert rule in kleene
    broken = tmp_path / "kleene.lp"
    broken.write_text(kleene.replace(rule, ""))
    monkeypatch.setattr(analysis_module, "PROGRAMS", [str(broken), engine_file("analysis.lp")])
    found = findings(case(tmp_path, "dead_route", "twin"))
    finding = only(found, "incomplete")
    assert finding.severity == "error" and finding.witness is not None


def test_recorded_notes_quote_the_sentence_and_show_a_funded_patient(tmp_path: Path) -> None:
    rules = case(tmp_path, "interpretation", "defect")
    finding = only(findings(rules), "interpretation")
    assert finding.requirements == ("r1",)
    assert finding.quote == "Funded when the criterion and a route are met."  # the parent's sentence
    assert finding.witness is not None
    assert explain(rules, finding.witness).decision == "eligible"
    defect = only(findings(case(tmp_path, "text_defect", "defect")), "text_defect")
    assert defect.message == "eligibility: The sentence stops mid-clause."


def test_review_overdue_is_a_warning(tmp_path: Path) -> None:
    due = only(findings(case(tmp_path, "review_due", "defect")), "review_due")
    assert (due.policy, due.severity, due.witness) == ("u", "warning", None)
    assert "review overdue (review date 2020)" in due.message


def test_hygiene_points_at_file_and_line(tmp_path: Path) -> None:
    rules = case(tmp_path, "rule_hygiene", "defect")
    spare = only(findings(rules), "rule_hygiene")
    assert (spare.severity, Path(spare.file or "").name, spare.line) == (
        "warning",
        "rule_hygiene.defect.lp",
        7,
    )
    assert 'field("spare",bool)' in spare.message
    (rules / "rule_hygiene.defect.lp").write_text(
        (rules / "rule_hygiene.defect.lp").read_text() + 'condition("t", "r1b", "Typo", "bb", eq, true).\n'
    )
    found = findings(rules)
    hygiene = [f for f in found if f.kind == "rule_hygiene"]
    assert {(f.severity, f.line) for f in hygiene} == {("error", 8)}
    assert {f.message.split(":")[0] for f in hygiene} == {
        "condition tests an undeclared field",
        "requirement is not part of the policy's decision",
        "requirement without source text (add text/3 to it or to a parent)",
    }
    assert found == hygiene  # no search on rules that fail their checks


# -- the real policies -------------------------------------------------------------------------

EXPECTED = {
    ("warning", "exclusion_outside_criteria", "hip-resurfacing", ("no_contraindication",)),
    ("warning", "exclusion_outside_criteria", "knee-resurfacing", ("compartments",)),
    ("note", "redundant_route", "hip-resurfacing", ("C5", "C1")),
    ("note", "redundant_route", "knee-resurfacing", ("C5", "C1")),
    ("note", "review_due", "hip-resurfacing", ()),
    ("note", "review_due", "knee-resurfacing", ()),
    *(
        ("note", "contested_reading", policy, (rid,))
        for policy in ("hip-resurfacing", "knee-resurfacing")
        for rid in ("SFI", "C3.impairment", "C4.radiology", "C4.instability", "C4", "C5", "C6")
    ),
    ("note", "contested_reading", "hip-resurfacing", ("no_contraindication",)),
    ("note", "contested_reading", "knee-resurfacing", ("compartments",)),
    ("note", "contested_reading", "knee-resurfacing", ("C",)),
    *(
        ("note", "contested_combination", policy, pair)
        for policy in ("hip-resurfacing", "knee-resurfacing")
        for pair in (
            ("SFI", "C3.impairment"),
            ("SFI", "C4.radiology"),
            ("SFI", "C4.instability"),
            ("SFI", "C4"),
            ("C3.impairment", "C4.radiology"),
            ("C3.impairment", "C4.instability"),
            ("C3.impairment", "C4"),
            # three that only together decide otherwise (brute force found two of them first)
            ("SFI", "C3.impairment", "C4.radiology"),
            ("SFI", "C3.impairment", "C4.instability"),
            ("SFI", "C3.impairment", "C4"),
        )
    ),
}


@pytest.fixture(scope="module")
def real() -> list[Finding]:
    return analyze(today=TODAY)[1]


@pytest.mark.whole
def test_the_real_policies_have_the_agreed_findings(real: list[Finding]) -> None:
    rules = load_rules()
    found = {(f.severity, f.kind, f.policy, f.requirements) for f in real}
    recorded = {
        (kind, p.id, (r.id,))
        for p in rules.policies.values()
        for r in p.requirements.values()
        for kind, notes in (("text_defect", r.defects), ("interpretation", r.interpretations))
        if notes
    }
    assert {(k, p, r) for _, k, p, r in found if k in ("text_defect", "interpretation")} == recorded
    assert {f for f in found if f[1] not in ("text_defect", "interpretation")} == EXPECTED
    texts = {
        ("hip-resurfacing", "C4"): "cut off",
        ("knee-resurfacing", "C"): "no OR",
        ("knee-resurfacing", "eligibility"): "no AND / OR",
        ("knee-resurfacing", "C1"): "previous page",
    }
    for (policy, rid), words in texts.items():
        assert any(
            words in f.message
            for f in real
            if f.kind == "text_defect" and (f.policy, f.requirements) == (policy, (rid,))
        )
    # the domain assumption is temporal (no care added while contra-indicated): twelve months
    # of care before a contra-indication are consistent, so C5 is not a dead route
    assert not any(f.kind == "dead_route" for f in real)


@pytest.mark.exhaustive
def test_every_real_witness_shows_its_finding_through_explain(real: list[Finding]) -> None:
    rules = default_rules_dir()
    dead = {f.requirements[0] for f in real if f.kind in ("dead_route", "redundant_route")}
    for finding in real:
        if finding.witness is None:
            continue
        decision = explain(rules, finding.witness)
        found = statuses(decision)
        rid = finding.requirements[0]
        if finding.kind == "exclusion_outside_criteria":
            assert decision.decision == "not_eligible"
            assert [found[r] for r in ("A", "B", "C", rid)] == ["met", "met", "met", "not_met"]
        elif finding.kind == "dead_route":
            assert decision.decision == "not_eligible"
            assert (found[rid], found[finding.requirements[1]]) == ("met", "not_met")
        elif finding.kind == "redundant_route":
            assert found[rid] == found[finding.requirements[1]] == "met"
        elif finding.kind == "contested_reading":  # explain says the decision rests on it, or
            # (for an analysis alternative) says nothing of it: it never reaches a clinician
            readings = {c.readings for c in decision.contested}
            clinical = all(a.clinical for a in decision.policy.readings_of(rid)[0].alternatives)
            assert any(rid in c.requirements for c in decision.contested) == clinical, finding
            assert not clinical or len(min(readings, key=len)) == 1
        elif finding.kind == "contested_combination":  # the set, and no smaller part of it
            assert finding.requirements in {c.requirements for c in decision.contested}, finding
            assert not any(set(c.requirements) < set(finding.requirements) for c in decision.contested)
        else:  # recorded notes: a patient funded through the requirement, if any can be
            assert found[rid] == "met", finding
            assert decision.decision == "eligible" or rid in dead, finding


@pytest.mark.whole
def test_analyze_cli_json_and_text() -> None:
    result = CliRunner().invoke(app, ["analyze", "-f", "json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["rules"] == load_rules().digest
    first = report["findings"][0]
    assert set(first) >= {"kind", "severity", "policy", "requirements", "message", "witness"}
    result = CliRunner().invoke(app, ["analyze", "-p", "knee-resurfacing"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "Findings: " in result.stdout and "hip-resurfacing" not in result.stdout
    witnesses, lines = printed_witnesses(result.stdout)
    assert max(len(line) for line in lines) <= 80
    assert witnesses  # each on one line, however wide: valid JSON to copy


def printed_witnesses(text: str) -> tuple[list[Any], list[str]]:
    """The witnesses of a text report (each parsed from its one line), and its other lines."""
    lines = text.splitlines()
    prefix = "    witness: "
    witnesses = [json.loads(line[len(prefix) :]) for line in lines if line.startswith(prefix)]
    return witnesses, [line for line in lines if not line.startswith(prefix)]


@pytest.mark.whole
def test_witnesses_are_copied_whole_from_the_text_and_saved_with_witnesses_dir(tmp_path: Path) -> None:
    """The README: a witness copied from the text runs through explain; --witnesses DIR saves
    each as a file named by its finding."""
    runner = CliRunner()
    report = json.loads(runner.invoke(app, ["analyze", "-p", "hip-resurfacing", "-f", "json"]).stdout)
    expected = [f["witness"] for f in report["findings"] if f["witness"] is not None]
    folder = tmp_path / "witnesses"
    result = runner.invoke(
        app, ["analyze", "-p", "hip-resurfacing", "--witnesses", str(folder)], env={"COLUMNS": "60"}
    )
    assert result.exit_code == 0, result.stderr
    assert printed_witnesses(result.stdout)[0] == expected
    assert f"wrote {len(expected)} witnesses to {folder}" in result.stderr
    files = sorted(folder.iterdir())
    assert [json.loads(f.read_text()) for f in files] == expected
    first = report["findings"][0]
    assert files[0].name == f"01-{first['kind']}-hip-resurfacing-{'+'.join(first['requirements'])}.json"
    shown = runner.invoke(app, ["explain", str(files[0]), "-f", "json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["decision"] == "not_eligible"
    (tmp_path / "file").write_text("")
    refused = runner.invoke(app, ["analyze", "-p", "hip-resurfacing", "--witnesses", str(tmp_path / "file")])
    assert refused.exit_code == 2 and "is not a directory" in refused.stderr


def test_analyze_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", "-p", "elbow"])
    assert result.exit_code == 2 and 'unknown policy "elbow"' in result.stderr
    (tmp_path / "x.lp").write_text("policy(\n")
    result = CliRunner().invoke(app, ["analyze", "--rules", str(tmp_path)])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1


NOTHING_FUNDS = """
part("t", "route", 1, "r1").
part("t", "route", 2, "r2").
all_of("t", "r1", "Long and short").
part("t", "r1", 1, "r1.long").
part("t", "r1", 2, "r1.short").
condition("t", "r1.long", "At least fifty months", "n", ge, 50).
condition("t", "r1.short", "Under ten months", "n", lt, 10).
condition("t", "r2", "Over a hundred months", "n", gt, 100).
"""


def test_a_policy_nothing_can_fund_is_reported_where_it_arises_and_only_there(tmp_path: Path) -> None:
    """Neither route can be met (r1 asks for two months counts at once, r2 for more than the range
    allows), so nor can the route, nor the policy. Never-met is reported for r1 and r2 only, where
    it arises, not for every ancestor (bug: route and eligibility reported too); and no route is
    "dead", since nothing can lead to funding (bug: every requirement reported dead when the root
    itself can never be met). Each never-met witness is as plain as can be: it meets what it can
    of its own requirement and knows nothing else (bug: the focus of one question left on for
    the next, so r2's witness knew a number of months for r1's sake)."""
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(CASES / "fields.lp", target / "fields.lp")
    (target / "policy.lp").write_text((CASES / "policy.lp").read_text() + NOTHING_FUNDS)
    found = findings(target)
    never = {f.requirements: f for f in found if f.kind == "never_met"}
    assert set(never) == {("r1",), ("r2",)}
    assert not [f for f in found if f.kind == "dead_route"]
    r1, r2 = never[("r1",)].witness, never[("r2",)].witness
    assert r1 is not None and r2 is not None
    assert "n" in r1 and (r1["n"] >= 50 or r1["n"] < 10)  # meets one of r1's parts
    assert not set(r2) - {"id", "policy", "meta"}  # r2 can be met in no part: nothing known
