"""Input edges (issue "Tests that bite"): long ids, byte order marks, which error is reported
when there are two, the words of enum errors, short and oddly written CSV rows, the typed
answer 0 to a graded question, and a saved whole number staying whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp import InputError, RuleSet, read_patient, validate
from llr_asp.cli import app
from llr_asp.core.patient import MAX_ID_LENGTH
from llr_asp.engines.batch import iterate_decisions
from llr_asp.engines.interview import parse_answer
from llr_asp.formats.readers import read_csv

runner = CliRunner()


def test_an_id_of_201_characters_is_refused_and_200_accepted(rules: RuleSet) -> None:
    assert validate({"id": "x" * MAX_ID_LENGTH}, rules, "p.json").id == "x" * 200
    with pytest.raises(InputError, match="id: expected a string of at most 200 characters"):
        validate({"id": "x" * (MAX_ID_LENGTH + 1)}, rules, "p.json")


def test_a_file_starting_with_a_bom_is_read(tmp_path: Path, rules: RuleSet) -> None:
    record = tmp_path / "p.json"
    record.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "bom", "sex": "male"}).encode())
    assert read_patient(str(record), rules).values == {"sex": "male"}


def test_of_two_errors_the_first_by_path_is_reported(rules: RuleSet) -> None:
    document = {"sex": 5, "pain": {"severity": "awful"}, "conservative": {"months": -1}}
    with pytest.raises(InputError) as caught:
        validate(document, rules, "p.json")
    assert caught.value.path == "conservative.months"  # conservative < pain < sex


def test_an_enum_error_lists_the_values_and_null() -> None:
    result = runner.invoke(app, ["explain", "-"], input='{"pain": {"severity": "Severe"}}')
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        'pain.severity: expected one of "none", "mild", "moderate", "intense", "severe" (or null if unknown), '
        'got "Severe"'
    )


def test_a_short_csv_row_is_one_error_line(rules: RuleSet) -> None:
    rows = list(read_csv([b"id,sex,msk.assessed\n", b"a,male\n", b"b,male,true\n"], rules))
    assert isinstance(rows[0][1], InputError) and "2 cells where the header has 3" in rows[0][1].problem
    assert rows[1] == (3, {"id": "b", "sex": "male", "msk": {"assessed": True}})


@pytest.mark.parametrize("cell", ["TRUE", " true", "True ", "false", " FALSE "])
def test_csv_booleans_in_any_case_and_spacing(cell: str, rules: RuleSet) -> None:
    [(_, document)] = list(read_csv([b"msk.assessed\n", cell.encode() + b"\n"], rules))
    assert document == {"msk": {"assessed": cell.strip().lower() == "true"}}
    [result] = list(iterate_decisions([document], policy="hip-resurfacing"))
    assert "msk.assessed" not in result.missing


def test_the_typed_answer_0_to_a_graded_question_says_what_to_type(rules: RuleSet) -> None:
    with pytest.raises(
        ValueError, match=r"answer one of none, mild, moderate, intense, severe or its number"
    ):
        parse_answer("0", rules.fields["pain.severity"])
    assert parse_answer("1", rules.fields["pain.severity"]) == "none"


def test_a_saved_whole_number_stays_whole(tmp_path: Path) -> None:
    example = json.loads(
        (Path(__file__).parent.parent / "examples" / "refused-b-four-months.json").read_text()
    )
    del example["conservative"]["months"]  # the only answer still needed
    start, save = tmp_path / "start.json", tmp_path / "answers.json"
    start.write_text(json.dumps(example))
    result = runner.invoke(
        app, ["ask", "-p", "hip-resurfacing", "--from", str(start), "--save", str(save)], input="6\n"
    )
    assert result.exit_code == 0, result.stderr
    saved = save.read_text()
    months = json.loads(saved)["conservative"]["months"]
    assert months == 6 and type(months) is int and "6.0" not in saved
