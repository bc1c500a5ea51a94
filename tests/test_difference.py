"""`llr-asp diff`: classes of patients decided differently, their counts and witnesses."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import decision as oracle
from typer.testing import CliRunner

from llr_asp import Reasoner, load_rules, validate
from llr_asp.cli import app
from llr_asp.core.ruleset import default_rules_dir
from llr_asp.engines.difference import compare_policies, compare_versions

RULES = default_rules_dir()
CASES = Path(__file__).parent / "analysis"

SECOND = """
policy("v").
title("v", "Second test policy").
reference("v", "T 2").
commissioner("v", "Test ICB").
review("v", 2030).
source("v", "v.txt").
root("v", "eligibility").
all_of("v", "eligibility", "Funded").
text("v", "eligibility", "Funded after ten months with A or a grade of at least mid.").
part("v", "eligibility", 1, "long").
part("v", "eligibility", 2, "route").
condition("v", "long", "At least ten months", "n", ge, 10).
any_of("v", "route", "A route").
part("v", "route", 1, "a").
part("v", "route", 2, "grade").
condition("v", "a", "A holds", "a", eq, true).
condition("v", "grade", "Grade at least mid", "g", ge, mid).
"""


def decided(directory: Path, witness: dict[str, object], policy: str) -> str:
    reasoner = Reasoner.load(directory)
    patient = validate(witness, reasoner.rules, "witness")
    [decision] = reasoner.decide(patient, reasoner.policies(policy))
    return decision.decision


def test_counts_equal_brute_force_over_bucketed_profiles(tmp_path: Path) -> None:
    for name in ("fields.lp", "policy.lp", "dead_route.twin.lp"):
        shutil.copy(CASES / name, tmp_path / name)
    (tmp_path / "v.lp").write_text(SECOND)
    rules = load_rules(tmp_path)
    comparison = compare_policies(rules, "t", "v")
    # the profiles: a, g, and n bucketed at the thresholds both use (t: n >= 6, n < 30; v: n >= 10)
    domains = {"a": [True, False], "g": ["low", "mid", "high"], "n": [0, 6, 10, 30]}
    expected: dict[tuple[str, str], int] = {}
    for values in itertools.product(*domains.values()):
        patient = dict(zip(domains, values))
        pair = (oracle(rules, rules.policies["t"], patient), oracle(rules, rules.policies["v"], patient))
        if pair[0] != pair[1]:
            expected[pair] = expected.get(pair, 0) + 1
    assert comparison.profiles == 2 * 3 * 4
    found: dict[tuple[str, str], int] = {}
    for difference in comparison.differences:
        pair = (difference.first, difference.second)
        found[pair] = found.get(pair, 0) + difference.profiles
        assert decided(tmp_path, difference.witness, "t") == difference.first
        assert decided(tmp_path, difference.witness, "v") == difference.second
    assert found == expected


def test_hip_and_knee_differ_by_sex_and_compartments() -> None:
    comparison = compare_policies(load_rules(), "hip-resurfacing", "knee-resurfacing")
    classes = {(d.first, d.second, d.requirements): d.profiles for d in comparison.differences}
    assert classes == {
        ("not_eligible", "eligible", ("no_contraindication",)): 25088,
        ("eligible", "not_eligible", ("compartments",)): 25088,
    }
    for difference in comparison.differences:
        assert decided(RULES, difference.witness, "hip-resurfacing") == difference.first
        assert decided(RULES, difference.witness, "knee-resurfacing") == difference.second


def lowered_threshold(tmp_path: Path) -> Path:
    new = tmp_path / "new"
    shutil.copytree(RULES, new)
    criteria = new / "msk_threshold.lp"
    text = criteria.read_text()
    assert '"conservative.months", ge, 6)' in text
    criteria.write_text(text.replace('"conservative.months", ge, 6)', '"conservative.months", ge, 3)'))
    return new


def test_a_rule_change_shows_who_it_affects(tmp_path: Path) -> None:
    new = lowered_threshold(tmp_path)
    comparison = compare_versions(RULES, new, "hip-resurfacing")
    [difference] = comparison.differences
    assert (difference.first, difference.second, difference.requirements) == (
        "not_eligible",
        "eligible",
        ("B.months",),
    )
    assert difference.profiles == 25088  # the eligible profiles, now with 3-5 months instead of 6+
    assert decided(RULES, difference.witness, "hip-resurfacing") == "not_eligible"
    assert decided(new, difference.witness, "hip-resurfacing") == "eligible"
    assert compare_versions(RULES, RULES, "knee-resurfacing").differences == ()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_against_a_git_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(RULES, repo / "rules")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "rules")
    shutil.rmtree(repo / "rules")
    shutil.copytree(lowered_threshold(tmp_path), repo / "rules")
    args = ["diff", "hip-resurfacing", "--against-git", "HEAD", "--rules", str(repo / "rules"), "-f", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [difference] = report["differences"]
    assert difference["requirements"] == ["B.months"]
    sides = ["hip-resurfacing (at HEAD)", "hip-resurfacing (now)"]  # named by revision
    assert [side["label"] for side in report["compared"]] == sides
    assert "under hip-resurfacing (at HEAD)" in difference["message"]
    result = CliRunner().invoke(app, [*args[:2], "--against-git", "no-such-rev", *args[4:]])
    assert result.exit_code == 2 and "no-such-rev" in result.stderr


def test_diff_cli(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    args = ["diff", "hip-resurfacing", "knee-resurfacing", "--witnesses", str(folder)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "2 classes of patients decided differently, 50,176 of 7,864,320" in " ".join(result.stdout.split())
    lines = result.stdout.splitlines()
    witnesses = [json.loads(line.split("witness: ", 1)[1]) for line in lines if "witness: " in line]
    assert len(witnesses) == 2 and all(len(line) <= 80 for line in lines if "witness: " not in line)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [
        "01-eligible-vs-not_eligible-compartments.json",
        "02-not_eligible-vs-eligible-no_contraindication.json",
    ]
    assert [json.loads(f.read_text()) for f in files] == witnesses
    new = lowered_threshold(tmp_path)
    args = ["diff", "hip-resurfacing", "--rules-old", str(RULES), "--rules-new", str(new), "-f", "json"]
    report = json.loads(CliRunner().invoke(app, args).stdout)
    assert [d["decisions"] for d in report["differences"]] == [["not_eligible", "eligible"]]
    text = CliRunner().invoke(app, args[:-2]).stdout
    assert "1 class of patients decided differently" in " ".join(text.split())
    for wrong in (["diff", "hip-resurfacing"], ["diff", "hip-resurfacing", "elbow"], ["diff"]):
        result = CliRunner().invoke(app, wrong)
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, wrong


def test_diff_reading_compares_the_adopted_reading_with_its_alternative() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["diff", "hip-resurfacing", "--reading", "C5.route", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    [difference] = json.loads(result.stdout)["differences"]
    assert difference["decisions"] == ["not_eligible", "eligible"] and difference["requirements"] == ["B"]
    for wrong, words in (
        (
            ["diff", "hip-resurfacing", "knee-resurfacing", "--reading", "C5.route"],
            "give one policy with --reading",
        ),
        (["diff", "hip-resurfacing", "--reading", "nope"], 'no contested reading "nope"'),
        (["diff", "hip-resurfacing", "--alternative", "x"], "--alternative goes with --reading"),
    ):
        refused = runner.invoke(app, wrong)
        assert refused.exit_code == 2 and words in refused.stderr, refused.stderr
