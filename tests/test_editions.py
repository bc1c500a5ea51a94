"""Editions (DESIGN §5 "Editions: the policy in force on a date"): a second hip edition, made as
docs/rule-authors.md's recipe makes it, decides by date through the CLI, the API and batch; the
checks of edition/3 fail with file and line; the shipped rules, undated, behave as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llr_asp import load_rules
from llr_asp.cli import app
from llr_asp.core.errors import DeclarationError, NotInForce
from llr_asp.core.ruleset import default_rules_dir
from llr_asp.engines.batch import iterate_decisions

EXAMPLES = Path(__file__).parent.parent / "examples"
FOUR_MONTHS = EXAMPLES / "refused-b-four-months.json"  # meets A and C1; four months of care (B)
runner = CliRunner()


def second_hip_edition(folder: Path, day: str = "2027-04-01", months: int = 3) -> Path:
    """A copy of the shipped rules with hip_resurfacing_2027.lp, as the recipe makes it: a copy
    of hip_resurfacing.lp under its own policy id, in force from `day`, whose B asks for
    `months` months of conservative measures."""
    rules = folder / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("check-baseline.json"))
    text = (rules / "hip_resurfacing.lp").read_text().replace('"hip-resurfacing"', '"hip-resurfacing-2027"')
    text += f"""
edition("hip-resurfacing-2027", "hip-resurfacing", "{day}").
conservative_period("hip-resurfacing-2027", {months},
    "{months} months of documented conservative measures have failed",
    "Fully engaged with conservative measures for at least {months} months").
"""
    (rules / "hip_resurfacing_2027.lp").write_text(text)
    return rules


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return second_hip_edition(tmp_path_factory.mktemp("edition"))


def dated(day: str | None, **more: Any) -> str:
    """The four-months example with the referral date `day` (None: none)."""
    document = json.loads(FOUR_MONTHS.read_text())
    document.pop("meta")
    if day is not None:
        document["referral"] = {"date": day}
    return json.dumps({**document, **more})


def explain(rules: Path, *args: str, stdin: str | None = None) -> Any:
    result = runner.invoke(app, ["explain", "-", "--rules", str(rules), *args], input=stdin)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_rule_set_knows_the_family_and_its_editions(edited: Path) -> None:
    rules = load_rules(edited)
    assert [p.id for p in rules.families["hip-resurfacing"]] == ["hip-resurfacing", "hip-resurfacing-2027"]
    old, new = rules.policies["hip-resurfacing"], rules.policies["hip-resurfacing-2027"]
    assert (old.in_force_from, old.in_force_until) == (None, "2027-04-01")
    assert (new.family, new.in_force_from, new.in_force_until) == ("hip-resurfacing", "2027-04-01", None)
    # the shared B takes the edition's own period: three months, where the first edition's is six
    assert new.requirements["B.months"].test.value == 3  # type: ignore[union-attr]
    assert old.requirements["B.months"].test.value == 6  # type: ignore[union-attr]
    assert list(rules.families) == ["hip-resurfacing", "knee-resurfacing"]


@pytest.mark.parametrize(
    ("args", "day", "policy", "decision"),
    [
        (["--as-of", "2027-03-31"], None, "hip-resurfacing", "not_eligible"),
        (["--as-of", "2027-04-01"], None, "hip-resurfacing-2027", "eligible"),
        ([], "2027-03-31", "hip-resurfacing", "not_eligible"),
        ([], "2027-04-01", "hip-resurfacing-2027", "eligible"),
        (["--as-of", "2026-01-01"], "2027-06-01", "hip-resurfacing", "not_eligible"),  # --as-of first
    ],
)
def test_the_cli_decides_under_the_edition_in_force(
    edited: Path, args: list[str], day: str | None, policy: str, decision: str
) -> None:
    out = json.loads(explain(edited, "-p", "hip-resurfacing", "-f", "json", *args, stdin=dated(day)))
    assert (out["policy"], out["decision"]) == (policy, decision)
    since = "2027-04-01" if policy == "hip-resurfacing-2027" else None
    assert out["edition"] == {
        "policy": policy,
        "family": "hip-resurfacing",
        "in_force_from": since,
        "rules": out["rules"],
    }


def test_without_a_date_the_edition_in_force_today_decides(edited: Path) -> None:
    import datetime

    out = json.loads(explain(edited, "-p", "hip-resurfacing", "-f", "json", stdin=dated(None)))
    today = datetime.date.today().isoformat()
    assert out["policy"] == ("hip-resurfacing-2027" if today >= "2027-04-01" else "hip-resurfacing")


def test_every_policy_is_one_edition_of_each_family(edited: Path) -> None:
    out = json.loads(explain(edited, "-f", "json", "--as-of", "2027-05-01", stdin=dated(None)))
    assert [o["policy"] for o in out] == ["hip-resurfacing-2027", "knee-resurfacing"]


def test_the_text_and_the_letter_name_the_edition(edited: Path) -> None:
    text = " ".join(
        explain(edited, "-p", "hip-resurfacing", "--as-of", "2027-04-01", stdin=dated(None)).split()
    )
    assert (
        "Decided under the edition hip-resurfacing-2027 of hip-resurfacing, in force from 2027-04-01" in text
    )
    letter = " ".join(
        explain(edited, "-p", "hip-resurfacing", "-f", "letter", stdin=dated("2027-01-02")).split()
    )
    assert (
        "Decided under the edition hip-resurfacing of hip-resurfacing, in force before 2027-04-01." in letter
    )


def test_the_shipped_rules_say_nothing_of_editions_in_text() -> None:
    result = runner.invoke(app, ["explain", str(FOUR_MONTHS), "-p", "hip-resurfacing"])
    assert result.exit_code == 0 and "edition" not in result.stdout


def test_a_bad_date_is_one_line_and_exit_2(edited: Path) -> None:
    for args, stdin, said in [
        (
            ["--as-of", "2027-02-30"],
            dated(None),
            '--as-of: expected a date written YYYY-MM-DD, such as 2027-04-01, got "2027-02-30"',
        ),
        (
            [],
            dated("1/4/2027"),
            'referral.date: expected a date written YYYY-MM-DD, such as 2027-04-01 (or null if unknown), got "1/4/2027"',
        ),
        ([], dated("2027-13-01"), "referral.date: expected a date written YYYY-MM-DD"),
    ]:
        result = runner.invoke(app, ["explain", "-", "--rules", str(edited), *args], input=stdin)
        assert result.exit_code == 2
        assert said in result.stderr and result.stderr.count("\n") == 1


def only_dated(folder: Path) -> Path:
    """The shipped rules with the hip policy dated 2027-04-01: no hip edition before it."""
    rules = folder / "rules"
    shutil.copytree(default_rules_dir(), rules, ignore=shutil.ignore_patterns("check-baseline.json"))
    with (rules / "hip_resurfacing.lp").open("a") as lp:
        lp.write('\nedition("hip-resurfacing", "hip-resurfacing", "2027-04-01").\n')
    return rules


def test_no_edition_in_force_is_exit_2_naming_the_earliest_day(tmp_path: Path) -> None:
    rules = only_dated(tmp_path)
    result = runner.invoke(
        app,
        [
            "explain",
            str(FOUR_MONTHS),
            "--rules",
            str(rules),
            "-p",
            "hip-resurfacing",
            "--as-of",
            "2026-12-31",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        'llr-asp: error: no edition of policy "hip-resurfacing" is in force on 2026-12-31: '
        "the earliest is in force from 2027-04-01\n"
    )
    # every policy: the families in force that day (knee, undated), the hip family left out
    result = runner.invoke(
        app, ["explain", str(FOUR_MONTHS), "--rules", str(rules), "-f", "json", "--as-of", "2026-12-31"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["policy"] == "knee-resurfacing"
    with pytest.raises(NotInForce):
        load_rules(rules).select("hip-resurfacing", __import__("datetime").date(2027, 3, 31))


def test_batch_decides_each_line_under_its_own_edition(edited: Path) -> None:
    days = [None, "2027-03-31", "2027-04-01", "2030-01-01"]
    lines = [dated(day, id=f"p{n}") for n, day in enumerate(days)]
    result = runner.invoke(
        app,
        ["batch", "-", "--rules", str(edited), "-p", "hip-resurfacing", "--jobs", "1"],
        input="\n".join(lines),
    )
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    import datetime

    today = datetime.date.today().isoformat() >= "2027-04-01"
    expected = [
        "hip-resurfacing-2027" if today else "hip-resurfacing",
        "hip-resurfacing",
        "hip-resurfacing-2027",
        "hip-resurfacing-2027",
    ]
    assert [o["policy"] for o in out] == expected
    assert [o["edition"]["policy"] for o in out] == expected
    assert [o["decision"] for o in out] == [
        "eligible" if p.endswith("2027") else "not_eligible" for p in expected
    ]
    assert {o["edition"]["rules"] for o in out} == {load_rules(edited).digest}
    # --as-of decides every line under the edition in force that day
    fixed = list(
        iterate_decisions(
            [json.loads(line) for line in lines], "hip-resurfacing", edited, as_of=datetime.date(2027, 1, 1)
        )
    )
    assert [r.policy for r in fixed] == ["hip-resurfacing"] * 4  # type: ignore[union-attr]


def test_batch_line_dated_before_every_edition_is_an_error_line(tmp_path: Path) -> None:
    rules = only_dated(tmp_path)
    lines = [dated("2026-01-01", id="early"), dated("2027-05-01", id="late")]
    results = [
        r.to_json() for r in iterate_decisions([json.loads(line) for line in lines], "hip-resurfacing", rules)
    ]
    assert results[0] == {
        "line": 1,
        "error": 'batch:1: no edition of policy "hip-resurfacing" is in force on 2026-01-01: '
        "the earliest is in force from 2027-04-01",
    }
    assert results[1]["policy"] == "hip-resurfacing"


def test_the_api_decides_by_as_of_and_by_the_referral_date(edited: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    client = TestClient(create_app(edited))
    url = "/api/v1/explain?policy=hip-resurfacing"
    assert (
        client.post(f"{url}&as_of=2027-04-01", content=dated(None)).json()["edition"]["policy"]
        == "hip-resurfacing-2027"
    )
    assert (
        client.post(f"{url}&as_of=2027-03-31", content=dated("2027-06-01")).json()["policy"]
        == "hip-resurfacing"
    )
    assert client.post(url, content=dated("2027-06-01")).json()["decision"] == "eligible"
    bad = client.post(f"{url}&as_of=tomorrow", content=dated(None))
    assert bad.status_code == 422 and "expected a date written YYYY-MM-DD" in bad.json()["error"]
    lines = "\n".join(dated(day) for day in ("2027-03-31", "2027-04-01"))
    batch = client.post("/api/v1/batch?policy=hip-resurfacing", content=lines)
    assert [json.loads(line)["policy"] for line in batch.text.splitlines()] == [
        "hip-resurfacing",
        "hip-resurfacing-2027",
    ]


def test_the_api_answers_422_naming_the_earliest_day(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    client = TestClient(create_app(only_dated(tmp_path)))
    answer = client.post("/api/v1/explain?policy=hip-resurfacing&as_of=2027-03-31", content=dated(None))
    assert answer.status_code == 422
    assert answer.json() == {
        "error": 'no edition of policy "hip-resurfacing" is in force on 2027-03-31: the earliest is in force from 2027-04-01'
    }


EDITION = 'edition("hip-resurfacing-2027", "hip-resurfacing", "2027-04-01").'


@pytest.mark.parametrize(
    ("edition", "more", "problem"),
    [
        ('edition("hip-resurfacing-2027", "hip-resurfacing", "2027-02-30").', "", "a real date written"),
        ('edition("hip-resurfacing-2027", "hip-resurfacing", "1 April 2027").', "", "a real date written"),
        ('edition("hip-resurfacing-2027", "hip-resurfacing", 20270401).', "", "a real date written"),
        ('edition("hip-resurfacing-2027", hip, "2027-04-01").', "", "family is a string"),
        (
            EDITION,
            'edition("hip-resurfacing-2027", "hip-resurfacing", "2028-04-01").',
            "more than one edition/3",
        ),
        (EDITION, 'edition("nope", "hip-resurfacing", "2028-04-01").', "edition of an undeclared policy"),
        (EDITION, 'edition("hip-resurfacing", "knee-resurfacing", "2028-04-01").', "another family"),
    ],
)
def test_the_checks_of_editions_name_the_file_and_line(
    tmp_path: Path, edition: str, more: str, problem: str
) -> None:
    rules = second_hip_edition(tmp_path)
    lp = rules / "hip_resurfacing_2027.lp"
    lp.write_text(lp.read_text().replace(EDITION, edition))
    if more:
        (rules / "more.lp").write_text(f"%% a second file claiming an edition\n{more}\n")
    with pytest.raises(DeclarationError) as raised:
        load_rules(rules)
    found = [p for p in raised.value.problems if problem in p.problem]
    assert found, raised.value.problems
    text = {p.file: p.file and Path(p.file).read_text().splitlines() for p in found}
    for p in found:  # at the line of the edition/3 at fault
        assert p.line is not None and text[p.file][p.line - 1].startswith("edition(")
    result = runner.invoke(app, ["policies", "--rules", str(rules)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


def test_two_files_claiming_one_family_and_day_are_both_named(tmp_path: Path) -> None:
    rules = second_hip_edition(tmp_path)
    text = (
        (rules / "hip_resurfacing_2027.lp")
        .read_text()
        .replace('"hip-resurfacing-2027"', '"hip-resurfacing-2027b"')
    )
    (rules / "hip_resurfacing_2027b.lp").write_text(text)
    with pytest.raises(DeclarationError) as raised:
        load_rules(rules)
    named = {Path(p.file).name for p in raised.value.problems if "same day" in p.problem}
    assert named == {"hip_resurfacing_2027.lp", "hip_resurfacing_2027b.lp"}


def test_a_family_named_after_another_familys_edition_is_an_error(tmp_path: Path) -> None:
    rules = second_hip_edition(tmp_path)
    (rules / "odd.lp").write_text('edition("knee-resurfacing", "hip-resurfacing-2027", "2028-01-01").\n')
    with pytest.raises(DeclarationError, match="the id of an edition of another family"):
        load_rules(rules)


def test_a_date_field_cannot_be_tested_by_a_condition(tmp_path: Path) -> None:
    rules = second_hip_edition(tmp_path)
    (rules / "odd.lp").write_text(
        'condition("hip-resurfacing-2027", "late", "Late", "referral.date", eq, "2027-05-01").\n'
        'part("hip-resurfacing-2027", "eligibility", 9, "late").\n'
    )
    with pytest.raises(DeclarationError) as raised:
        load_rules(rules)
    assert any("condition tests a date field" in p.problem for p in raised.value.problems)


def test_policies_lists_each_family_with_its_editions_and_days(edited: Path) -> None:
    result = runner.invoke(app, ["policies", "--rules", str(edited), "-f", "json"])
    assert result.exit_code == 0
    listed = [
        (p["id"], p["family"], p["in_force_from"], p["in_force_until"]) for p in json.loads(result.stdout)
    ]
    assert listed == [
        ("hip-resurfacing", "hip-resurfacing", None, "2027-04-01"),
        ("hip-resurfacing-2027", "hip-resurfacing", "2027-04-01", None),
        ("knee-resurfacing", "knee-resurfacing", None, None),
    ]
    wide = {"COLUMNS": "200"}  # a column's words on one line
    text = " ".join(runner.invoke(app, ["policies", "--rules", str(edited)], env=wide).stdout.split())
    assert "in force" in text and "from 2027-04-01" in text and "before 2027-04-01" in text
    shipped = runner.invoke(app, ["policies"], env=wide).stdout
    assert "in force" not in shipped  # undated: listed as before


def gated(tmp_path: Path, rules: Path, day: str, decision: str) -> list[tuple[str, str]]:
    """The example step's failures when one more example, dated `day`, expects `decision` of
    hip-resurfacing."""
    from llr_asp.engines.check import run_check

    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    document = json.loads(dated(day, id="dated"))
    document["meta"] = {
        "expected": {"hip-resurfacing": {"decision": decision, "not_met": [], "met": ["B.months"]}}
    }
    (examples / "dated.json").write_text(json.dumps(document))
    report = run_check(rules, examples, default_rules_dir() / "check-baseline.json")
    return [(c.name, f.message) for c, f in report.failures() if c.step == "examples"]


@pytest.mark.whole
def test_check_gates_each_edition_with_the_examples_dated_in_its_period(edited: Path, tmp_path: Path) -> None:
    assert gated(tmp_path / "a", edited, "2027-04-01", "eligible") == []
    failures = gated(tmp_path / "b", edited, "2027-03-31", "eligible")
    assert failures == [
        ("dated.json [hip-resurfacing]", "decision is not_eligible, expected eligible"),
        ("dated.json [hip-resurfacing]", "B.months is not_met, expected met"),
    ]


def test_check_reports_overlapping_editions_with_file_and_line(tmp_path: Path) -> None:
    rules = second_hip_edition(tmp_path)
    text = (
        (rules / "hip_resurfacing_2027.lp")
        .read_text()
        .replace('"hip-resurfacing-2027"', '"hip-resurfacing-2027b"')
    )
    (rules / "hip_resurfacing_2027b.lp").write_text(text)
    result = runner.invoke(app, ["check", "--rules", str(rules), "--examples", str(EXAMPLES), "-f", "json"])
    assert result.exit_code == 1
    failures = json.loads(result.stdout)["failures"]
    same_day = [f for f in failures if "in force from the same day" in f["message"]]
    assert {Path(f["file"]).name for f in same_day} == {"hip_resurfacing_2027.lp", "hip_resurfacing_2027b.lp"}
    assert all(f["line"] for f in same_day)


@pytest.mark.whole
def test_diff_cohort_counts_equal_two_batch_runs_compared_line_by_line(edited: Path, tmp_path: Path) -> None:
    import random

    from test_batch import random_patient

    rules = load_rules(edited)
    rng = random.Random(34)
    cohort = tmp_path / "cohort.jsonl"
    lines = [json.dumps({"id": f"r{n}", **random_patient(rng, rules)}) for n in range(400)]
    lines[7] = '{"conservative": {"months": "six"}}'  # a bad line: an error in all three runs
    cohort.write_text("\n".join(lines) + "\n")

    def batch(*args: str) -> list[dict[str, Any]]:
        result = runner.invoke(app, ["batch", str(cohort), "--rules", str(edited), "--jobs", "1", *args])
        assert result.exit_code == 1, result.stderr  # (1: a bad line)
        return [json.loads(line) for line in result.stdout.splitlines()]

    old = batch("-p", "hip-resurfacing", "--as-of", "2027-03-31")  # the first edition, every line
    new = batch("-p", "hip-resurfacing-2027")  # an edition's own id: that edition, whatever the date
    assert [o.get("policy") for o in old if "error" not in o] == ["hip-resurfacing"] * 399
    expected: dict[int, str] = {}
    for before, after in zip(old, new, strict=True):
        assert before["line"] == after["line"]
        if "error" in before:
            continue
        if before["decision"] != after["decision"]:
            kind = {"eligible": "eligible", "not_eligible": "refused", "undetermined": "undetermined"}[
                after["decision"]
            ]
            reading = "_on_the_adopted_reading" if kind == "eligible" and not after["robust"] else ""
            expected[before["line"]] = f"newly_{kind}{reading}"
        elif before["robust"] != after["robust"]:
            expected[before["line"]] = "newly_contested" if before["robust"] else "newly_robust"
    assert len(expected) > 10  # three months instead of six: a real change to count

    listed = tmp_path / "changed.jsonl"
    for jobs in ("1", "2"):
        compare = ["diff", "hip-resurfacing", "hip-resurfacing-2027", "--cohort", str(cohort)]
        result = runner.invoke(
            app, [*compare, "--rules", str(edited), "--out", str(listed), "-f", "json", "--jobs", jobs]
        )
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        counted = {kind: n for kind, n in summary["changed"].items() if n}
        assert counted == {kind: list(expected.values()).count(kind) for kind in set(expected.values())}
        assert (summary["patients"], summary["errors"], summary["unchanged"]) == (399, 1, 399 - len(expected))
        out = [json.loads(line) for line in listed.read_text().splitlines()]
        assert {o["line"]: o["class"] for o in out if "class" in o} == expected
        assert [o["line"] for o in out if "error" in o] == [8]
        # the months of B changed every newly eligible patient's decision here
        assert all("B.months" in o["requirements"] for o in out if o.get("class") == "newly_eligible")

    # the same cohort as Parquet (without its bad line) counts alike, and --report draws it
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from test_arrow import dotted

    parquet = tmp_path / "cohort.parquet"
    pq.write_table(dotted([json.loads(line) for n, line in enumerate(lines) if n != 7], rules), parquet)
    page = tmp_path / "changes.html"
    compare = [
        "diff",
        "hip-resurfacing",
        "hip-resurfacing-2027",
        "--cohort",
        str(parquet),
        "--report",
        str(page),
    ]
    result = runner.invoke(app, [*compare, "--rules", str(edited), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    columnar = json.loads(result.stdout)
    assert (columnar["changed"], columnar["patients"], columnar["errors"]) == (summary["changed"], 399, 0)
    html = page.read_text()
    assert "hip-resurfacing → hip-resurfacing-2027" in html and "<svg" in html
    eligible = summary["changed"]["newly_eligible"]
    [row] = [r for r in html.splitlines() if r.startswith("<tr><td>newly eligible</td>")]
    assert f"<td>{eligible:,}</td>" in row and f"B.months {eligible:,}" in row, row


def test_diff_cohort_refuses_unusable_arguments(edited: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "c.jsonl"
    cohort.write_text(dated(None) + "\n")
    for args, said in [
        (["hip-resurfacing"], "give the two policies or editions to compare"),
        (["hip-resurfacing", "nope"], 'unknown policy "nope"'),
        (["hip-resurfacing", "hip-resurfacing"], "the same policy"),
    ]:
        result = runner.invoke(app, ["diff", *args, "--rules", str(edited), "--cohort", str(cohort)])
        assert result.exit_code == 2 and said in result.stderr and result.stderr.count("\n") == 1


def screening(decision: str, contested: bool = False, failed: tuple[str, ...] = ()) -> Any:
    from llr_asp.core.decision import Contest, Taken
    from llr_asp.engines.batch import Screening

    contest = (Contest((Taken("C6.route", "dispenses-with-B", "C6", "C6 alone."),), "eligible"),)
    return Screening(1, "p", "hip-resurfacing", "ARP 55", decision, failed, (), contest if contested else ())


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (screening("not_eligible"), screening("eligible"), "newly_eligible"),
        # eligible only on the adopted reading: never counted as plainly eligible (review 11, LOW)
        (
            screening("not_eligible"),
            screening("eligible", contested=True),
            "newly_eligible_on_the_adopted_reading",
        ),
        (screening("eligible", contested=True), screening("eligible"), "newly_robust"),
        (screening("eligible"), screening("not_eligible"), "newly_refused"),
        (screening("eligible"), screening("undetermined"), "newly_undetermined"),
        (screening("not_eligible"), screening("not_eligible", contested=True), "newly_contested"),
        (screening("not_eligible", contested=True), screening("not_eligible"), "newly_robust"),
        (screening("not_eligible", contested=True), screening("not_eligible", contested=True), None),
    ],
)
def test_each_change_falls_in_one_class(old: Any, new: Any, kind: str | None) -> None:
    from llr_asp.engines.cohort_difference import change_class

    assert change_class(old, new) == kind


def test_a_change_names_the_requirements_below_the_root_that_changed(edited: Path) -> None:
    from llr_asp.engines.cohort_difference import Change, compared

    rules = load_rules(edited)
    old, new = rules.policies["hip-resurfacing"], rules.policies["hip-resurfacing-2027"]
    before = screening("not_eligible", failed=("eligibility", "B", "B.months", "C2"))
    after = screening("eligible", failed=("C2",))
    [change] = list(compared([before, after], old, new))
    assert isinstance(change, Change) and change.requirements == ("B", "B.months")
    # robustness alone: the requirements whose readings the contested side rests on
    [change] = list(
        compared(
            [screening("not_eligible", failed=("B",)), screening("not_eligible", True, ("B",))], old, new
        )
    )
    assert isinstance(change, Change) and (change.kind, change.requirements) == ("newly_contested", ("C6",))


# -- every surface decides by the date and names the edition -------------------------------------


@pytest.fixture(scope="module")
def in_force_now(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second hip edition in force since 2026-01-01 (so today, for the calls that carry no
    date), with an order code for the family's CDS services declared for the first edition only."""
    pytest.importorskip("fastapi")
    from test_cds_hooks import CODE  # the order code the CDS tests' calls carry

    rules = second_hip_edition(tmp_path_factory.mktemp("now"), day="2026-01-01")
    with (rules / "llr_icb.lp").open("a") as declared:
        declared.write('procedure("hip-resurfacing", "{system}", "{code}", "{display}").\n'.format(**CODE))
    return rules


def web_client(rules: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from llr_asp.web import cds, create_app

    monkeypatch.setenv(cds.NO_AUTH_ENV, "1")
    return TestClient(create_app(rules))


def test_the_page_decides_by_the_records_referral_date(edited: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page (and its letter) pick the edition by the record's date, as `explain` does, and say
    which edition decided: four months of care meet the 2027 edition's three, not the first's six."""
    client = web_client(edited, monkeypatch)
    for day, edition, verdict in (
        ("2027-06-01", "hip-resurfacing-2027", "ELIGIBLE"),
        ("2027-03-31", "hip-resurfacing", "NOT"),
    ):
        page = client.post("/result", data={"record": dated(day, policy="hip-resurfacing"), "policy": ""})
        assert page.status_code == 200 and f"Decided under the edition {edition} of" in page.text
        assert ("NOT ELIGIBLE" in page.text) == (verdict == "NOT")
        letter = client.post("/letter", data={"record": dated(day, policy="hip-resurfacing"), "policy": ""})
        assert f"Decided under the edition {edition} of" in letter.text
    assert "ELIGIBLE" in explain(edited, "--format", "text", stdin=dated("2027-06-01"))


def test_cds_services_are_per_family_and_the_card_names_the_edition(
    in_force_now: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discovery lists one service per family and hook (never one per edition); a call is decided
    under the edition in force on the call's date, from answers given on the family's form (any
    edition's), and the card names the edition in words and in its extension."""
    client = web_client(in_force_now, monkeypatch)
    ids = [s["id"] for s in client.get("/cds-services").json()["services"]]
    assert "hip-resurfacing-order-select" in ids and not any("2027" in i for i in ids)
    record = json.loads(dated(None))
    items = [
        {"linkId": path, "answer": [answer]} for path, answer in fhir_answers(in_force_now, record).items()
    ]
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing",
        "status": "completed",
        "authored": "2026-11-30T10:00:00Z",
        "item": items,
    }
    from test_cds_hooks import call as cds_call

    call = cds_call(None, None)  # a draft order for hip resurfacing; the Patient gives no gender
    call["prefetch"]["answers"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": response}],
    }
    [card] = client.post("/cds-services/hip-resurfacing-order-select", json=call).json()["cards"]
    assert card["extension"]["llr-asp.edition"]["policy"] == "hip-resurfacing-2027"
    # answers that carry the referral's date are decided under the edition in force then
    dated_items = [*items, {"linkId": "referral.date", "answer": [{"valueDate": "2025-06-01"}]}]
    call["prefetch"]["answers"]["entry"][0]["resource"]["item"] = dated_items
    [earlier] = client.post("/cds-services/hip-resurfacing-order-select", json=call).json()["cards"]
    assert earlier["extension"]["llr-asp.edition"]["policy"] == "hip-resurfacing"
    assert earlier["extension"]["llr-asp.decision"] == "not_eligible"  # four months: not the first's six
    call["prefetch"]["answers"]["entry"][0]["resource"]["item"] = items
    assert card["extension"]["llr-asp.decision"] == "eligible"  # four months meet three
    assert "Decided under the edition hip-resurfacing-2027 of hip-resurfacing" in card["detail"]
    assert card["extension"]["llr-asp.questionnaire"].endswith("/fhir/Questionnaire/hip-resurfacing-adaptive")


def fhir_answers(rules: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The answers a record gives, as a QuestionnaireResponse's answers (by linkId)."""
    from llr_asp.core.documents import validate
    from llr_asp.formats.fhir import decision_response

    ruleset = load_rules(rules)
    patient = validate(record, ruleset, "t")
    from llr_asp import Reasoner

    decisions = Reasoner(ruleset).decide(patient, ruleset.select("hip-resurfacing"))
    response = decision_response(patient, decisions, ruleset)
    return {i["linkId"]: i["answer"][0] for i in response["item"] if "answer" in i}


def test_fhir_and_the_adaptive_form_name_the_edition_and_serve_the_familys_form(
    in_force_now: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The family's Questionnaire keeps the family's id and canonical (answers to it serve every
    edition); an edition's own is served under its id; `explain --format fhir` and a completed
    $next-question code the edition beside the determination."""
    client = web_client(in_force_now, monkeypatch)
    family = client.get("/fhir/Questionnaire/hip-resurfacing").json()
    edition = client.get("/fhir/Questionnaire/hip-resurfacing-2027").json()
    assert (family["id"], edition["id"]) == ("hip-resurfacing", "hip-resurfacing-2027")
    assert family["url"] == "urn:llr-asp:questionnaire:hip-resurfacing"
    resource = json.loads(
        explain(in_force_now, "--format", "fhir", "--policy", "hip-resurfacing", stdin=dated(None))
    )
    [coded] = [e["valueCoding"] for e in resource["extension"] if e["url"] == "urn:llr-asp:edition"]
    assert coded["code"] == "hip-resurfacing-2027" and len(coded["version"]) == 64
    assert resource["questionnaire"] == "urn:llr-asp:questionnaire:hip-resurfacing"
    # the response read back is for the family: decided under the first edition on its day too
    first = explain(in_force_now, "--format", "json", "--as-of", "2025-06-01", stdin=json.dumps(resource))
    assert json.loads(first)["policy"] == "hip-resurfacing"
    # ... and, today, its edition in force: answers to the family's form serve every edition
    today = explain(in_force_now, "-f", "json", "-p", "hip-resurfacing", stdin=json.dumps(resource))
    assert json.loads(today)["policy"] == "hip-resurfacing-2027"
    # and a response to the edition's own form serves the family's first edition as well
    own = {**resource, "questionnaire": "urn:llr-asp:questionnaire:hip-resurfacing-2027"}
    first = explain(
        in_force_now, "-f", "json", "-p", "hip-resurfacing", "--as-of", "2025-06-01", stdin=json.dumps(own)
    )
    assert json.loads(first)["policy"] == "hip-resurfacing"


def test_an_edition_with_its_own_period_never_says_six_months(edited: Path) -> None:
    """The rules several policies share (msk_threshold.lp) word B by each edition's own period:
    a C6 patient decided under the three-month edition is told of no "six months" in the tree,
    the readings that contest it or anything else (the quoted source sentence aside, which the
    edition's author restates)."""
    record = json.loads(dated("2027-06-01"))
    record["joint"] = {**record.get("joint", {}), "destruction_risk": True}
    record["conservative"]["months"] = 2
    decided = json.loads(
        explain(edited, "--format", "json", "--policy", "hip-resurfacing", stdin=json.dumps(record))
    )
    assert decided["policy"] == "hip-resurfacing-2027" and decided["contested"]

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    said = [s for s in strings(decided) if "six months" in s.lower() and "clearly detailed" not in s]
    assert said == []


def test_the_literate_page_names_its_edition_and_the_familys_others(edited: Path) -> None:
    """`report` (and the analyst's page) of a dated policy says which edition it shows, when it
    is in force, and which other editions the family has and how to see them."""
    from llr_asp.engines.literate import literate
    from llr_asp.views.policy_page import html_fragment, markdown

    rules = load_rules(edited)
    page = literate(rules, "hip-resurfacing-2027", findings=[])  # the analysis is not what is tested
    text = markdown(page, "tree.svg")
    assert "Edition: edition hip-resurfacing-2027 of hip-resurfacing, in force from 2027-04-01" in text
    assert "Other edition: edition hip-resurfacing of hip-resurfacing, in force before 2027-04-01" in text
    assert "<dt>Other edition</dt><dd>edition hip-resurfacing of" in html_fragment(page)
    # what changed from the previous edition: B and its months, nothing else
    assert (
        "Changed from hip-resurfacing: B (3 months of documented conservative measures have failed); "
        "B.months (Fully engaged with conservative measures for at least 3 months)\n" in text
    )
    assert "Changed from" not in markdown(literate(rules, "hip-resurfacing", findings=[]), "tree.svg")
    undated = literate(load_rules(), "hip-resurfacing", findings=[])
    assert "Edition" not in markdown(undated, "tree.svg")  # one undated policy: nothing more to say


def test_a_receipt_names_the_edition_and_its_family(edited: Path) -> None:
    """A receipt's claims name the edition that decided (`policy`) and the family users name
    (`family`): an audit by family counts every edition's decisions together."""
    from llr_asp import Reasoner
    from llr_asp.core.documents import validate
    from llr_asp.formats.receipts import claims_of

    rules = load_rules(edited)
    patient = validate(json.loads(dated("2027-06-01")), rules, "t")
    [decision] = Reasoner(rules).decide(
        patient, rules.select("hip-resurfacing", rules.date_of(patient.values))
    )
    claims = claims_of(decision, "0" * 64, None)
    assert (claims["policy"], claims["family"]) == ("hip-resurfacing-2027", "hip-resurfacing")
