"""Writers at the edge: a cohort's results (`batch.Screening` or `LineError`) as JSON Lines or
CSV, one line or row each, in the order given. (Parquet: `llr_asp.formats.arrow.ParquetOutput`.)"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import IO, Any

from ..engines.batch import Result

Write = Callable[[Result], None]

CSV_COLUMNS = (
    "line",
    "patient",
    "policy",
    "reference",
    "decision",
    "robust",
    "possible",
    "stopped_by",
    "failed",
    "missing",
    "contested",
    "warnings",
    "error",
)
"""The CSV header: the batch line's keys, and `error` for a line that is not a patient."""

FORMULA = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet runs as a formula at the start of a cell (OWASP's list)."""


def jsonl_writer(out: IO[str]) -> Write:
    """Each result as a line of JSON."""
    encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps would build one a line

    def write(result: Result) -> None:
        out.write(encode(result.to_json()) + "\n")

    return write


def csv_writer(out: IO[str]) -> Write:
    """The header, then each result as a row: lists joined by `;`, `contested` as
    `readings=decision` (a combination's readings joined by `+`); a cell that a spreadsheet would
    run as a formula is written with a leading ' so that it stays text."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)

    def write(result: Result) -> None:
        row = result.to_json()
        for key in ("possible", "stopped_by", "failed", "missing"):
            if key in row:
                row[key] = ";".join(row[key])
        if "contested" in row:  # readings=decision under them: C4.cut-off=not_eligible, A+B=...
            row["robust"] = "true" if row["robust"] else "false"
            row["contested"] = ";".join(
                f"{'+'.join(c['readings'])}={c['decision']}" for c in row["contested"]
            )
            row["warnings"] = ";".join(w["assumption"] for w in row["warnings"])
        writer.writerow([inert(row.get(c, "")) for c in CSV_COLUMNS])

    return write


def inert(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(cell, str) and cell[:1] in FORMULA:
        return "'" + cell
    return cell
