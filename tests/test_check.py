"""`llr-asp check`: passes on the shipped rules, fails a bad change at its file and line, and
speaks JSON, JUnit XML and SARIF for CI."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp.cli import app
from llr_asp.core.ruleset import default_rules_dir

RULES = default_rules_dir()
EXAMPLES = Path(__file__).parent.parent / "examples"


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args], env={"COLUMNS": "100"})
    return result.exit_code, result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the rules (with their baseline) and the examples, to break."""
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def run(project: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`check` on the project as JSON. Where the test left the rule files as shipped, the
    bundled directory is checked with the project's baseline and examples: the same rules, and
    an analysis this process may have made already (analyze keeps it by directory and content)."""
    rules = project / "rules"
    if unchanged(rules):
        rules, args = RULES, ("--baseline", str(project / "rules" / "check-baseline.json"), *args)
    code, out = check("--rules", str(rules), "--examples", str(project / "examples"), "-f", "json", *args)
    return code, json.loads(out)


def unchanged(rules: Path) -> bool:
    """Whether the rule files (.lp) in `rules` are those shipped, none added or changed."""
    mine = {p.relative_to(rules): p.read_bytes() for p in rules.rglob("*.lp")}
    shipped = {p.relative_to(RULES): p.read_bytes() for p in RULES.rglob("*.lp")}
    return mine == shipped


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))


@pytest.mark.whole
def test_the_shipped_rules_pass_in_every_format() -> None:
    code, out = check()
    assert code == 0 and "PASSED" in out and "Coverage: 100.0%" in out
    code, out = check("-f", "json")
    report = json.loads(out)
    assert code == 0 and report["passed"] and report["coverage"] == 1.0 and report["failures"] == []
    assert report["steps"]["examples"]["checked"] == 2 * len(list(EXAMPLES.glob("*.json")))
    code, out = check("-f", "junit")
    suites = ET.fromstring(out)
    assert [s.get("name") for s in suites] == [
        "load",
        "hygiene",
        "examples",
        "invariants",
        "coverage",
        "baseline",
    ]
    assert all(s.get("failures") == "0" for s in suites)
    code, out = check("-f", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []


@pytest.mark.whole
def test_a_changed_grade_fails_the_examples_it_breaks(project: Path) -> None:
    edit(
        project / "rules" / "msk_threshold.lp",
        '"pain.severity", ge, intense)',
        '"pain.severity", ge, severe)',
    )
    code, report = run(project)
    assert code == 1 and not report["passed"]
    broken = {f["case"] for f in report["failures"] if f["step"] == "examples"}
    assert "route-c1-pain.json [hip-resurfacing]" in broken
    assert any("decision is not_eligible, expected eligible" in f["message"] for f in report["failures"])


def test_a_syntax_error_is_annotated_at_its_line(project: Path) -> None:
    (project / "rules" / "extra.lp").write_text("% a note\npolicy(\n")
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "load"
    assert (Path(failure["file"]).name, failure["line"]) == ("extra.lp", 3)
    code, out = check(
        "--rules", str(project / "rules"), "--examples", str(project / "examples"), "-f", "sarif"
    )
    [result] = json.loads(out)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("extra.lp")


@pytest.mark.whole
def test_hygiene_fails_on_an_unused_field(project: Path) -> None:
    with (project / "rules" / "fields.lp").open("a") as file:
        file.write('field("spare", bool).\nquestion("spare", "Never asked?").\nkind("spare", care).\n')
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "hygiene" and "no policy tests it" in failure["message"]
    assert failure["line"] == len((project / "rules" / "fields.lp").read_text().splitlines()) - 2


@pytest.mark.whole
def test_a_new_redundant_route_fails_the_invariants_at_its_declaration(project: Path) -> None:
    hip = project / "rules" / "hip_resurfacing.lp"
    added = [
        'part("hip-resurfacing", "C", 7, "C7").',
        'all_of("hip-resurfacing", "C7", "Severe pain and risk of joint destruction").',
        'part("hip-resurfacing", "C7", 1, "C6").',
        'part("hip-resurfacing", "C7", 2, "C5.pain").',
    ]
    lines = len(hip.read_text().splitlines())
    with hip.open("a") as file:
        file.write("\n".join(added) + "\n")
    code, report = run(project)
    failures = [f for f in report["failures"] if f["step"] == "invariants"]
    assert code == 1 and [f["rule"] for f in failures] == ["redundant_route"]
    assert (Path(failures[0]["file"]).name, failures[0]["line"]) == ("hip_resurfacing.lp", lines + 2)
    assert failures[0]["message"].startswith(
        "C7 (Severe pain and risk of joint destruction) never makes a difference"
    )


@pytest.mark.whole
def test_a_finding_is_annotated_in_the_file_of_its_policy(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both policies declare a requirement `eligibility`, and each file also holds a rule whose
    head takes any policy through a variable (`all_of(V, "eligibility", …) :- variant(V,
    "knee-resurfacing", …)`): a new finding on one policy's `eligibility` is annotated at that
    policy's declaration, in text and in SARIF, not at the other's (issue 36)."""
    declared: dict[str, tuple[str, int]] = {}
    for name, policy in (
        ("hip_resurfacing.lp", "hip-resurfacing"),
        ("knee_resurfacing.lp", "knee-resurfacing"),
    ):
        file = project / "rules" / name
        declaration = f'all_of("{policy}", "eligibility", '
        edit(file, declaration, f'defect("{policy}", "eligibility", "Added to {policy}.").\n{declaration}')
        [line] = [
            n for n, text in enumerate(file.read_text().splitlines(), 1) if text.startswith(declaration)
        ]
        declared[policy] = (f"rules/{name}", line)
    monkeypatch.chdir(project)  # relative paths: the text report keeps each on one line
    code, out = check("--rules", "rules", "--examples", "examples")
    assert code == 1
    for policy, (file, line) in declared.items():
        assert f"✘ baseline text_defect {policy} eligibility\n    {file}:{line}\n" in out
    code, out = check("--rules", "rules", "--examples", "examples", "-f", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    assert len(results) == 2
    for policy, (file, line) in declared.items():
        [where] = [
            r["locations"][0]["physicalLocation"]
            for r in results
            if f"Added to {policy}." in r["message"]["text"]
        ]
        assert where["artifactLocation"]["uri"].endswith(file) and where["region"] == {"startLine": line}


def test_a_declaration_is_located_where_it_is_named_then_in_the_first_file(tmp_path: Path) -> None:
    """A rule that names the policy outright wins over one that takes any policy through a
    variable, in whichever file each is; among equals the first file in the rule set's order
    wins (clingo, given several files, parses the last first)."""
    import clingo

    from llr_asp.core.ruletext import locate, locate_head, parse_rules

    files = {
        "a.lp": 'all_of(V, "x", "L") :- variant(V, "other").',
        "b.lp": '\nall_of("p", "x", "L").',
        "c.lp": 'all_of(P, "x", "L") :- shared(P).',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    a, b, c = (tmp_path / name for name in files)
    p, x = clingo.String("p"), clingo.String("x")
    declared = clingo.Function("all_of", [p, x, clingo.String("L")])
    assert locate_head(parse_rules([a, b]), ["all_of"], [p, x]) == (str(b), 2)
    assert locate(declared, parse_rules([a, b])) == (str(b), 2)
    assert locate_head(parse_rules([a, c]), ["all_of"], [p, x]) == (str(a), 1)
    assert locate(declared, parse_rules([c, a])) == (str(c), 1)


@pytest.mark.whole
def test_the_baseline_needs_a_reason_and_update_keeps_the_reasons(project: Path) -> None:
    baseline = project / "rules" / "check-baseline.json"
    data = json.loads(baseline.read_text())
    reasons = [e["reason"] for e in data["findings"]]
    data["findings"][0]["reason"] = ""
    baseline.write_text(json.dumps(data))
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "baseline" and "without a reason" in failure["message"]
    stale = {
        "kind": "never_met",
        "policy": "hip-resurfacing",
        "requirements": ["X"],
        "message": "",
        "reason": "r",
    }
    data["findings"].append(stale)
    data["findings"][0]["reason"] = reasons[0]
    baseline.write_text(json.dumps(data))
    code, report = run(project)
    assert code == 0 and report["notices"] == [
        "baseline entry no longer found (remove it with --update-baseline): never_met hip-resurfacing X"
    ]
    code, report = run(project, "--update-baseline")
    assert code == 0 and report["notices"] == []
    assert [e["reason"] for e in json.loads(baseline.read_text())["findings"]] == reasons


@pytest.mark.whole
def test_coverage_may_not_fall_below_the_baseline(project: Path) -> None:
    (project / "examples" / "refused-b-not-documented.json").unlink()
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "coverage"
    assert "B.documented: no example where it is not met" in failure["message"]


def test_unusable_input_exits_2(project: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--rules", str(project / "rules"), "--examples", str(project / "nowhere")]
    )
    assert result.exit_code == 2 and "nowhere" in result.stderr and len(result.stderr.splitlines()) == 1
    (project / "rules" / "check-baseline.json").write_text("{not json")
    result = CliRunner().invoke(
        app, ["check", "--rules", str(project / "rules"), "--examples", str(project / "examples")]
    )
    assert (
        result.exit_code == 2
        and "check-baseline.json" in result.stderr
        and len(result.stderr.splitlines()) == 1
    )


def test_the_baseline_cites_nothing_the_repository_lacks() -> None:
    """Its reasons stand on their own: no "DESIGN §5" of a document that is not shipped."""
    reasons = [f["reason"] for f in json.loads((RULES / "check-baseline.json").read_text())["findings"]]
    assert reasons and not [r for r in reasons if "DESIGN" in r or "§" in r]


def test_rules_elsewhere_report_their_errors_before_the_missing_examples(tmp_path: Path) -> None:
    """`check --rules DIR` on a rule set with no examples beside it: the rule's error, at its
    file and line, comes first (exit 1); with sound rules, the missing examples (exit 2)."""
    rules = tmp_path / "mine"
    shutil.copytree(RULES, rules)
    (rules / "broken.lp").write_text("policy(\n")
    result = CliRunner().invoke(app, ["check", "--rules", str(rules), "-f", "json"])
    [failure] = json.loads(result.stdout)["failures"]
    assert result.exit_code == 1 and failure["step"] == "load" and failure["file"].endswith("broken.lp")
    (rules / "broken.lp").unlink()
    result = CliRunner().invoke(app, ["check", "--rules", str(rules)])
    assert result.exit_code == 2 and "examples directory not found; give --examples DIR" in result.stderr


def test_a_reason_of_only_spaces_is_no_reason(project: Path) -> None:
    baseline = project / "rules" / "check-baseline.json"
    data = json.loads(baseline.read_text())
    data["findings"][3]["reason"] = "   \t "
    baseline.write_text(json.dumps(data))
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "baseline" and "without a reason" in failure["message"]


def test_an_example_with_the_wrong_missing_answers_fails(project: Path) -> None:
    example = project / "examples" / "undetermined-pain-unknown.json"
    document = json.loads(example.read_text())
    outcome = document["meta"]["expected"]["hip-resurfacing"]
    assert outcome["missing"]
    outcome["missing"] = outcome["missing"][1:]
    example.write_text(json.dumps(document))
    code, report = run(project)
    [failure] = report["failures"]
    assert code == 1 and failure["step"] == "examples" and failure["message"].startswith("missing is [")


def test_an_example_with_the_wrong_contested_readings_fails(project: Path) -> None:
    example = project / "examples" / "route-c4-sfi.json"
    document = json.loads(example.read_text())
    document["meta"]["expected"]["hip-resurfacing"]["contested"] = []
    example.write_text(json.dumps(document))
    code, report = run(project)
    [failure] = report["failures"]
    assert (
        code == 1
        and failure["step"] == "examples"
        and "contested is ['C4.cut-off=not_eligible'" in failure["message"]
    )


def test_an_empty_examples_folder_fails(project: Path) -> None:
    for example in (project / "examples").glob("*.json"):
        example.unlink()
    code, report = run(project)
    assert code == 1
    assert any(f["step"] == "examples" and "no example files" in f["message"] for f in report["failures"])


def test_an_inconsistent_policy_fails_and_cannot_be_acknowledged(tmp_path: Path) -> None:
    cases = Path(__file__).parent / "analysis"
    rules, examples = tmp_path / "rules", tmp_path / "examples"
    rules.mkdir()
    examples.mkdir()
    for name in ("fields.lp", "policy.lp", "inconsistent.defect.lp"):
        shutil.copy(cases / name, rules / name)
    expected = {"t": {"decision": "undetermined", "met": ["r1"], "unknown": ["crit"]}}
    (examples / "x.json").write_text(json.dumps({"id": "x", "a": True, "meta": {"expected": expected}}))
    args = ("--rules", str(rules), "--examples", str(examples), "-f", "json")
    assert check(*args, "--update-baseline")[0] == 1  # acknowledging does not make it pass
    code, out = check(*args)
    failures = json.loads(out)["failures"]
    assert code == 1
    assert any(f["step"] == "invariants" and "two decisions" in f["message"] for f in failures), failures
    assert "inconsistent" not in (rules / "check-baseline.json").read_text()
