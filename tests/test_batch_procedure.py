"""Batch honours the procedure a record names (issue 32, hazard 8): without --policy, a record
that names its policy is decided for that policy only and one that names none for every policy
(the summary says how many); --policy all decides every record for every policy, --policy ID
every record for that one. Each policy's figures (decisions, stopped_by, funnel) count only the
patients decided for it: a woman referred for a knee never appears in hip's funnel. JSON Lines,
CSV and Parquet in, one or two workers, the CLI and the service alike; each line as `explain`
decides the record."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_batch import random_patient
from test_readers import flat
from typer.testing import CliRunner

from llr_asp import InputError, Reasoner, RuleSet, validate
from llr_asp.cli import app
from llr_asp.engines import batch as batch_module
from llr_asp.engines.batch import Screening, Summary, iterate_decisions

EXAMPLES = Path(__file__).parent.parent / "examples"
HIP, KNEE = "hip-resurfacing", "knee-resurfacing"
runner = CliRunner()


def mixed_cohort(rules: RuleSet) -> list[dict[str, Any]]:
    """Records for a hip, for a knee and for neither named, in no order, with one that names a
    policy there is not (an error line in its place). Two women referred for knees: one who
    meets every knee criterion, one never assessed (the hip policy would refuse both for their
    sex, under no_contraindication)."""
    base = json.loads((EXAMPLES / "route-c1-pain.json").read_text())
    base.pop("meta")
    documents = [
        {**base, "id": "knee-woman", "policy": KNEE, "sex": "female"},
        {**base, "id": "hip-man", "policy": HIP},
        {**base, "id": "unnamed-woman", "sex": "female"},
        {**base, "id": "elbow", "policy": "elbow-resurfacing"},
        {**base, "id": "knee-woman-unassessed", "policy": KNEE, "sex": "female", "msk": {"assessed": False}},
        {**base, "id": "unnamed-man"},
    ]
    rng = random.Random(32)
    for n in range(45):
        named = rng.choice([HIP, KNEE, None])
        documents.append(
            {"id": f"r{n}", **({"policy": named} if named else {}), **random_patient(rng, rules)}
        )
    return documents


def explained(reasoner: Reasoner, documents: list[dict[str, Any]], mode: str | None) -> list[tuple[Any, ...]]:
    """The oracle: what `explain --policy MODE` decides for each record, line by line, as
    (line, patient, policy, decision, stopped_by); (line, "error") for a record that is not valid."""
    lines: list[tuple[Any, ...]] = []
    for line, document in enumerate(documents, 1):
        try:
            patient = validate(document, reasoner.rules, "t")
        except InputError:
            lines.append((line, "error"))
            continue
        for decision in reasoner.decide(patient, reasoner.chosen(patient, mode)):
            lines.append(
                (line, patient.id, decision.policy.id, decision.decision, tuple(decision.stopped_by()))
            )
    return lines


def said(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (x["line"], "error")
        if "error" in x
        else (x["line"], x["patient"], x["policy"], x["decision"], tuple(x["stopped_by"]))
        for x in lines
    ]


def write_input(tmp_path: Path, documents: list[dict[str, Any]], form: str) -> Path:
    if form == "jsonl":
        path = tmp_path / "cohort.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in documents))
    elif form == "csv":  # a policy column, empty where the record names none
        rows = [flat(d) for d in documents]
        header = list(dict.fromkeys(k for row in rows for k in row))
        path = tmp_path / "cohort.csv"
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, header)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()})
    else:
        from test_arrow import dotted

        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / "cohort.parquet"
        pq.write_table(dotted(documents), path, row_group_size=10)
    return path


def run_batch(
    tmp_path: Path, documents: list[dict[str, Any]], form: str, mode: str | None, jobs: int
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """`llr-asp batch` on the cohort in `form` (Parquet out for Parquet in): its lines, its
    --summary-json and its stderr summary."""
    source = write_input(tmp_path, documents, form)
    out = tmp_path / ("out.parquet" if form == "parquet" else "out.jsonl")
    summary = tmp_path / "summary.json"
    policy = [] if mode is None else ["--policy", mode]
    arguments = [
        "batch",
        str(source),
        *policy,
        "-j",
        str(jobs),
        "-o",
        str(out),
        "--summary-json",
        str(summary),
    ]
    result = runner.invoke(app, arguments, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.stderr  # the elbow record is an error line
    if form == "parquet":
        import pyarrow.parquet as pq
        from test_arrow import as_lines

        lines = as_lines(pq.read_table(out).to_pylist())
    else:
        lines = [json.loads(line) for line in out.read_text().splitlines()]
    return lines, json.loads(summary.read_text()), result.stderr


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 records: the cohort is spread over several, and over both workers with -j 2."""
    monkeypatch.setattr(batch_module, "CHUNK", 7)
    arrow = pytest.importorskip("llr_asp.formats.arrow")
    monkeypatch.setattr(arrow, "CHUNK", 7)


CASES = [
    # (input, --policy, workers)
    *((form, mode, 1) for form in ("jsonl", "csv", "parquet") for mode in (None, "all", HIP, KNEE)),
    *((form, None, 2) for form in ("jsonl", "csv", "parquet")),
    ("jsonl", "all", 2),
]


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(("form", "mode", "jobs"), CASES)
def test_each_record_is_decided_for_its_procedure(
    tmp_path: Path, rules: RuleSet, reasoner: Reasoner, form: str, mode: str | None, jobs: int
) -> None:
    documents = mixed_cohort(rules)
    lines, summary, stderr = run_batch(tmp_path, documents, form, mode, jobs)
    first = 2 if form == "csv" else 1  # a CSV file's line 1 is its header
    expect = [(x[0] + first - 1, *x[1:]) for x in explained(reasoner, documents, mode)]
    assert said(lines) == expect  # explain's decisions, in input order, nothing dropped

    named = {d["id"]: d.get("policy") for d in documents}
    decided: dict[str, list[str]] = {}
    for line in lines:
        if "error" not in line:
            decided.setdefault(line["patient"], []).append(line["policy"])
    for patient, policies in decided.items():
        if mode is None:  # the record's policy, else every policy
            assert policies == ([named[patient]] if named[patient] else [HIP, KNEE]), patient
        else:
            assert policies == ([HIP, KNEE] if mode == "all" else [mode]), patient

    # each policy's figures count the patients decided for it, and only them
    by_policy = {p: [x for x in expect if len(x) > 2 and x[2] == p] for p in rules.policies}
    for policy, counted in summary["policies"].items():
        assert counted["decisions"] == dict(Counter(x[3] for x in by_policy[policy]))
        assert counted["stopped_by"] == dict(Counter(r for x in by_policy[policy] for r in x[4]))
        assert counted["funnel"][0]["reached"] == len(by_policy[policy])
    # in the rule set's order, though the cohort's first record is for a knee
    assert list(summary["policies"]) == [p for p, x in by_policy.items() if x]
    heads = [stderr.index(f"{p} ({rules.policies[p].reference})") for p in summary["policies"]]
    assert heads == sorted(heads)

    # the summary says how many records named no policy and were decided for every policy
    unnamed = sum(1 for d in documents if "policy" not in d)
    assert summary["unnamed_decided_for_every_policy"] == (unnamed if mode is None else 0)
    told = f"{unnamed} records named no policy, so each was decided for every policy"
    assert (told in " ".join(stderr.split())) == (mode is None)


def test_a_woman_referred_for_a_knee_is_not_in_hips_funnel(tmp_path: Path, rules: RuleSet) -> None:
    """The hazard as the review met it: hip's funnel counted the knee patients, most of its
    'stopped by no_contraindication' women referred for knees."""
    documents = mixed_cohort(rules)
    default, default_summary, _ = run_batch(tmp_path, documents, "jsonl", None, 1)
    _, every_summary, _ = run_batch(tmp_path, documents, "jsonl", "all", 1)
    knee_women = {"knee-woman", "knee-woman-unassessed"}
    assert not [x for x in default if x.get("patient") in knee_women and x["policy"] == HIP]
    assert [x["policy"] for x in default if x.get("patient") in knee_women] == [KNEE, KNEE]
    assert [x["decision"] for x in default if x.get("patient") == "knee-woman"] == ["eligible"]

    def women_stopped(summary: dict[str, Any]) -> int:
        steps = {s["requirement"]: s for s in summary["policies"][HIP]["funnel"]}
        assert steps["no_contraindication"]["not_met"] <= summary["policies"][HIP]["stopped_by"].get(
            "no_contraindication", 0
        )
        return int(summary["policies"][HIP]["stopped_by"].get("no_contraindication", 0))

    # asked for every policy, every woman referred for a knee is refused for hip, for her sex
    knee_named = [d for d in documents if d.get("policy") == KNEE]
    women = sum(1 for d in knee_named if d.get("sex") == "female")
    assert women >= 2
    assert women_stopped(every_summary) == women_stopped(default_summary) + women
    hip_patients = sum(default_summary["policies"][HIP]["decisions"].values())
    assert sum(every_summary["policies"][HIP]["decisions"].values()) == hip_patients + len(knee_named)


def test_the_library_and_its_summary_agree(rules: RuleSet, reasoner: Reasoner) -> None:
    """iterate_decisions without a policy (its default) is the CLI's default; Summary counts each
    unnamed record once however many policies decide it."""
    documents = mixed_cohort(rules)
    results = list(iterate_decisions(documents, jobs=1))
    lines = [r.to_json() for r in results]
    assert said(lines) == explained(reasoner, documents, None)
    assert all(
        r.unnamed == ("policy" not in documents[r.line - 1]) for r in results if isinstance(r, Screening)
    )
    summary = Summary(rules)
    for result in results:
        summary.add(result)
    assert summary.unnamed == sum(1 for d in documents if "policy" not in d)
    assert "unnamed" not in lines[0]  # the line's contract is unchanged (DESIGN §6)


def test_decide_batches_honours_the_policy_column(rules: RuleSet, reasoner: Reasoner) -> None:
    """Spark's mapInArrow shape decides as `batch` does: the row's policy, else every policy."""
    pa = pytest.importorskip("pyarrow")
    from test_arrow import as_lines, dotted

    from llr_asp.arrow import decide_batches

    documents = mixed_cohort(rules)
    for mode in (None, "all", KNEE):
        batches = dotted(documents).to_batches(max_chunksize=16)
        kwargs = {} if mode is None else {"policy": mode}
        table = pa.Table.from_batches(list(decide_batches(batches, **kwargs)))
        assert said(as_lines(table.to_pylist())) == explained(reasoner, documents, mode), mode


@pytest.mark.parametrize("mode", [None, "all", HIP])
def test_the_service_batch_and_summary_agree_with_the_cli(
    tmp_path: Path, rules: RuleSet, mode: str | None
) -> None:
    pytest.importorskip("fastapi", reason="the web extra is not installed")
    from fastapi.testclient import TestClient

    from llr_asp.web import create_app

    documents = mixed_cohort(rules)
    lines, summary, _ = run_batch(tmp_path, documents, "jsonl", mode, 1)
    cohort = tmp_path / "cohort.jsonl"
    body = cohort.read_bytes()
    for piece in [line for line in lines if "error" in line] + summary["first_errors"]:
        piece["error"] = piece["error"].replace(f"{cohort}:", "line:", 1)  # the API names the line
    query = "" if mode is None else f"?policy={mode}"
    with TestClient(create_app()) as client:
        streamed = client.post(f"/api/v1/batch{query}", content=body)
        assert streamed.status_code == 200
        assert [json.loads(line) for line in streamed.text.splitlines()] == lines
        counted = client.post(f"/api/v1/batch/summary{query}", content=body)
        assert counted.status_code == 200
        assert counted.json() == summary
        page = client.post(f"/api/v1/batch/summary{query}{'&' if query else '?'}format=html", content=body)
        assert ("named no policy, so each was decided for every policy" in page.text) == (mode is None)
