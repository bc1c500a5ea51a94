"""`llr-asp batch` and `iterate_decisions`: explain's decisions, in order, nothing dropped."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import helpers
import pytest
from typer.testing import CliRunner

from llr_asp import InputError, Reasoner, RuleSet, validate
from llr_asp.cli import app
from llr_asp.core.decision import Contest, Taken, Warning
from llr_asp.engines import batch as batch_module
from llr_asp.engines.batch import LineError, Screening, iterate_decisions

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
runner = CliRunner()


def random_patient(rng: random.Random, rules: RuleSet) -> dict[str, Any]:
    """About 85% of fields known, values anywhere in their domains (numbers near thresholds)."""
    values: dict[str, Any] = {}
    for path, field in rules.fields.items():
        if (
            field.type == "date"
        ):  # no date: the draws, and so the cohorts, stay those the tests were written for
            continue
        if rng.random() < 0.15:
            continue
        if field.type == "bool":
            values[path] = rng.random() < 0.7
        elif field.values:
            values[path] = rng.choice(field.values)
        else:
            fractional = [2.5, 5.5] if field.type == "number" else []
            values[path] = rng.choice([*helpers.outcome_values(rules, path), *fractional])
    return helpers.nested(values)


Said = tuple[
    str,
    str,
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    list[tuple[tuple[str, ...], str]],
    Any,
]
"""What a cohort line says of a patient and policy: the decision, the requirements not met, the
answers missing, the requirements it is stopped by, the decisions possible, the readings it
rests on (a line that called a contested refusal robust, as a batch that weighed too few
patients did, is not explain's) and the urgent route (explain's `urgent`)."""


def expected(reasoner: Reasoner, document: dict[str, Any], policy: str | None = None) -> list[Said]:
    """What explain says of the document, for the policies it chooses (`policy`, else the
    record's, else every one)."""
    patient = validate(document, reasoner.rules, "doc")
    return [
        (
            d.policy.id,
            d.decision,
            tuple(d.failed()),
            d.missing,
            tuple(d.stopped_by()),
            d.possible,
            contests(d.contested),
            d.urgent_json(),
        )
        for d in reasoner.decide(patient, reasoner.chosen(patient, policy))
    ]


def got(results: list[Any]) -> list[Said]:
    return [
        (r.policy, r.decision, r.failed, r.missing, r.stopped_by, r.possible, contests(r.contested), r.urgent)
        for r in results
    ]


def contests(found: Any) -> list[tuple[tuple[str, ...], str]]:
    return sorted((c.readings, c.decision) for c in found)


def test_every_example_is_decided_as_explain_decides_it(reasoner: Reasoner) -> None:
    documents = [json.loads(p.read_text()) for p in EXAMPLES]
    results = list(iterate_decisions(documents))
    policies = [1 if "policy" in d else 2 for d in documents]  # the record's, else both
    assert [r.line for r in results] == [n for n, k in enumerate(policies, 1) for _ in range(k)]
    assert got(results) == [e for d in documents for e in expected(reasoner, d)]
    every = list(iterate_decisions(documents, policy="all"))
    assert [r.line for r in every] == [n for n in range(1, len(documents) + 1) for _ in range(2)]
    assert got(every) == [e for d in documents for e in expected(reasoner, d, "all")]


def test_random_patients_are_decided_as_explain_decides_them(rules: RuleSet, reasoner: Reasoner) -> None:
    rng = random.Random(7)
    documents = [random_patient(rng, rules) for _ in range(400)]
    results = list(iterate_decisions(json.dumps(d) for d in documents))
    assert got(results) == [e for d in documents for e in expected(reasoner, d)]
    assert any(r.missing for r in results)  # undetermined patients were among them


def test_patients_solved_together_are_decided_apart(reasoner: Reasoner) -> None:
    """Patients share a solve (one slot world each) and repeated ones share a verdict, yet each
    line gets its own patient's decision, whatever sits beside it."""
    documents: list[Any] = [json.loads(p.read_text()) for p in EXAMPLES]
    rng = random.Random(9)
    lines = [rng.choice([*documents, "{broken"]) for _ in range(3 * len(documents))]
    results = list(iterate_decisions(json.dumps(d) if isinstance(d, dict) else d for d in lines))
    expect = []
    for document in lines:
        if isinstance(document, dict):
            expect += expected(reasoner, document)
    assert got([r for r in results if isinstance(r, Screening)]) == expect
    assert sum(isinstance(r, LineError) for r in results) == lines.count("{broken")


@pytest.mark.whole
def test_worker_processes_keep_input_order(rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(8)
    documents = [json.dumps(random_patient(rng, rules)) for _ in range(1200)] + ["{broken"]
    monkeypatch.setattr(batch_module, "CHUNK", 50)  # 25 chunks: past the bound of 2 x jobs pending
    one = [r.to_json() for r in iterate_decisions(documents, policy="knee-resurfacing", jobs=1)]
    two = [r.to_json() for r in iterate_decisions(documents, policy="knee-resurfacing", jobs=2)]
    assert one == two
    assert [r["line"] for r in two] == list(range(1, 1202))


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_bytes(b"".join(line.encode() if isinstance(line, str) else line for line in lines))
    return path


def test_bad_lines_become_error_lines_and_the_run_goes_on(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "cohort.jsonl",
        [
            '{"id": "a", "sex": "female"}\n',
            "{not json\n",
            "\n",
            '{"conservative": {"months": "six"}}\n',
            b'{"id": "\xff"}\n',  # type: ignore[list-item]
            '{"id": "b", "sex": "male", "msk": {"assessed": false}}\n',
        ],
    )
    summary = tmp_path / "summary.json"
    result = runner.invoke(
        app, ["batch", str(source), "-p", "hip-resurfacing", "--jobs", "1", "--summary-json", str(summary)]
    )
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert [("error" in line) for line in lines] == [False, True, True, True, True, False]
    assert lines[3]["error"] == (
        f'{source}:4: conservative.months: expected a number from 0 to 1200 (or null if unknown), got "six"'
    )
    assert "not UTF-8" in lines[4]["error"]
    assert (lines[0]["decision"], lines[0]["failed"]) == (
        "not_eligible",
        ["eligibility", "no_contraindication"],
    )
    assert lines[0]["stopped_by"] == ["no_contraindication"]
    assert set(lines[0]) == {
        "line",
        "patient",
        "policy",
        "reference",
        "decision",
        "urgent",
        "robust",
        "possible",
        "stopped_by",
        "failed",
        "missing",
        "contested",
        "warnings",
        "edition",
    }
    # a woman under the hip policy: refused plainly; the reading of the sex sentence as
    # background is for analysts only (the policy's own text refutes it)
    assert (lines[0]["robust"], lines[0]["possible"], lines[0]["contested"]) == (True, ["not_eligible"], [])
    report = json.loads(summary.read_text())
    assert report["errors"] == 4
    assert report["policies"]["hip-resurfacing"]["decisions"] == {"not_eligible": 2}
    assert "4 bad lines" in result.stderr


def stopped_rows(stderr: str) -> dict[str, dict[str, int]]:
    """Per policy, the rows of the stderr summary's "Stopped by": requirement -> patients."""
    found: dict[str, dict[str, int]] = {}
    policy = ""
    within = False
    for line in stderr.splitlines():
        title = re.match(r"(\S+-resurfacing) \(ARP \d+\)", line)
        if title:
            policy, within = title.group(1), False
            found[policy] = {}
        elif line.startswith("Stopped by"):
            within = True
        elif within and (row := re.match(r"\s+█+\s+(\d+)\s+(\S+)  ", line)):
            found[policy][row.group(2)] = int(row.group(1))
        elif not line.startswith("  "):  # (an indented line continues a wrapped row)
            within = False
    return found


def test_stopped_by_is_one_count_in_the_lines_the_summary_and_its_json(
    tmp_path: Path, rules: RuleSet
) -> None:
    """stopped_by: the parts of the decision that refuse a patient or leave the decision open,
    [] for an eligible one; the stderr summary and --summary-json count exactly the lines'."""
    rng = random.Random(11)
    documents = [json.loads(p.read_text()) for p in EXAMPLES] + [
        random_patient(rng, rules) for _ in range(80)
    ]
    source = write_jsonl(tmp_path / "cohort.jsonl", [json.dumps(d) + "\n" for d in documents])
    summary = tmp_path / "summary.json"
    result = runner.invoke(app, ["batch", str(source), "-j", "1", "--summary-json", str(summary)])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    counts: dict[str, Counter[str]] = {p: Counter() for p in rules.policies}
    for line in lines:
        assert (line["stopped_by"] == []) == (line["decision"] == "eligible")
        policy = rules.policies[line["policy"]]
        assert set(line["stopped_by"]) <= set(policy.requirements[policy.root].parts)
        counts[line["policy"]].update(line["stopped_by"])
    report = json.loads(summary.read_text())["policies"]
    assert {p: report[p]["stopped_by"] for p in report} == {p: dict(c) for p, c in counts.items()}
    assert stopped_rows(result.stderr) == {p: dict(c) for p, c in counts.items()}  # no row of 0
    assert all(c["A"] and c["B"] for c in counts.values())


def test_csv_in_and_out(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text(
        "id,sex,conservative.months,msk.assessed,meta.note\n"
        "c1,male,4,true,anything\n"
        "c2,,,,\n"
        "c3,male,6.5,maybe,\n"
    )
    result = runner.invoke(app, ["batch", str(source), "-p", "knee-resurfacing", "-f", "csv", "-j", "1"])
    assert result.exit_code == 1  # c3's "maybe" is not a boolean
    rows = result.stdout.splitlines()
    assert rows[0] == (
        "line,patient,policy,reference,decision,urgent_route,urgent_status,urgent_action,urgent_to_confirm,"
        "robust,possible,stopped_by,failed,missing,contested,warnings,error"
    )
    assert rows[1].startswith(
        "2,c1,knee-resurfacing,ARP 60,not_eligible,,,,,false,not_eligible;undetermined,B,"
    )
    assert ",eligibility;B;B.months," in rows[1] and "C6.route=undetermined" in rows[1]
    assert rows[2].startswith(
        "3,c2,knee-resurfacing,ARP 60,undetermined,,,,,true,undetermined,A;B;C;compartments,,"
    )
    assert rows[3].startswith("4,,,,,,,,,,,,,,,,") and "msk.assessed: expected yes or no" in rows[3]


def test_a_csv_cell_takes_the_words_ask_takes(rules: RuleSet) -> None:
    """One vocabulary: whatever `ask` reads from a typed answer (but a choice's number in its
    menu), a CSV cell reads the same; whatever it refuses, the cell refuses."""
    from llr_asp.engines.interview import parse_answer
    from llr_asp.formats.readers import read_csv

    texts = [
        "Male",
        "FEMALE",
        " yes",
        "No ",
        "TRUE",
        "false",
        "y",
        "N",
        "1",
        "6",
        "5.5",
        "-1",
        "2000",
        "Severe",
        "moderate ",
        "unknown",
        "Not Known",
        "?",
        "six",
        "maybe",
        "agonising",
        "3",
        "1.5",
    ]
    for path, field in rules.fields.items():
        for text in texts:
            try:
                said = parse_answer(text, field)
            except ValueError:
                said = "refused"
            if field.values and text.strip().isdigit():
                continue  # ask's menu numbers: not a CSV cell's meaning
            [(_, document)] = list(read_csv([f"{path}\n".encode(), f'"{text}"\n'.encode()], rules))
            read = "refused" if isinstance(document, InputError) else document[path.split(".")[0]]
            if read != "refused" and "." in path:
                read = read[path.split(".")[1]]
            assert read == said, (path, text)


def test_a_csv_row_names_every_bad_cell_in_column_order(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("id,pain.severity,sex,conservative.months,msk.assessed\nr,agony,M,2000,maybe\n")
    result = runner.invoke(app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "1"])
    [line] = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["error"] == (
        f"{source}:2: pain.severity: expected one of none, mild, moderate, intense, severe (in any case), "
        'got "agony"; sex: expected one of female, male (in any case), got "M"; conservative.months: '
        'expected a number from 0 to 1200, got "2000"; msk.assessed: expected yes or no (or true or '
        'false), got "maybe"'
    )


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_the_csv_delimiter_is_found_from_the_header(tmp_path: Path, separator: str) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text(
        separator.join(["id", "sex", "msk.assessed"]) + "\n" + separator.join(["a", "Male", "no"]) + "\n"
    )
    result = runner.invoke(app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "1"])
    assert result.exit_code == 0, result.stderr
    [line] = [json.loads(x) for x in result.stdout.splitlines()]
    assert (line["patient"], line["decision"], line["stopped_by"]) == ("a", "not_eligible", ["A"])
    named = "tab" if separator == "\t" else separator
    again = runner.invoke(
        app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "1", "--delimiter", named]
    )
    assert again.stdout == result.stdout
    wrong = runner.invoke(app, ["batch", str(source), "-j", "1", "--delimiter", ","])
    assert wrong.exit_code == 2 and f"give --delimiter '{named}'" in wrong.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delimiter", "ab"], "give one character"),
        (["--delimiter", "x"], "give one character"),
        (["--input-format", "jsonl", "--delimiter", ";"], "--delimiter goes with CSV input"),
    ],
)
def test_a_delimiter_that_cannot_be_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("id\na\n")
    result = runner.invoke(app, ["batch", str(source), *args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("output", ["csv", "jsonl"])
def test_a_bad_csv_header_writes_nothing(tmp_path: Path, output: str) -> None:
    """`batch bad.csv -f csv > decisions.csv` leaves no lone header row behind."""
    source = tmp_path / "cohort.csv"
    source.write_text("id,pain.sevrity\nx,mild\n")
    result = runner.invoke(app, ["batch", str(source), "-f", output, "-j", "1"])
    assert result.exit_code == 2 and result.stdout == ""


def test_stdin_and_every_policy(reasoner: Reasoner) -> None:
    document = json.loads(EXAMPLES[0].read_text())
    result = runner.invoke(app, ["batch", "-", "-j", "1"], input=json.dumps(document) + "\n")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["policy"], x["decision"]) for x in lines] == [
        (e[0], e[1]) for e in expected(reasoner, document)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "cannot read the input"),
        (["{csv}", "-p", "nope"], 'unknown policy "nope"'),
        (["{csv}"], "CSV header: pain.sevrity: not a field"),
    ],
)
def test_unusable_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,pain.sevrity\nx,mild\n")
    result = runner.invoke(app, ["batch", *[a.replace("{csv}", str(csv)) for a in args]])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_results_serialise_as_the_contract_says() -> None:
    contest = Contest((Taken("C4.cut-off", "persistent-pain", "C4", "A guess."),), "not_eligible")
    warning = Warning("contraindicated-not-engaged", "Contra-indicated care cannot run six months.")
    screening = Screening(
        3, "p", "hip-resurfacing", "ARP 55", "undetermined", (), ("sex",), (contest,), (warning,)
    )
    assert screening.to_json() == {
        "line": 3,
        "patient": "p",
        "policy": "hip-resurfacing",
        "reference": "ARP 55",
        "decision": "undetermined",
        "urgent": None,
        "robust": False,
        "possible": ["not_eligible", "undetermined"],
        "stopped_by": [],
        "failed": [],
        "missing": ["sex"],
        "contested": [
            {
                "reading": "C4.cut-off",
                "readings": ["C4.cut-off"],
                "requirement": "C4",
                "alternative": "A guess.",
                "decision": "not_eligible",
            }
        ],
        "warnings": [
            {
                "assumption": "contraindicated-not-engaged",
                "text": "Contra-indicated care cannot run six months.",
            }
        ],
        "edition": None,
    }
    assert LineError(4, "x").to_json() == {"line": 4, "error": "x"}


def test_the_summary_lists_the_most_frequent_first(tmp_path: Path) -> None:
    """What stops patients, and what is most often missing, in order of how many (bugs: the
    requirements in the order first met in the cohort or the policy's, A first though it stopped
    one patient; the fields in alphabetical order, conservative.documented before months)."""
    record = json.loads((EXAMPLES[0].parent / "route-c1-pain.json").read_text())
    record.pop("meta")

    def without(group: str, name: str) -> dict[str, Any]:
        return {**record, group: {k: v for k, v in record[group].items() if k != name}}

    cohort = [{**record, "msk": {**record["msk"], "assessed": False}}]  # A: 1
    cohort += [{**record, "conservative": {**record["conservative"], "months": 2}}] * 2  # B: 2
    cohort += [{**record, "sex": "female"}] * 3  # no_contraindication: 3
    cohort += [without("conservative", "months")] * 3 + [without("conservative", "documented")]
    source = tmp_path / "cohort.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in cohort))
    result = runner.invoke(
        app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "1"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.stderr

    def section(title: str) -> list[tuple[int, str]]:
        lines = result.stderr.split(f"\n{title}")[1].split(":\n", 1)[1].splitlines()
        rows = [re.match(r"\s+[█ ]*\s(\d+)\s\s(\S+)", line) for line in lines]
        return [(int(m.group(1)), m.group(2)) for m in itertools.takewhile(bool, rows) if m]

    stopped = section("Stopped by")  # B: 2 refused and the 4 left open for their care
    assert [(count, name) for count, name in stopped if count] == [
        (6, "B"),
        (3, "no_contraindication"),
        (1, "A"),
    ]
    assert section("Most often missing") == [(3, "conservative.months"), (1, "conservative.documented")]
