"""Readers at the edge: every input format becomes the same validated patient.

A reader turns its format into numbered `Document`s, one per input record, in input order:
JSON Lines (`read_jsonl`), CSV whose headers are dotted field paths (`read_csv`) and Arrow
record batches or Parquet (`llr_asp.formats.arrow.read_batches`, with the `parquet` extra). A record
that cannot be a patient (not UTF-8, a broken CSV row) is an `InputError` in its place, never
skipped. `to_patient` then turns any document, whichever reader gave it (JSON text, a patient
record, a FHIR QuestionnaireResponse), into a `Patient`: the one way in to the core, which
imports no format module (`patient` and `reasoner` know only the patient record of the JSON
Schema).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.answers import read_answer
from ..core.documents import Document, Numbered
from ..core.errors import InputError, UsageError
from ..core.patient import MAX_BYTES, MAX_ID_LENGTH, nested
from ..core.ruleset import RuleSet


def read_jsonl(stream: Iterable[bytes]) -> Iterator[Numbered]:
    """Numbered lines of JSON Lines; a blank or undecodable line is an error line, not skipped.
    A byte order mark before the first line is dropped, as `explain` drops it."""
    for number, data in enumerate(stream, 1):
        if number == 1 and data.startswith(BOM):
            data = data[len(BOM) :]
        problem = line_problem(data)
        yield number, InputError("", "", problem) if problem else data.decode("utf-8")


BOM = b"\xef\xbb\xbf"


def line_problem(data: bytes) -> str | None:
    """Why a line of input cannot be a patient record, or None."""
    if len(data) > MAX_BYTES:
        return "line is over 1 MiB, far larger than a patient record"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8 text (byte {error.start}); save the file as UTF-8"
    return None


def read_csv(stream: Iterable[bytes], rules: RuleSet, delimiter: str | None = None) -> Iterator[Numbered]:
    """Numbered rows of CSV whose header names dotted field paths; an empty cell is unknown.

    The header is read and checked when this is called, before any row: an unknown or repeated
    header is refused (InputError) before anything is written. The delimiter is `delimiter`, or
    the one of , ; tab | that makes the most header cells fields. A row is one line: a quoted
    cell cannot span lines, so a broken quote spoils its own row (an error line) and never the
    rows after it. Cells are read as `ask` reads a typed answer (answers.read_answer): choices
    in any case, yes/no/true/false, numbers, "unknown"; a row with cells that do not fit is one
    error line naming every such cell, in column order. Line numbers count the header as line 1.
    """
    lines = iter(stream)
    first = next(lines, None)
    if first is None:
        return iter(())
    if first.startswith(BOM):
        first = first[len(BOM) :]
    problem = line_problem(first)
    if problem is not None:
        raise InputError("CSV header", "", problem)
    header, delimiter = _header(first.decode("utf-8"), rules, delimiter)
    return _csv_rows(lines, header, delimiter, rules)


DELIMITERS = (",", ";", "\t", "|")


def named_delimiter(given: str | None) -> str | None:
    """The CSV delimiter `--delimiter` names: one character, or `tab`; None for none named."""
    if given is None:
        return None
    chosen = "\t" if given in ("tab", "\\t") else given
    if len(chosen) != 1 or chosen in ('"', "\r", "\n") or chosen.isalnum():
        raise UsageError(f"--delimiter {given!r}: give one character such as , or ; (tab for a tab)")
    return chosen


def _header(line: str, rules: RuleSet, delimiter: str | None) -> tuple[list[str], str]:
    """The header's cells and the delimiter: the one given, else the likeliest."""
    known = {"id", "policy", *rules.fields}

    def fields(candidate: str) -> int:
        return sum(1 for h in _row(line, candidate) or () if h in known or h.startswith("meta."))

    likeliest = max(DELIMITERS, key=fields)  # the first of them on a tie
    chosen = delimiter or (likeliest if fields(likeliest) else ",")
    header = _row(line, chosen)
    if header is None:
        raise InputError("CSV header", "", "not a row of CSV; the first line names the fields")
    unknown = [h for h in header if h not in known and not h.startswith("meta.")]
    if unknown:
        problem = "not a field; headers are dotted field paths (see `llr-asp schema`)"
        if fields(likeliest) > fields(chosen):
            shown = "tab" if likeliest == "\t" else likeliest
            problem += f"; the header looks {shown}-separated: give --delimiter '{shown}'"
        raise InputError("CSV header", unknown[0], problem)
    repeated = next((h for n, h in enumerate(header) if h in header[:n]), None)
    if repeated is not None:
        raise InputError("CSV header", repeated, "appears twice; keep one column per field")
    return header, chosen


def _csv_rows(
    lines: Iterator[bytes], header: list[str], delimiter: str, rules: RuleSet
) -> Iterator[Numbered]:
    for number, data in enumerate(lines, 2):
        problem = line_problem(data)
        row = _row(data.decode("utf-8"), delimiter) if problem is None else None
        if row is None:
            yield number, InputError("", "", problem or "not a row of CSV (a quote left open?)")
        elif len(row) != len(header):
            yield number, InputError("", "", f"{len(row)} cells where the header has {len(header)}")
        else:
            yield number, _document(zip(header, row), rules)


def _row(line: str, delimiter: str) -> list[str] | None:
    """The cells of one line of CSV, or None when it is not a whole row (a quote left open, a
    cell over the csv module's size limit)."""
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return None


def _document(cells: Iterable[tuple[str, str]], rules: RuleSet) -> Document:
    """A row's patient document, or an InputError naming every cell that does not fit."""
    document: dict[str, Any] = {}
    problems = []
    for header, cell in cells:
        if not cell.strip() or header.startswith("meta."):
            continue
        try:
            document[header] = _cell(cell, rules, header)
        except ValueError as error:
            shown = json.dumps(cell if len(cell) <= 40 else cell[:37] + "...", ensure_ascii=False)
            problems.append(f"{header}: expected {error}, got {shown}")
    if problems:
        return InputError("", "", "; ".join(problems))
    return nested(document)


def _cell(text: str, rules: RuleSet, header: str) -> Any:
    field = rules.fields.get(header)
    if field is not None:
        return read_answer(text, field)
    if header == "policy" and text.strip() not in rules.policies:
        raise ValueError(f"one of {', '.join(rules.policies)}")
    if header == "id" and len(text) > MAX_ID_LENGTH:
        raise ValueError(f"a string of at most {MAX_ID_LENGTH} characters")
    return text.strip() if header == "policy" else text
