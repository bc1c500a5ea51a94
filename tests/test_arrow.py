"""Cohorts as Arrow and Parquet (the `parquet` extra): `llr-asp batch` reads and writes Parquet
with the decisions, counts and summary of JSON Lines; dotted and struct columns read alike; a bad
row is an error row, a bad column or file one line and exit code 2; `decide_batches` has Spark's
`mapInArrow` shape and builds its screener once a process."""

from __future__ import annotations

import decimal
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from test_batch import random_patient
from test_readers import flat
from typer.testing import CliRunner

import llr_asp
from llr_asp import RuleSet, load_rules
from llr_asp.cli import app
from llr_asp.engines import batch as batch_module

pa = pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
pq = pytest.importorskip("pyarrow.parquet")
import llr_asp.arrow  # noqa: E402  (the public entry, as Spark users import it)
from llr_asp.formats import arrow  # noqa: E402
from llr_asp.formats.results import URGENT  # noqa: E402

RULES = load_rules()
runner = CliRunner()


def cohort(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": f"p{n}", **random_patient(rng, RULES)} for n in range(count)]


def dotted(documents: list[dict[str, Any]], rules: RuleSet = RULES) -> Any:
    """The documents as a table with a column per field path, typed as `input_schema` says."""
    rows = [flat(d) for d in documents]
    schema = pa.schema([f for f in arrow.input_schema(rules) if any(f.name in r for r in rows)])
    return pa.Table.from_pylist(rows, schema=schema)


def write_cohort(tmp_path: Path, documents: list[dict[str, Any]]) -> tuple[Path, Path]:
    jsonl = tmp_path / "cohort.jsonl"
    jsonl.write_text("".join(json.dumps(d) + "\n" for d in documents))
    parquet = tmp_path / "cohort.parquet"
    pq.write_table(dotted(documents), parquet, row_group_size=70)
    return jsonl, parquet


def as_lines(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parquet rows as the batch lines they carry: without nulls (a JSON line leaves the key
    out: an error line, a contest's missing parts) and the rule set's hash, the flat urgent_*
    columns as the line's `urgent` object (its label the route's, as the rules declare it)."""
    lines = []
    for row in rows:
        urgent = {c.key: row.pop(c.name) for c in URGENT}
        line = {k: v for k, v in row.items() if v is not None and k != "rules"}
        if "contested" in line:
            line["contested"] = [{k: v for k, v in c.items() if v is not None} for c in line["contested"]]
        if "error" not in line:
            line = {**line, "urgent": _urgent(line["policy"], urgent)}
        lines.append(line)
    return lines


def _urgent(policy: str, flat: dict[str, Any]) -> dict[str, Any] | None:
    if flat["route"] is None:
        assert set(flat.values()) == {None}, flat  # none: every urgent column null
        return None
    label = RULES.policies[policy].requirements[flat["route"]].label
    said = {"route": flat["route"], "label": label, "status": flat["status"], "action": flat["action"]}
    return {**said, "to_confirm": flat["to_confirm"]} if flat["to_confirm"] else said


@pytest.mark.whole
def test_parquet_in_and_out_gives_the_lines_and_summary_of_json_lines(tmp_path: Path) -> None:
    documents = cohort(300)
    documents[7]["pain"] = {"severity": "Severe"}  # not a grade: an error row, as in JSON Lines
    jsonl, parquet = write_cohort(tmp_path, documents)
    runs = {}
    for source, out, jobs in [
        (jsonl, "out.jsonl", "1"),
        (parquet, "out.parquet", "1"),
        (parquet, "two.parquet", "2"),
    ]:
        summary = tmp_path / f"{out}.summary.json"
        args = [
            "batch",
            str(source),
            "--out",
            str(tmp_path / out),
            "-j",
            jobs,
            "--summary-json",
            str(summary),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output  # the bad row
        runs[out] = json.loads(summary.read_text())
    expected = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for out in ("out.parquet", "two.parquet"):
        table = pq.read_table(tmp_path / out)
        assert table.schema.remove_metadata() == arrow.OUTPUT
        assert table.schema.metadata == {b"llr-asp.rules": RULES.digest.encode()}
        rows = table.to_pylist()
        assert {r["rules"] for r in rows} == {RULES.digest}
        errors = [
            {**e, "error": e["error"].replace(str(jsonl), str(parquet))} for e in expected if "error" in e
        ]
        assert as_lines(rows) == [
            e if "error" not in e else {**errors.pop(0), "patient": "p7"} for e in expected
        ]
        for key in ("errors", "policies"):
            assert runs[out][key] == json.loads(
                json.dumps(runs["out.jsonl"][key]).replace(str(jsonl), str(parquet))
            )
    assert any(r["contested"] for r in rows) and any(r["robust"] for r in rows)
    assert {type(r["robust"]) for r in rows if r["error"] is None} == {bool}


def test_struct_and_dotted_columns_are_read_alike(tmp_path: Path) -> None:
    documents = cohort(60, seed=4)
    structs = pa.Table.from_pylist(documents)
    assert pa.types.is_struct(structs.schema.field("msk").type)
    mixed = structs.drop_columns(["msk"])  # a group as dotted columns, the others as structs
    for name in [n for n in dotted(documents).column_names if n.startswith("msk.")]:
        mixed = mixed.append_column(name, dotted(documents).column(name))
    decided = [arrow.decide_table(t).to_pylist() for t in (dotted(documents), structs, mixed)]
    assert decided[0] == decided[1] == decided[2]
    assert len(decided[0]) == 120 and all(r["error"] is None for r in decided[0])


def test_arrow_types_are_read_as_json_values_are() -> None:
    """An integer id, decimal or float32 months, dictionary-encoded grades, an all-null column
    and a null struct decide as the JSON record with the same values decides."""
    record = {"id": "7", "sex": "male", "conservative": {"months": 6.5}, "pain": {"severity": "severe"}}
    table = pa.table(
        {
            "id": pa.array([7], pa.int64()),
            "sex": pa.array(["male"]).dictionary_encode(),
            "conservative.months": pa.array([decimal.Decimal("6.5")], pa.decimal128(4, 1)),
            "pain": pa.array([{"severity": "severe"}], pa.struct([("severity", pa.string())])),
            # a null struct hides its children's values: unknown, as a JSON null group is
            "knee": pa.StructArray.from_arrays(
                [pa.array([3], pa.int8())], ["compartments_affected"], mask=pa.array([True])
            ),
            "joint.instability": pa.nulls(1),
            "meta.note": pa.array(["anything"]),
        }
    )
    expected = [r.to_json() for r in batch_module.iterate_decisions([record])]
    assert as_lines(arrow.decide_table(table).to_pylist()) == expected
    as_float32 = table.set_column(2, "conservative.months", pa.array([6.5], pa.float32()))
    assert as_lines(arrow.decide_table(as_float32).to_pylist()) == expected


def test_bad_values_are_error_rows_and_nothing_is_lost(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": ["ok", "grade", "months", "nan", "whole", None],
            "pain.severity": ["mild", "Severe", None, None, None, None],
            "conservative.months": [6.0, None, -1.0, float("nan"), None, 3.0],
            "knee.compartments_affected": [None, None, None, None, 2.5, 1.0],
        }
    )
    source = tmp_path / "bad.parquet"
    pq.write_table(table, source)
    out = tmp_path / "out.parquet"
    result = runner.invoke(
        app, ["batch", str(source), "--out", str(out), "-p", "knee-resurfacing", "-j", "1"]
    )
    assert result.exit_code == 1 and "4 bad lines" in result.stderr
    rows = pq.read_table(out).to_pylist()
    assert [(r["line"], r["patient"], r["error"] is None) for r in rows] == [
        (1, "ok", True),
        (2, "grade", False),
        (3, "months", False),
        (4, "nan", False),
        (5, "whole", False),
        (6, "bad", True),  # no id: named after the file, as a JSON line without one
    ]
    assert rows[1]["error"] == (
        f'{source}:2: pain.severity: expected one of "none", "mild", "moderate", "intense", "severe" '
        '(or null if unknown), got "Severe"'
    )
    assert "conservative.months: expected a number from 0 to 1200" in rows[2]["error"]
    assert rows[3]["error"].endswith("conservative.months: NaN is not a number; give null (None) if unknown")
    assert "knee.compartments_affected: expected a whole number" in rows[4]["error"]
    assert rows[1]["decision"] is None and rows[1]["robust"] is None


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"pain.sevrity": ["mild"]}, 'pain.sevrity: not a field; did you mean "pain.severity"?'),
        (
            {"msk.assessed": ["true"]},
            "msk.assessed: the column is string where the field needs a boolean column",
        ),
        (
            {"conservative.months": [True]},
            "conservative.months: the column is bool where the field needs a numeric",
        ),
        (
            {"sex": [1]},
            "sex: the column is int64 where the field needs a string column (it takes one of female, male)",
        ),
        (
            {"id": [1.5]},
            "id: the column is double where the field needs a string column; cast the column to it",
        ),
        ({"pain": [{"severity": "mild"}], "pain.severity": ["mild"]}, "pain.severity: given twice"),
        ({"msk": [{"asessed": True}]}, 'msk.asessed: not a field; did you mean "msk.assessed"?'),
    ],
)
def test_a_bad_column_is_one_line_and_exit_2(tmp_path: Path, columns: dict[str, Any], message: str) -> None:
    source = tmp_path / "cohort.parquet"
    pq.write_table(pa.table(columns), source)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"an earlier run")
    result = runner.invoke(app, ["batch", str(source), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"llr-asp: error: {source}: {message}" + result.stderr.split(message, 1)[1]
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (
        out.read_bytes() == b"an earlier run"
        and [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["{jsonl}", "--input-format", "parquet"],
            "{jsonl}: not a Parquet file (Parquet magic bytes not found",
        ),
        (["{cut}"], "{cut}: not a Parquet file"),
        (["missing.parquet"], "missing.parquet: file not found; give the path of a Parquet file"),
        (["-", "--input-format", "parquet"], "Parquet is read from a file (its index is at the end)"),
    ],
)
def test_an_unreadable_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    jsonl, parquet = write_cohort(tmp_path, cohort(3))
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[:200])
    paths = {"{jsonl}": str(jsonl), "{cut}": str(cut)}
    for name, path in paths.items():
        args, message = [path if a == name else a for a in args], message.replace(name, path)
    result = runner.invoke(app, ["batch", *args], input=b"PAR1")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_parquet_to_standard_output_but_not_to_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, parquet = write_cohort(tmp_path, cohort(5))
    result = runner.invoke(app, ["batch", str(parquet), "--output-format", "parquet", "-j", "1"])
    assert result.exit_code == 0
    assert pq.read_table(pa.BufferReader(result.stdout_bytes)).num_rows == 10
    from llr_asp.cli import cohort as commands
    from llr_asp.core.errors import UsageError

    monkeypatch.setattr(sys, "stdout", type("Terminal", (), {"isatty": lambda self: True})())
    with pytest.raises(UsageError, match="Parquet is binary, not for a terminal"):
        commands._output("-", commands.BatchFormat.parquet)


def test_without_pyarrow_parquet_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    jsonl, parquet = write_cohort(tmp_path, cohort(2))
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails, as where it is absent
    monkeypatch.delitem(sys.modules, "llr_asp.formats.arrow")
    monkeypatch.delitem(sys.modules, "llr_asp.arrow")
    monkeypatch.delattr(llr_asp, "arrow")
    monkeypatch.delattr(llr_asp.formats, "arrow")
    for args in (["batch", str(parquet)], ["batch", str(jsonl), "--out", str(tmp_path / "o.parquet")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "pip install 'llr-asp[parquet]'" in result.stderr and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["batch", str(jsonl), "-j", "1"])
    assert result.exit_code == 0  # JSON Lines needs no pyarrow


def test_the_public_entry_is_llr_asp_arrow() -> None:
    """`llr_asp.arrow.decide_batches` (and its kin) stay where Spark jobs import them."""
    for name in llr_asp.arrow.__all__:
        assert getattr(llr_asp.arrow, name) is getattr(arrow, name)
    assert "decide_batches" in llr_asp.arrow.__all__


def test_output_is_written_a_row_group_at_a_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Results are held only until a row group is full, whatever the cohort's size."""
    monkeypatch.setattr(arrow, "OUTPUT_ROWS", 16)
    monkeypatch.setattr(arrow, "GROUP_ROWS", 64)
    _, parquet = write_cohort(tmp_path, cohort(100))
    out = tmp_path / "out.parquet"
    assert runner.invoke(app, ["batch", str(parquet), "--out", str(out), "-j", "1"]).exit_code == 0
    metadata = pq.ParquetFile(out).metadata
    assert metadata.num_rows == 200
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [64, 64, 64, 8]


def test_schema_prints_the_parquet_columns() -> None:
    result = runner.invoke(app, ["schema", "--output", "parquet"])
    assert result.exit_code == 0
    described = json.loads(result.stdout)
    assert [(c["name"], c["type"]) for c in described["columns"]] == [
        (f.name, str(f.type)) for f in arrow.OUTPUT
    ]
    assert all(c["meaning"] for c in described["columns"])
    assert described["columns"][14]["type"].startswith("list<item: struct<reading: string")  # contested
    assert (
        described["spark"].startswith("`line` BIGINT, `patient` STRING")
        and "`robust` BOOLEAN" in described["spark"]
    )
    result = runner.invoke(app, ["schema", "--input", "parquet"])
    columns = json.loads(result.stdout)["columns"]
    assert [c["name"] for c in columns] == ["id", "policy", *RULES.fields]  # from the field declarations
    assert {c["name"]: c["type"] for c in columns}["knee.compartments_affected"] == "int64"
    assert {c["name"]: c["takes"] for c in columns[2:]}["pain.severity"].startswith("one of none, mild")


def test_the_input_columns_come_from_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).parent.parent / "rules", rules)
    with (rules / "fields.lp").open("a") as extra:
        extra.write('\nfield("bmi", number).\nrange("bmi", 10, 80).\nquestion("bmi", "What is the BMI?").\n')
        extra.write('kind("bmi", finding).\n')
    names = [f.name for f in arrow.input_schema(load_rules(rules))]
    assert names[-1] == "bmi" and "bmi" not in [f.name for f in arrow.input_schema(RULES)]


def test_decide_batches_has_sparks_shape_and_builds_one_screener_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = cohort(40, seed=5)
    expected = [r.to_json() for r in batch_module.iterate_decisions(documents, policy="hip-resurfacing")]
    built = []
    load = batch_module.Screener.load
    monkeypatch.setattr(batch_module.Screener, "load", lambda rules=None: built.append(rules) or load(rules))
    monkeypatch.setattr(arrow, "_screeners", {})
    batches = dotted(documents).to_batches(max_chunksize=15)
    for _ in range(2):  # two partitions, say: rows are counted within each
        out = list(arrow.decide_batches(iter(batches), policy="hip-resurfacing"))
        assert [b.schema for b in out] == [arrow.OUTPUT] * 3
        assert as_lines(pa.Table.from_batches(out).to_pylist()) == expected
    assert built == [None]


def test_decide_frames_for_pandas() -> None:
    pytest.importorskip("pandas", reason="pandas is not installed")
    documents = cohort(10, seed=6)
    frames = [dotted(documents).to_pandas()]
    [out] = list(arrow.decide_frames(iter(frames), policy="knee-resurfacing"))
    assert list(out.columns) == arrow.OUTPUT.names
    assert list(out["decision"]) == [
        r.decision for r in batch_module.iterate_decisions(documents, "knee-resurfacing")
    ]


def test_decide_table_on_several_processes_keeps_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow, "CHUNK", 25)
    documents = cohort(200, seed=8)
    table = dotted(documents)
    assert arrow.decide_table(table, jobs=2).to_pylist() == arrow.decide_table(table).to_pylist()


def test_a_chunk_goes_to_a_worker_as_its_own_rows() -> None:
    """A chunk is a slice of a larger record batch; pickled, it carries its own rows only (a
    slice pickled as it is carries the whole batch's buffers) and reads back the same."""
    import pickle

    table = dotted(cohort(2000, seed=9))
    [batch] = table.combine_chunks().to_batches()
    chunks = list(arrow.row_chunks([batch], "c", size=100))
    assert [c.first for c in chunks[:3]] == [1, 101, 201]
    sent = pickle.dumps(chunks[5])
    assert len(sent) < len(pickle.dumps(batch)) / 10
    assert pickle.loads(sent).documents(RULES) == chunks[5].documents(RULES)


def test_an_id_that_is_not_unicode_is_written_escaped(tmp_path: Path) -> None:
    """A lone surrogate (a JSON escape) cannot be a Parquet string: it is written as its escape,
    as JSON Lines output writes it."""
    source = tmp_path / "cohort.jsonl"
    source.write_text('{"id": "a\\ud800b", "sex": "female"}\n')
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["batch", str(source), "--out", str(out), "-p", "hip-resurfacing", "-j", "1"])
    assert result.exit_code == 0, result.output
    [row] = pq.read_table(out).to_pylist()
    assert (row["patient"], row["decision"]) == ("a\\ud800b", "not_eligible")
    assert arrow.result_batch([], RULES.digest).schema == arrow.OUTPUT


def test_progress_follows_the_rows_of_a_parquet_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Parquet file's position is no measure of the rows read: the bar counts rows."""
    import io

    from llr_asp.cli import cohort as commands

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    monkeypatch.setattr(sys, "stderr", shown)
    with commands._progress(None, "cohort.parquet", 40) as advance:
        advance(20)
    last = shown.getvalue().split("\r")[-1]
    assert "20 lines" in last and "╺" in last  # half way along the bar
