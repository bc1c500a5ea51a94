"""The rule set: loading, checks that point at file and line, and policies as data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleError, RuleSet, load_rules, validate
from llr_asp.cli import app
from llr_asp.core.ruleset import default_rules_dir, engine_file

RULES = default_rules_dir()

SHOULDER = """
policy("shoulder-test").
title("shoulder-test", "Policy for a Test Procedure").
reference("shoulder-test", "ARP 99").
commissioner("shoulder-test", "Test ICB").
review("shoulder-test", 2030).
source("shoulder-test", "sources/shoulder.txt").
root("shoulder-test", "eligibility").
all_of("shoulder-test", "eligibility", "Test procedure can be funded").
text("shoulder-test", "eligibility", "Funded when pain is severe and six months of measures failed.").
part("shoulder-test", "eligibility", 1, "pain").
part("shoulder-test", "eligibility", 2, "months").
condition("shoulder-test", "pain", "Pain is severe", "pain.severity", eq, severe).
condition("shoulder-test", "months", "Six months of measures", "conservative.months", ge, 6).
"""


READING = """reading("shoulder-test", "pain.grade", "pain", "Severe means severe.").
alternative("shoulder-test", "pain.grade", "intense", "Intense is enough.").
condition(V, "pain", "Pain is intense or worse", "pain.severity", ge, intense) :- variant(V, "shoulder-test", "pain.grade", "intense").
"""
# a second clinical point whose alternative declares "pain" otherwise: the two cannot combine
CLASHING = """reading("shoulder-test", "pain.kind", "pain", "Any pain grade is read as the record gives it.").
alternative("shoulder-test", "pain.kind", "persistent", "Pain must be persistent.").
scope("shoulder-test", "pain.kind", "persistent", clinical).
condition(V, "pain", "Pain is persistent", "pain.persistent", eq, true) :- variant(V, "shoulder-test", "pain.kind", "persistent").
"""


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def test_a_third_policy_needs_only_a_rule_file(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    (rules_dir / "shoulder_test.lp").write_text(SHOULDER)
    rules = load_rules(rules_dir)
    assert list(rules.policies) == ["hip-resurfacing", "knee-resurfacing", "shoulder-test"]
    patient = validate({"pain": {"severity": "severe"}}, rules, "t")
    [decision] = Reasoner(rules).decide(patient, [rules.policies["shoulder-test"]])
    assert decision.decision == "undetermined"
    assert decision.missing == ("conservative.months",)
    result = CliRunner().invoke(app, ["policies", "--rules", str(rules_dir), "-f", "json"])
    assert "shoulder-test" in [p["id"] for p in json.loads(result.stdout)]
    file = tmp_path / "p.json"
    file.write_text('{"pain": {"severity": "severe"}, "conservative": {"months": 7}}')
    result = CliRunner().invoke(
        app, ["explain", str(file), "-p", "shoulder-test", "--rules", str(rules_dir), "-f", "json"]
    )
    assert json.loads(result.stdout)["decision"] == "eligible"


BROKEN = [
    ("x.lp", "policy(\n", "x.lp:2", "syntax error"),
    ("x.lp", SHOULDER + 'all_of("shoulder-test", "pain", "Twice").\n', "x.lp:13", "declared more than once"),
    (
        "x.lp",
        '\n\ncondition("hip-resurfacing", "C7", "Typo", "joint.destructon_risk", eq, true).\n'
        'part("hip-resurfacing", "C", 7, "C7").\n',
        "x.lp:3",
        "condition tests an undeclared field",
    ),
    (
        "x.lp",
        SHOULDER.replace(
            'text("shoulder-test", "eligibility", "Funded when pain is severe and six months of measures failed.").',
            "",
        ),
        "x.lp:9",
        "requirement without source text",
    ),
    ("x.lp", SHOULDER.replace("ge, 6", "ge, 6000"), "x.lp:14", "outside the field's domain"),
    ("x.lp", SHOULDER.replace("eq, severe", "ge, agony"), "x.lp:13", "outside the field's domain"),
    (
        "x.lp",
        SHOULDER.replace('title("shoulder-test", "Policy for a Test Procedure").', ""),
        "x.lp:2",
        "policy has no title",
    ),
    (
        "x.lp",
        SHOULDER + 'part("shoulder-test", "pain", 1, "eligibility").\n',
        "x.lp:11",
        "requirement is part of itself",
    ),
    (
        "x.lp",
        SHOULDER + 'part("shoulder-test", "months", 1, "other").\n'
        'condition("shoulder-test", "other", "Other", "sex", eq, male).\n',
        "x.lp:15",
        "a condition cannot have parts",
    ),
    ("x.lp", "undeclared_input(X) :- known_thing(X).\n", "x.lp:1", "atom does not occur in any rule head"),
    *(
        ("x.lp", SHOULDER + READING + extra, f"x.lp:{line}", problem)
        for extra, line, problem in (
            ("", 16, "alternative has no scope"),
            (
                'scope("shoulder-test", "pain.grade", "intense", clinical).\n'
                'scope("shoulder-test", "pain.grade", "intense", analysis).\n',
                18,
                "more than one scope",
            ),
            ('scope("shoulder-test", "pain.grade", "intense", maybe).\n', 18, "unknown scope"),
            (
                'scope("shoulder-test", "pain.grade", "intense", analysis).\n',
                18,
                "names no sentence that refutes it",
            ),
            (
                'scope("shoulder-test", "pain.grade", "intense", clinical).\n'
                'refuted("shoulder-test", "pain.grade", "intense", "A sentence.").\n',
                19,
                "not of analysis scope",
            ),
            (
                'scope("shoulder-test", "pain.grade", "intense", clinical).\n'
                'scope("shoulder-test", "pain.other", "other", clinical).\n',
                19,
                "scope of an undeclared alternative",
            ),
        )
    ),
    (
        "x.lp",
        SHOULDER + READING + 'scope("shoulder-test", "pain.grade", "intense", clinical).\n' + CLASHING,
        "x.lp:17",
        "cannot be combined",
    ),
    (
        "x.lp",
        SHOULDER + 'caveat("shoulder-test", "pain.sevrity", "Undefined grades.").\n',
        "x.lp:15",
        "caveat of an undeclared field",
    ),
    (
        "x.lp",
        SHOULDER + 'caveat("elbow-test", "pain.severity", "Undefined grades.").\n',
        "x.lp:15",
        "caveat of an undeclared policy",
    ),
    (
        "x.lp",
        SHOULDER + 'unsuitable("shoulder-test", "elbow", "No IFR.").\n',
        "x.lp:15",
        "unsuitable/3 of an undeclared requirement",
    ),
    (
        "x.lp",
        SHOULDER + 'bars("no-such-assumption", "conservative.months", "sex", female).\n',
        "x.lp:15",
        "names an undeclared assumption",
    ),
    (
        "x.lp",
        SHOULDER + 'caution("shoulder-test", "months", "elbow").\n',
        "x.lp:15",
        "caution names an undeclared route",
    ),
]


@pytest.mark.parametrize(("name", "text", "where", "problem"), BROKEN, ids=[b[3] for b in BROKEN])
def test_bad_rules_name_file_and_line(tmp_path: Path, name: str, text: str, where: str, problem: str) -> None:
    rules_dir = copy_rules(tmp_path)
    (rules_dir / name).write_text(text)
    with pytest.raises(RuleError) as error:
        load_rules(rules_dir)
    assert f"{rules_dir / where}" in str(error.value)
    assert problem in str(error.value)
    result = CliRunner().invoke(app, ["policies", "--rules", str(rules_dir)])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert problem in line


def test_every_quoted_sentence_is_in_the_policy_text(rules: RuleSet) -> None:
    for policy in rules.policies.values():
        source = " ".join((rules.directory / policy.source).read_text().split())
        for requirement in policy.requirements.values():
            if requirement.text:
                assert " ".join(requirement.text.split()) in source, (policy.id, requirement.id)


def test_every_requirement_of_the_design_is_declared(rules: RuleSet) -> None:
    routes = {"A", "B", "C", "C1", "C2", "C3", "C4", "C5", "C6", "eligibility"}
    assert routes | {"no_contraindication"} <= set(rules.policies["hip-resurfacing"].requirements)
    assert routes | {"compartments"} <= set(rules.policies["knee-resurfacing"].requirements)


def test_interpretations_are_recorded(rules: RuleSet) -> None:
    knee = rules.policies["knee-resurfacing"].requirements
    hip = rules.policies["hip-resurfacing"].requirements
    assert any("previous page" in note for note in knee["C1"].interpretations)
    assert any("without AND / OR" in note for note in knee["eligibility"].interpretations)
    hip_readings = rules.policies["hip-resurfacing"].readings
    assert "cut off" in hip_readings["C4.cut-off"].adopted and hip_readings["C4.cut-off"].requirement == "C4"
    assert "background paragraph" in hip_readings["contraindication.criterion"].adopted
    assert "no_contraindication" in hip
    assert rules.assumptions  # the domain assumption of DESIGN §5


def test_digest_changes_with_the_rules(tmp_path: Path, rules: RuleSet) -> None:
    rules_dir = copy_rules(tmp_path)
    assert load_rules(rules_dir).digest == rules.digest
    (rules_dir / "shoulder_test.lp").write_text(SHOULDER)
    assert load_rules(rules_dir).digest != rules.digest


def test_a_constant_given_to_a_grounding_takes_the_place_of_the_programs_own() -> None:
    """batch weighs the readings of two patients to a solve in a grounding of slots.lp, whose
    own #const says sixteen."""

    def slots(**constants: int) -> list[int]:
        control = load_rules().ground([engine_file("slots.lp")], constants=constants)
        return sorted(a.symbol.arguments[0].number for a in control.symbolic_atoms.by_signature("slot", 1))

    assert slots() == list(range(1, 17))
    assert slots(slots=2) == [1, 2]
