"""Writers at the edge: a cohort's results (`batch.Screening` or `LineError`) as JSON Lines or
CSV, one line or row each, in the order given. (Parquet: `llr_asp.formats.arrow.ParquetOutput`.)

A line's `urgent` object (core.urgency.urgent_json, explain's) becomes flat columns in every
columnar output, CSV here and Arrow and Parquet (`formats.arrow.OUTPUT`), as `URGENT` declares
them once: a table is filtered on a column, and a struct column is easy to leave unread."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from typing import IO, Any, NamedTuple

from ..engines.batch import Result

Write = Callable[[Result], None]


class Column(NamedTuple):
    """A flat column of a line's `urgent` object: its name, the key it holds, whether it is a
    list (Arrow: a list of strings; CSV: joined by `;`) and its meaning."""

    name: str
    key: str
    listed: bool
    meaning: str


URGENT = (
    Column(
        "urgent_route",
        "route",
        False,
        "the urgent route (C5, C6) the patient meets or may meet, which the policy says not to "
        "wait for: the line must not wait behind the cohort's order; null: none",
    ),
    Column(
        "urgent_status",
        "status",
        False,
        "met, or unknown: may meet it (some of it met, none of it refuted, the rest not known)",
    ),
    Column(
        "urgent_action",
        "action",
        False,
        "what to do first, as explain says: refer (without delay), ask (the ICB now, not after "
        "more care), assess (the care every reading asks, now), settle (what is open, now), "
        "refused (on another requirement: the care indicated instead, now), confirm (what it "
        "rests on, or that the procedure suits), unsuitable (the urgency is for another "
        "procedure), find out (the rest of the route, now)",
    ),
    Column(
        "urgent_to_confirm",
        "to_confirm",
        True,
        "the fields the urgency or the decision rests on that no one confirmed for this "
        "referral (pre-filled from the EHR, an older form): confirm them first; empty for none",
    ),
)
"""The columns that carry a line's `urgent` in CSV, Arrow and Parquet, declared once: the
subset of explain's `urgent` object a table needs (its `label` is the route's, in `llr-asp
policies` and the report)."""


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """A line's JSON object with its `urgent` object as the `URGENT` columns (null where the
    line has none; an error line has neither)."""
    if "urgent" not in row:
        return row
    urgent: Mapping[str, Any] | None = row.pop("urgent")
    for column in URGENT:
        value = None if urgent is None else urgent.get(column.key)
        row[column.name] = [] if value is None and column.listed and urgent is not None else value
    return row


CSV_COLUMNS = (
    "line",
    "patient",
    "policy",
    "reference",
    "decision",
    *(c.name for c in URGENT),
    "robust",
    "possible",
    "stopped_by",
    "failed",
    "missing",
    "contested",
    "warnings",
    "error",
)
"""The CSV header: the batch line's keys (`urgent` as the `URGENT` columns), and `error` for a
line that is not a patient."""

FORMULA = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet runs as a formula at the start of a cell (OWASP's list)."""


def jsonl_writer(out: IO[str]) -> Write:
    """Each result as a line of JSON."""
    encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps would build one a line

    def write(result: Result) -> None:
        out.write(encode(result.to_json()) + "\n")

    return write


def csv_writer(out: IO[str]) -> Write:
    """The header, then each result as a row: `urgent` as the `URGENT` columns, lists joined by
    `;`, `contested` as `readings=decision` (a combination's readings joined by `+`); a cell
    that a spreadsheet would run as a formula is written with a leading ' so that it stays text."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    listed = ("possible", "stopped_by", "failed", "missing", *(c.name for c in URGENT if c.listed))

    def write(result: Result) -> None:
        row = flat(result.to_json())
        for key in listed:
            if row.get(key) is not None:
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
