"""Readers at the edge (DESIGN §3): a JSON record, a FHIR QuestionnaireResponse, a CSV row and
an Arrow row become the same validated patient through `llr_asp.formats.readers`, and the core
(`patient`, `reasoner`) imports no format module; the package's imports have no cycle."""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from test_fhir import response
from typer.testing import CliRunner

from llr_asp import InputError, RuleSet, load_rules, validate
from llr_asp.cli import app
from llr_asp.core.documents import to_patient
from llr_asp.formats.readers import read_csv, read_jsonl

PACKAGE = Path(__file__).parent.parent / "llr_asp"
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
CORE = {"llr_asp.core.patient", "llr_asp.core.reasoner"}
FORMATS = {
    "llr_asp.formats.fhir",
    "llr_asp.formats.readers",
    "llr_asp.formats.arrow",
    "llr_asp.engines.batch",
    "csv",
    "pyarrow",
}
RULES = load_rules()


def imports() -> dict[str, set[str]]:
    """Each module of the package and the modules it imports, wherever in it (a function's
    lazy import too), except under `if TYPE_CHECKING:`."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if parts[-1] == "__init__" else module.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                if node.module:
                    found.add(".".join([*base, node.module]))
                else:  # `from . import a, b`: the modules a and b of the package
                    found |= {".".join([*base, alias.name]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module if node.module.startswith("llr_asp") else node.module.split(".")[0])
        graph[module] = found
    return graph


def test_the_core_imports_no_format_module() -> None:
    graph = imports()
    reached, todo = set(), list(CORE)
    while todo:
        module = todo.pop()
        for name in graph.get(module, ()):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    assert not reached & FORMATS, f"the core reaches {sorted(reached & FORMATS)}"


def test_the_package_imports_have_no_cycle() -> None:
    """(A package's __init__ importing its own modules, which import it back, is no cycle.)"""
    graph = imports()
    edges = {m: {n for n in found if n in graph and not m.startswith(n + ".")} for m, found in graph.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(edges[module]):
            assert state.get(name) != 1, "import cycle: " + " -> ".join([*path, module, name])
            if name not in state:
                visit(name, [*path, module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def flat(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            values.update(flat(value, f"{prefix}{key}."))
        else:
            values[prefix + key] = value
    return values


def forms(document: dict[str, Any], rules: RuleSet) -> dict[str, Any]:
    """The patient of `document` as each reader reads it: JSON text, the record, a FHIR
    QuestionnaireResponse, a CSV row and an Arrow row."""
    document = {k: v for k, v in document.items() if k != "meta"}
    values = {k: v for k, v in flat(document).items() if k not in ("id", "policy")}
    text = json.dumps(document)
    [(_, line)] = read_jsonl([text.encode() + b"\n"])
    cells = io.StringIO()
    writer = csv.writer(cells)
    writer.writerow(["id", *values])
    writer.writerow([document["id"], *("" if v is None else str(v).lower() for v in values.values())])
    [(_, row)] = read_csv(cells.getvalue().encode().splitlines(keepends=True), rules)
    made = {"jsonl": line, "record": document, "fhir": response(values, document["id"]), "csv": row}
    try:
        import pyarrow as pa

        from llr_asp.formats.arrow import input_schema, read_batches
    except ImportError:
        return made
    schema = pa.schema([f for f in input_schema(rules) if f.name in {"id", *values}])
    batch = pa.RecordBatch.from_pylist([{"id": document["id"], **values}], schema=schema)
    [(_, arrow)] = read_batches([batch], rules)
    return {**made, "arrow": arrow}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_format_gives_the_same_patient(path: Path) -> None:
    document = {"id": path.stem, **json.loads(path.read_text())}
    patients = {name: to_patient(made, RULES, name) for name, made in forms(document, RULES).items()}
    assert set(patients) >= {"jsonl", "record", "fhir", "csv"}
    expected = to_patient(document, RULES, "record")
    for name, patient in patients.items():
        assert (patient.id, dict(patient.values)) == (expected.id, dict(expected.values)), name


def test_ask_from_a_questionnaire_response_keeps_the_answers(tmp_path: Path) -> None:
    """`ask --from` a QuestionnaireResponse reads it into its record at the edge: an answer
    given in the session is kept (it was once written beside the response's items, unread)."""
    known = {
        k: v
        for k, v in flat(json.loads(EXAMPLES[0].parent.joinpath("route-c1-pain.json").read_text())).items()
    }
    known = {k: v for k, v in known.items() if k in RULES.fields and k != "sex"}
    start = tmp_path / "qr.json"
    resource = response(known)
    resource["item"] = [item for item in resource["item"] if "answer" in item]
    start.write_text(json.dumps(resource))
    saved = tmp_path / "saved.json"
    command = ["ask", "-p", "hip-resurfacing", "--from", str(start), "--save", str(saved)]
    result = CliRunner().invoke(app, command, input="female\n")
    assert result.exit_code == 0, result.output
    # saved as the form, the answer given in the session in its item (not a plain record)
    from llr_asp.core.documents import read_patient

    assert json.loads(saved.read_text())["resourceType"] == "QuestionnaireResponse"
    kept = read_patient(str(saved), RULES).values
    assert kept["sex"] == "female" and kept["pain.severity"] == known["pain.severity"]
    assert "NOT ELIGIBLE" in result.stdout


def test_nan_is_refused_as_no_number() -> None:
    """NaN (from pandas, say) passes every bound of the JSON Schema; it is refused by name."""
    with pytest.raises(InputError, match=r"^p: conservative.months: NaN is not a number; give null"):
        validate({"conservative": {"months": float("nan")}}, RULES, "p")
