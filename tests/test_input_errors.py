"""Bad patient input: exit code 2 and one line naming the file, the JSON path and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp.cli import app

BAD = [
    ("{", "line 1 column 2", "invalid JSON"),
    # a witness copied from a wrapped terminal: the json module's message whole, and the fix
    (
        '{"id": "witness\n a"}',
        "line 1 column 16",
        "invalid JSON: Invalid control character in a string (a line break",
    ),
    ('{"id": "open}', "line 1 column 8", "invalid JSON: Unterminated string (a quote left open)"),
    ("[1, 2]", "(document)", "expected an object"),
    ('"hello"', "(document)", "expected an object"),
    (
        '{"conservative": {"months": "six"}}',
        "conservative.months",
        'expected a number from 0 to 1200 (or null if unknown), got "six"',
    ),
    ('{"conservative": {"months": -1}}', "conservative.months", "from 0 to 1200"),
    ('{"conservative": {"months": 1e9}}', "conservative.months", "from 0 to 1200"),
    ('{"conservative": {"months": NaN}}', "", "NaN is not a JSON number"),
    ('{"conservative": {"months": Infinity}}', "", "Infinity is not a JSON number"),
    ('{"conservative": {"months": 1e999}}', "", "out of range"),
    ('{"conservative": {"months": ' + "9" * 5000 + "}}", "", "invalid JSON"),
    (
        '{"msk": {"assessed": "true"}}',
        "msk.assessed",
        'expected true or false (or null if unknown), got "true"',
    ),
    ('{"msk": {"assessed": 1}}', "msk.assessed", "expected true or false"),
    (
        '{"pain": {"severity": "Severe"}}',
        "pain.severity",
        'one of "none", "mild", "moderate", "intense", "severe"',
    ),
    ('{"knee": {"compartments_affected": 4}}', "knee.compartments_affected", "a whole number from 1 to 3"),
    ('{"knee": {"compartments_affected": 1.5}}', "knee.compartments_affected", "a whole number"),
    ('{"sex": true}', "sex", 'one of "female", "male"'),
    ('{"msk": {"assesed": true}}', "msk.assesed", 'unknown field; did you mean "msk.assessed"?'),
    ('{"pain_severity": "mild"}', "pain_severity", 'did you mean "pain.severity"?'),
    ('{"msk": "yes"}', "msk", "expected an object with the fields assessed"),
    ('{"id": 7}', "id", "expected a string"),
    ('{"policy": "hip"}', "policy", 'one of "hip-resurfacing", "knee-resurfacing"'),
    ('{"sex": "male", "sex": "female"}', "sex", "key appears twice"),
    ("[" * 100000 + "]" * 100000, "", "nested too deeply"),
    # another FHIR resource pasted: what to send instead, not its first key as "unknown field"
    ('{"resourceType": "Bundle", "entry": []}', "resourceType", "a Bundle is not one patient's answers"),
    ('{"resourceType": "Bundle"}', "resourceType", "QuestionnaireResponse taken out of the Bundle"),
    ('{"resourceType": "Parameters", "parameter": []}', "resourceType", "send one patient record"),
    ('{"resourceType": "Patient", "gender": "male"}', "resourceType", "or a FHIR QuestionnaireResponse"),
    ('{"resourceType": 3}', "resourceType", "send one patient record"),
]


@pytest.mark.parametrize(("text", "path", "problem"), BAD, ids=[t[:30] for t, _, _ in BAD])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, text: str, path: str, problem: str) -> None:
    file = tmp_path / "patient.json"
    file.write_text(text)
    result = CliRunner().invoke(app, ["explain", str(file)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"llr-asp: error: {file}: {path}")
    assert problem in line
    assert result.stdout == ""


def test_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["explain", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"llr-asp: error: {tmp_path / 'nope.json'}: file not found; give the path of a patient JSON file"
    )


def test_directory_and_binary_and_huge(tmp_path: Path) -> None:
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    huge = tmp_path / "h.json"
    huge.write_text('{"meta": "' + "x" * (2 << 20) + '"}')
    for path, problem in ((tmp_path, "is a directory"), (binary, "not UTF-8"), (huge, "over 1 MiB")):
        result = CliRunner().invoke(app, ["explain", str(path)])
        assert result.exit_code == 2
        assert problem in result.stderr


def test_unknown_policy_option(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text("{}")
    result = CliRunner().invoke(app, ["explain", str(file), "--policy", "hip"])
    assert result.exit_code == 2
    assert 'unknown policy "hip"; choose one of hip-resurfacing, knee-resurfacing, all' in result.stderr


def test_patient_text_is_data_not_program(tmp_path: Path) -> None:
    """Strings from the patient file never reach the ASP program or Rich markup."""
    hostile = 'x"). decision("hip-resurfacing",eligible). #show. [bold red]%(\x1b[31m'
    file = tmp_path / "p.json"
    file.write_text(json.dumps({"id": hostile, "sex": "female", "meta": {"note": "eligible(x)."}}))
    result = CliRunner().invoke(
        app, ["explain", str(file), "--policy", "hip-resurfacing", "--format", "json"]
    )
    assert result.exit_code == 0
    output = json.loads(result.stdout)
    assert output["patient"] == hostile
    assert output["decision"] == "not_eligible"
    text = CliRunner().invoke(app, ["explain", str(file), "--policy", "hip-resurfacing"])
    assert "[bold red]" in text.stdout
    assert "\x1b" not in text.stdout


def test_documents_built_in_python_are_judged_by_jsonschema() -> None:
    """The fast schema check knows only what json.loads gives; a document built in Python (the
    batch API takes dicts) with other types is still judged by jsonschema, not refused."""
    from collections import OrderedDict
    from enum import IntEnum

    from llr_asp import load_rules
    from llr_asp.core.errors import InputError
    from llr_asp.core.patient import validate

    class Months(IntEnum):
        SIX = 6

    rules = load_rules()
    document = OrderedDict(id="api", conservative={"months": Months.SIX}, meta={"seen": (1, 2)})
    assert validate(document, rules, "api").values["conservative.months"] == 6
    with pytest.raises(InputError, match=r"conservative\.months: expected a number"):
        validate({"conservative": {"months": -Months.SIX}}, rules, "api")
