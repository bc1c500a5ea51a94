"""The cohort commands: batch (JSON Lines, CSV or Parquet in and out) and schema (what a record
or a cohort file holds)."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.errors import UsageError
from ..core.patient import json_schema
from ..core.ruleset import load_rules
from ..formats.readers import named_delimiter
from .app import (
    AsOfOption,
    RulesOption,
    app,
    as_of,
    console,
    hold_interrupts,
    interrupted,
    print_json,
    user_errors,
)


class BatchFormat(str, enum.Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


class InputFormat(str, enum.Enum):
    auto = "auto"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


@app.command()
def batch(
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Patients as JSON Lines, CSV (dotted field paths as headers) or Parquet, or - for stdin.",
        ),
    ],
    policy: Annotated[
        Optional[str],
        typer.Option(
            "--policy",
            "-p",
            help='Policy id (see `llr-asp policies`) or "all", for every record. Default: each '
            'record\'s "policy", else every policy (the summary counts those records).',
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str, typer.Option("--out", "-o", metavar="FILE", help="Where to write the results; - for stdout.")
    ] = "-",
    format: Annotated[
        Optional[BatchFormat],
        typer.Option(
            "--format",
            "-f",
            "--output-format",
            help="Output: JSON Lines, CSV with ;-separated lists, or Parquet (the parquet extra). "
            "Default: Parquet for --out FILE.parquet, JSON Lines otherwise.",
            show_default=False,
        ),
    ] = None,
    input_format: Annotated[
        InputFormat,
        typer.Option(
            "--input-format",
            help="auto: CSV for a .csv file, Parquet for a .parquet file, JSON Lines otherwise.",
        ),
    ] = InputFormat.auto,
    delimiter: Annotated[
        Optional[str],
        typer.Option(
            "--delimiter",
            metavar="CHAR",
            help="CSV input: the character between cells (tab for a tab). Default: whichever of , ; tab | "
            "makes the header's cells fields.",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        Optional[int],
        typer.Option(
            "--jobs", "-j", min=1, help="Worker processes. Default: every core.", show_default=False
        ),
    ] = None,
    summary_json: Annotated[
        Optional[Path],
        typer.Option("--summary-json", metavar="FILE", help="Also write the summary as JSON to FILE."),
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(
            "--report",
            metavar="FILE.html",
            help="Also write the summary as a page with pictures: per policy the funnel through its "
            "criteria, the patients each contested reading decides otherwise, the answers most missing.",
        ),
    ] = None,
    on: AsOfOption = None,
    rules: RulesOption = None,
) -> None:
    """Decide a whole cohort: one result line per input line and policy, in input order.

    Without --policy, a record that names its policy ("policy", a CSV or Parquet column) is
    decided for that policy only, and one that names none for every policy (the summary says
    how many); --policy all decides every record for every policy, --policy ID for that one.

    Each result is {"line", "patient", "policy", "reference", "decision", "robust", "possible",
    "stopped_by", "failed", "missing", "contested", "warnings", "edition"}: `stopped_by` the requirements
    that refuse the patient or leave the decision open ([] when eligible), `failed` every
    requirement not met (parts of parts too), `missing` the unknown fields that can still change
    the decision, `contested` the alternative readings of the policy text under which the
    decision would differ (as explain), `warnings` the domain assumptions the record
    contradicts, `edition` the edition of the policy that decided: of a family, the one in force
    on --as-of, else on the record's referral date, else today (a record dated before any
    edition is an error line). A line that is not a valid patient gives {"line", "error"} and the run goes on;
    nothing is dropped or reordered. CSV cells take the answers `ask` takes (choices in any case,
    yes/no/true/false, numbers, unknown). Parquet in and out needs the parquet extra: a row per
    patient, fields as dotted or struct columns; results as the same objects in columns
    (`llr-asp schema --output parquet`). Memory stays flat however long the input. A progress
    bar shows on a terminal; a summary (decisions, what stopped the patients, the fields most
    often missing, how many patients each contested reading decides, the bad lines) ends the
    run on stderr.

    Exit 0 when every line was decided; 1 when some lines were errors (every line is still
    written); 2 for unusable arguments or input (an unknown policy, a bad CSV header); 3 when a
    worker process died or failed (the run stops); 130 on Ctrl-C (the --out file is left as it
    was).
    """
    from ..core.errors import WorkerError
    from ..core.files import check_outputs, replaced
    from ..engines.batch import CHUNK, Summary, chunks, decide_chunks, default_jobs
    from ..formats.readers import read_csv, read_jsonl
    from ..views.terminal import summary_view

    with user_errors():
        ruleset = load_rules(rules)
        day = as_of(on)
        ruleset.check_selection(policy, day)
        targets = {"--out": Path(out)} if out != "-" else {}
        if summary_json is not None:
            targets["--summary-json"] = summary_json
        if report is not None:
            targets["--report"] = report
        check_outputs(None if source == "-" else Path(source), targets)
        cores = default_jobs()
        if jobs is not None and jobs > cores:
            note = f"--jobs {jobs} is more than the {cores} cores this process may use; using {cores}"
            typer.echo(f"llr-asp: note: {note}", err=True)
        workers = min(jobs or cores, cores)
        if input_format is InputFormat.auto:
            suffix = Path(source).suffix.lower()
            input_format = {".csv": InputFormat.csv, ".parquet": InputFormat.parquet}.get(
                suffix, InputFormat.jsonl
            )
        if delimiter is not None and input_format is not InputFormat.csv:
            raise UsageError("--delimiter goes with CSV input (a .csv file, or --input-format csv)")
        separator = named_delimiter(delimiter)
        if format is None:
            format = BatchFormat.parquet if out.lower().endswith(".parquet") else BatchFormat.jsonl
        rows = None
        if input_format is InputFormat.parquet:
            if source == "-":
                raise UsageError(
                    "Parquet is read from a file (its index is at the end): give the file's path"
                )
            rows, pieces = _arrow().read_parquet(Path(source), ruleset)
            stream = None
        else:
            stream = _open_input(source)
            if input_format is InputFormat.csv:
                lines = read_csv(stream, ruleset, separator)
            else:
                lines = read_jsonl(stream)
            pieces = chunks(lines, CHUNK)
        summary = Summary(ruleset)
        name = "stdin" if source == "-" else source
        results = decide_chunks(pieces, policy, rules, workers, name, day)
        output = _output(out, format)
        try:
            with (
                output as writer,
                _progress(stream, source, rows) as advance,
                _writing(format, writer, ruleset.digest) as write,
            ):
                last = 0
                for result in results:
                    summary.add(result)
                    write(result)
                    if result.line != last:
                        advance(result.line - last)
                        last = result.line
        except WorkerError as error:
            typer.echo(f"llr-asp: error: {error}", err=True)
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            hold_interrupts()  # a second Ctrl-C does not interrupt the ending of the first
            results.close()  # the workers are stopped (iterate_decisions' finally)
            sys.stdout.flush()
            said = interrupted("llr-asp: interrupted; the --out file, if any, is left as it was")
            raise typer.Exit(said) from None
        if summary_json is not None:
            with replaced(summary_json, "--summary-json") as written:
                written.write(json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n")
        if report is not None:
            from ..views.cohort_page import cohort_document

            with replaced(report, "--report") as written:
                written.write(cohort_document(summary, name))
    console(stderr=True).print(summary_view(summary))
    if summary.error_count:
        raise typer.Exit(1)


def _open_input(source: str) -> Any:
    if source == "-":
        if sys.stdin is None:
            raise UsageError("standard input is closed; give the input file, or pipe the cohort in")
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as error:
        raise UsageError(
            f"{source}: cannot read the input ({error.strerror}); give a JSON Lines or CSV file"
        ) from None


def _arrow() -> Any:
    """llr_asp.formats.arrow, or a UsageError saying how to install it."""
    try:
        import pyarrow

        from ..formats import arrow
    except ImportError:
        raise UsageError(
            "Parquet needs pyarrow: pip install 'llr-asp[parquet]' (or --format jsonl or csv)"
        ) from None
    # the C library's allocator gives freed buffers back: with Arrow's default (mimalloc) the main
    # process of a Parquet batch run peaked some 50 MB higher (benchmarks/bench_arrow.py)
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return arrow


def _output(out: str, format: BatchFormat) -> Any:
    """Where results go: a file replaced when the run ends well, or standard output."""
    from ..core.files import replaced, replaced_bytes

    if format is BatchFormat.parquet:
        _arrow()  # the extra is missing: say so before anything runs
        if out != "-":
            return replaced_bytes(Path(out), "--out")
        if sys.stdout.isatty():
            raise UsageError("Parquet is binary, not for a terminal: give --out FILE.parquet, or pipe it")
        return contextlib.nullcontext(sys.stdout.buffer)
    if out != "-":
        return replaced(Path(out), "--out", "" if format is BatchFormat.csv else None)
    return contextlib.nullcontext(sys.stdout)


@contextlib.contextmanager
def _writing(format: BatchFormat, out: Any, digest: str) -> Iterator[Any]:
    """A function that writes one result; the output is ended when the block ends."""
    if format is BatchFormat.parquet:
        with _arrow().ParquetOutput(out, digest) as parquet:
            yield parquet.write
    else:
        from ..formats.results import csv_writer, jsonl_writer

        yield csv_writer(out) if format is BatchFormat.csv else jsonl_writer(out)


@contextlib.contextmanager
def _progress(stream: Any, source: str, rows: int | None = None) -> Iterator[Any]:
    """A Rich progress bar on stderr when it is a terminal; otherwise nothing. It follows the
    position in the input file, or the count of `rows` when given (Parquet)."""
    if not sys.stderr.isatty():
        yield lambda lines: None
        return

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    size = rows if rows is not None else os.fstat(stream.fileno()).st_size if source != "-" else None
    columns = [
        TextColumn("{task.fields[lines]:>9,} lines"),
        BarColumn(),
        TextColumn("{task.fields[rate]:>7,.0f} lines/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console(stderr=True), transient=False) as progress:
        task = progress.add_task("batch", total=size or None, lines=0, rate=0.0)
        count = 0

        def advance(lines: int) -> None:
            nonlocal count
            count += lines
            elapsed = progress.tasks[0].elapsed or 0
            position = count if rows is not None else stream.tell() if size else None
            progress.update(task, completed=position, lines=count, rate=count / elapsed if elapsed else 0.0)

        yield advance


class SchemaInput(str, enum.Enum):
    json = "json"
    parquet = "parquet"


class SchemaOutput(str, enum.Enum):
    parquet = "parquet"


@app.command()
def schema(
    input: Annotated[
        SchemaInput,
        typer.Option(
            "--input", help="json: the JSON Schema of a patient record; parquet: a cohort file's columns."
        ),
    ] = SchemaInput.json,
    output: Annotated[
        Optional[SchemaOutput],
        typer.Option(
            "--output", help="parquet: the columns of `batch --out FILE.parquet` instead.", show_default=False
        ),
    ] = None,
    rules: RulesOption = None,
) -> None:
    """Print the JSON Schema of a patient record, derived from the rules' field declarations;
    or the columns of a Parquet cohort (--input parquet) or of Parquet results (--output parquet)."""
    with user_errors():
        ruleset = load_rules(rules)
        if output is not None:
            print_json(_arrow().output_description())
        elif input is SchemaInput.parquet:
            print_json(_arrow().input_description(ruleset))
        else:
            print_json(json_schema(ruleset))
