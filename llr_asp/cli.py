"""The `llr-asp` command: a thin shell over the library. Only this module prints and exits."""

from __future__ import annotations

import contextlib
import datetime
import enum
import errno
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import LlrError, UsageError, printable
from .patient import json_schema
from .readers import read_patient
from .reasoner import Reasoner
from .ruleset import default_rules_dir, load_rules

HELP = (
    "Eligibility reasoner for NHS Leicester, Leicestershire and Rutland ICB commissioning "
    "policies (hip resurfacing ARP 55, knee resurfacing ARP 60). The policies are Answer Set "
    "Programming rules; clingo derives each decision with the reasons for it."
)
CONTEXT = {"help_option_names": ["-h", "--help"]}


class OneLineErrors(typer.core.TyperGroup):
    """The command group, whose usage errors (an unknown option, a bad --format value, a missing
    argument, a misspelt command) are one line on stderr and exit code 2, as every other error
    is, rather than click's boxed usage text; Ctrl-C is one line and exit code 130."""

    def main(self, *args: Any, **options: Any) -> Any:
        click = sys.modules[typer.BadParameter.__module__]  # click's exceptions, as typer carries them
        standalone = options.get("standalone_mode", True)
        options["standalone_mode"] = False
        try:
            code = super().main(*args, **options)
        except getattr(click, "NoArgsIsHelpError", ()) as error:  # `llr-asp` alone: the help
            shown = error.ctx.get_help()  # (typer prints it, and gives back nothing)
            if shown:
                typer.echo(shown, err=True)
            code = 2
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "llr-asp"
            message = error.format_message().rstrip(".")
            typer.echo(f"llr-asp: error: {printable(message)} (see `{where} -h`)", err=True)
            code = error.exit_code
        except click.ClickException as error:
            typer.echo(f"llr-asp: error: {printable(error.format_message())}", err=True)
            code = error.exit_code
        except typer.Abort:  # end of input at a prompt
            code = _interrupted()
        if code == INTERRUPTED and not _said["interrupted"]:  # Ctrl-C in a command: typer's Exit(130)
            code = _interrupted()
        if not standalone:
            return code
        sys.exit(code if isinstance(code, int) else 0)


INTERRUPTED = 130
_said = {"interrupted": False}


def _hold_interrupts() -> None:
    """Ignore Ctrl-C from now on: the run is ending already."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _interrupted(message: str = "llr-asp: interrupted") -> int:
    """Say once that the run was interrupted (Ctrl-C); the exit code for it."""
    _hold_interrupts()
    if not _said["interrupted"]:
        typer.echo(message, err=True)
        _said["interrupted"] = True
    return INTERRUPTED


app = typer.Typer(
    name="llr-asp",
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)


def _show_version(asked: bool) -> None:
    if asked:
        from .install import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback(help=HELP)
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print llr-asp's version (and clingo's and Python's) and exit.",
        ),
    ] = False,
) -> None:
    """Options before the command."""


class Format(str, enum.Enum):
    text = "text"
    json = "json"


RulesOption = Annotated[
    Optional[Path],
    typer.Option(
        "--rules",
        metavar="DIR",
        help="Use the rule set (.lp files) in DIR instead of the bundled one.",
        show_default=False,
    ),
]
PatientArgument = Annotated[
    str,
    typer.Argument(metavar="PATIENT.json", help="The patient record (JSON), or - to read standard input."),
]
RecordPolicyOption = Annotated[
    Optional[str],
    typer.Option(
        "--policy",
        "-p",
        help='Policy id (see `llr-asp policies`) or "all". Default: the record\'s "policy", else all.',
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="text for people, json for programs.")]


class ExplainFormat(str, enum.Enum):
    text = "text"
    json = "json"
    letter = "letter"
    markdown = "markdown"
    fhir = "fhir"


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the core's errors into one line on stderr and exit code 2."""
    try:
        yield
    except LlrError as error:
        typer.echo(f"llr-asp: error: {error}", err=True)
        raise typer.Exit(2) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _print_per_policy(objects: list[dict[str, Any]]) -> None:
    """One object for one policy, an array for several (DESIGN §6)."""
    from .decision import per_policy

    _print_json(per_policy(objects))


def _console(stderr: bool = False) -> Any:
    """A console for people: wrapped at the terminal's width (or $COLUMNS), or, written to a file
    or a pipe, never wrapped (a line is as long as its text; the reader's tool wraps it, or not)."""
    from rich.console import Console  # imported only when people read the output

    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:  # COLUMNS: a width asked for
        return Console(highlight=False, stderr=stderr, width=UNWRAPPED)
    if console.width < MIN_WIDTH:  # COLUMNS=0 or 2 would print nothing, or a letter a line
        console = Console(highlight=False, stderr=stderr, width=80)
    return console


MIN_WIDTH = 40


WitnessesOption = Annotated[
    Optional[Path],
    typer.Option(
        "--witnesses",
        metavar="DIR",
        help="Also write each witness to DIR as a patient record, named by its number and what it "
        "shows (01-exclusion_outside_criteria-hip-resurfacing-no_contraindication.json), to run "
        "with `llr-asp explain`.",
        show_default=False,
    ),
]


def _save_witnesses(directory: Path | None, named: list[tuple[str, Any]]) -> None:
    """Write the witnesses to `directory` (--witnesses), saying where on stderr."""
    if directory is None:
        return
    from .outputs import write_witnesses
    from .wording import counted

    written = write_witnesses(directory, "--witnesses", named)
    typer.echo(f"llr-asp: wrote {counted(len(written), 'witness', 'witnesses')} to {directory}", err=True)


UNWRAPPED = 100_000  # the width of a file or a pipe: wider than any line llr-asp writes


EVERY_POLICY = (
    "The record names no policy and none was given (--policy), so every policy was evaluated: "
    "read the one for the procedure requested."
)


@app.command()
def explain(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    format: Annotated[
        ExplainFormat,
        typer.Option(
            "--format",
            "-f",
            help="text for people; json for programs; letter: plain text to paste into a clinical "
            "record or a referral (dated, in words, no markup); markdown: the same letter as Markdown; "
            "fhir: a QuestionnaireResponse with the answers and the decisions.",
        ),
    ] = ExplainFormat.text,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Text, markdown: also expand requirements that are not a reason for the result."
        ),
    ] = False,
    rules: RulesOption = None,
) -> None:
    """Decide whether a patient is eligible, and show why or why not.

    Prints the decision (eligible, not eligible, undetermined) for each policy, then a
    justification tree: every requirement met (✔), not met (✘) or unknown (?), the policy
    sentence it encodes, any interpretation the encoding makes, and the patient's values it used.
    An undetermined decision lists the answers still needed. A decision that would differ under
    another reasonable reading of the damaged policy text says so first, and names the reading
    (⚑); a record that contradicts a domain assumption gets a warning.
    """
    with _user_errors():
        reasoner = Reasoner.load(rules)
        ruleset = reasoner.rules
        record = read_patient(patient, ruleset)
        decisions = reasoner.decide(record, reasoner.chosen(record, policy))
    if format is ExplainFormat.json:
        _print_per_policy([d.to_json() for d in decisions])
        return
    if format is ExplainFormat.fhir:
        from .fhir import decision_response

        _print_json(decision_response(record, decisions, ruleset))
        return
    unnamed = EVERY_POLICY if policy is None and record.policy is None and len(decisions) > 1 else None
    if format is ExplainFormat.letter:
        from .letter import plain_letter

        sys.stdout.write(plain_letter(decisions, ruleset, datetime.date.today(), full, unnamed))
        return
    if format is ExplainFormat.markdown:
        from .markdown import decision_markdown, escape

        preface = f"*{escape(unnamed)}*\n\n" if unnamed else ""
        sys.stdout.write(preface + "\n---\n\n".join(decision_markdown(d, ruleset, full) for d in decisions))
        return
    from rich.text import Text

    from .render import decision_view, print_all

    views: list[Any] = [Text(unnamed, style="bold")] if unnamed else []
    print_all(_console(), [*views, *(decision_view(d, ruleset, full) for d in decisions)])


@app.command()
def whatif(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="List at most N sets of changes.")] = 5,
    format: FormatOption = Format.text,
    rules: RulesOption = None,
) -> None:
    """What would have to change for the patient to be eligible.

    Lists every smallest set of changes (fewest fields touched) that makes the patient eligible,
    up to --limit, each value the nearest that qualifies (months -> 6, the lowest grade that
    qualifies). An unknown field may be set; a known immutable field (sex, knee compartments)
    never changes. When no change can help, says which requirement cannot be met and why.
    """
    from .whatif import WhatIfSearch
    from .whatif import whatif as find

    with _user_errors():
        reasoner = Reasoner.load(rules)
        record = read_patient(patient, reasoner.rules)
        search = WhatIfSearch.load(rules)
        answers = [find(reasoner, search, record, p, limit) for p in reasoner.chosen(record, policy)]
    if format is Format.json:
        _print_per_policy([a.to_json() for a in answers])
        return
    from .render import print_all, whatif_view

    print_all(_console(), (whatif_view(a, reasoner.rules) for a in answers))


ReaskOption = Annotated[
    bool,
    typer.Option(
        "--reask-unknown",
        help="Ask again the fields the record gives as null (not known) that are still needed; "
        "without it, a null answer is never asked again.",
    ),
]


@app.command("next")
def next_question(
    patient: PatientArgument,
    policy: RecordPolicyOption = None,
    format: FormatOption = Format.text,
    reask: ReaskOption = False,
    rules: RulesOption = None,
) -> None:
    """The next question to ask about the patient: none once nothing can change the decision.

    Asks only a field the record does not hold whose answer can still change the decision
    (`missing`), or settle a decision that rests on a contested reading of the policy text
    (`to_settle`); a field present as null was asked and is not known, and is asked again only
    with --reask-unknown. Of those, it picks the one whose possible answers leave the fewest
    questions still to ask under any reading, so the decision settles soonest. `llr-asp ask`
    puts these questions to a clinician one by one.
    """
    from .interview import Interviewer

    with _user_errors():
        interviewer = Interviewer.load(rules)
        record = read_patient(patient, interviewer.rules)
        again = record.answered - set(record.values) if reask else ()
        steps = interviewer.next(record, interviewer.chosen(record, policy), again)
    if format is Format.json:
        _print_per_policy([s.to_json() for s in steps])
        return
    from .render import next_view, print_all

    print_all(_console(), (next_view(s) for s in steps))


@app.command()
def ask(
    policy: RecordPolicyOption = None,
    start: Annotated[
        Optional[Path],
        typer.Option(
            "--from",
            metavar="PARTIAL.json",
            help="Start from this patient record: its answers are not asked again.",
            show_default=False,
        ),
    ] = None,
    save: Annotated[
        Optional[Path],
        typer.Option(
            "--save",
            metavar="FILE",
            help="Write the answers to FILE as a patient record, after every answer.",
            show_default=False,
        ),
    ] = None,
    reask: ReaskOption = False,
    rules: RulesOption = None,
) -> None:
    """Ask a clinician only the questions that matter, then show the decision.

    One question at a time, in the clinician's words with its choices; "unknown" is always an
    answer, and an answer that cannot be used is asked again with the reason. Questions come
    from `llr-asp next`, until every policy is decided or nothing useful is left to ask. Ends
    with the justification tree and, unless eligible, what would have to change (`whatif`).
    Prompts go to stderr, the result to stdout. Piped input gives one answer per line, so a
    session can be scripted; when the input ends first, the answers so far are kept (--save)
    and the exit code is 1.
    """
    from rich.text import Text

    from .interview import Interviewer
    from .patient import parse, read_text, validate
    from .questionnaire import Questionnaire, line_reader, terminal_reader
    from .readers import record
    from .render import decision_view, print_all, whatif_view
    from .whatif import WhatIfSearch, weighed

    prompts = _console(stderr=True)
    finished = True
    with _user_errors():
        interviewer = Interviewer.load(rules)
        document: dict[str, Any] = {} if start is None else parse(read_text(str(start)), str(start))
        document = record(document, interviewer.rules, str(start))  # a FHIR response: its record
        begun = validate(document, interviewer.rules, str(start))  # a record, or one line saying why not
        chosen = interviewer.policies(policy or begun.policy)
        if len(chosen) == 1:
            document.setdefault("policy", chosen[0].id)
        session = Questionnaire(interviewer, chosen, document, str(start or save or "questionnaire"), save)
        if reask:
            session.reask = set(session.patient.answered - set(session.patient.values))
        if sys.stdin is None:
            raise UsageError("standard input is closed: ask reads the answers there (pipe them in)")
        read = terminal_reader(prompts) if sys.stdin.isatty() else line_reader(prompts, sys.stdin)
        try:
            session.run(prompts, read)
        except (EOFError, KeyboardInterrupt):
            finished = False
    search = WhatIfSearch.load(rules)
    views: list[Any] = []
    for decision in interviewer.decide(session.patient, chosen):
        views.append(decision_view(decision, interviewer.rules))
        if decision.decision != "eligible":
            views.append(whatif_view(weighed(search, session.patient, decision), interviewer.rules))
    print_all(_console(), views)
    if save is not None:
        prompts.print(Text(f"Answers saved to {save}", style="dim"), soft_wrap=True)
    if not finished:
        again = f" (go on with --from {save})" if save else " (use --save to keep the answers)"
        ended = Text(f"The answers ended before the questionnaire did{again}.", style="bold yellow")
        prompts.print(ended, soft_wrap=True)
        raise typer.Exit(1)


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
        str, typer.Option("--policy", "-p", help='Policy id (see `llr-asp policies`) or "all".')
    ] = "all",
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
    rules: RulesOption = None,
) -> None:
    """Decide a whole cohort: one result line per input line and policy, in input order.

    Each result is {"line", "patient", "policy", "reference", "decision", "robust", "possible",
    "stopped_by", "failed", "missing", "contested", "warnings"}: `stopped_by` the requirements
    that refuse the patient or leave the decision open ([] when eligible), `failed` every
    requirement not met (parts of parts too), `missing` the unknown fields that can still change
    the decision, `contested` the alternative readings of the policy text under which the
    decision would differ (as explain), `warnings` the domain assumptions the record
    contradicts. A line that is not a valid patient gives {"line", "error"} and the run goes on;
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
    from .batch import CHUNK, Summary, chunks, decide_chunks, default_jobs, read_csv, read_jsonl
    from .errors import WorkerError
    from .outputs import check_target, replaced, same_file
    from .render import summary_view

    with _user_errors():
        ruleset = load_rules(rules)
        ruleset.select(policy)
        targets = {"--out": Path(out)} if out != "-" else {}
        if summary_json is not None:
            targets["--summary-json"] = summary_json
        if report is not None:
            targets["--report"] = report
        for option, target in targets.items():
            check_target(target, option)
            if source != "-" and same_file(Path(source), target):
                raise UsageError(f"{option} {target} is the input file: choose another path, or it is lost")
        for (one, first), (other, second) in itertools.combinations(targets.items(), 2):
            if same_file(first, second):
                raise UsageError(f"{other} {second} is the {one} file: choose another path")
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
        separator = _delimiter(delimiter)
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
        results = decide_chunks(pieces, policy, rules, workers, name)
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
            _hold_interrupts()  # a second Ctrl-C does not interrupt the ending of the first
            results.close()  # the workers are stopped (iterate_decisions' finally)
            sys.stdout.flush()
            said = _interrupted("llr-asp: interrupted; the --out file, if any, is left as it was")
            raise typer.Exit(said) from None
        if summary_json is not None:
            with replaced(summary_json, "--summary-json") as written:
                written.write(json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n")
        if report is not None:
            from .cohort_report import cohort_document

            with replaced(report, "--report") as written:
                written.write(cohort_document(summary, name))
    _console(stderr=True).print(summary_view(summary))
    if summary.error_count:
        raise typer.Exit(1)


def _delimiter(given: str | None) -> str | None:
    """The CSV delimiter --delimiter names: one character, or `tab`."""
    if given is None:
        return None
    chosen = "\t" if given in ("tab", "\\t") else given
    if len(chosen) != 1 or chosen in ('"', "\r", "\n") or chosen.isalnum():
        raise UsageError(f"--delimiter {given!r}: give one character such as , or ; (tab for a tab)")
    return chosen


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
    """llr_asp.arrow, or a UsageError saying how to install it."""
    try:
        import pyarrow

        from . import arrow
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
    from .outputs import replaced, replaced_bytes

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
        yield _csv_writer(out) if format is BatchFormat.csv else _jsonl_writer(out)


def _jsonl_writer(out: Any) -> Any:
    encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps would build one a line

    def write(result: Any) -> None:
        out.write(encode(result.to_json()) + "\n")

    return write


def _csv_writer(out: Any) -> Any:
    """CSV rows; a cell that a spreadsheet would run as a formula (it starts with =, +, -, @, a
    tab or a carriage return: OWASP's list) is written with a leading ' so that it stays text."""
    import csv

    writer = csv.writer(out)
    columns = [
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
    ]
    writer.writerow(columns)

    def write(result: Any) -> None:
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
        writer.writerow([_inert(row.get(c, "")) for c in columns])

    return write


def _inert(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


@contextlib.contextmanager
def _progress(stream: Any, source: str, rows: int | None = None) -> Iterator[Any]:
    """A Rich progress bar on stderr when it is a terminal; otherwise nothing. It follows the
    position in the input file, or the count of `rows` when given (Parquet)."""
    if not sys.stderr.isatty():
        yield lambda lines: None
        return
    import os

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    size = rows if rows is not None else os.fstat(stream.fileno()).st_size if source != "-" else None
    columns = [
        TextColumn("{task.fields[lines]:>9,} lines"),
        BarColumn(),
        TextColumn("{task.fields[rate]:>7,.0f} lines/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=_console(stderr=True), transient=False) as progress:
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
    with _user_errors():
        ruleset = load_rules(rules)
        if output is not None:
            _print_json(_arrow().output_description())
        elif input is SchemaInput.parquet:
            _print_json(_arrow().input_description(ruleset))
        else:
            _print_json(json_schema(ruleset))


@app.command()
def policies(format: FormatOption = Format.text, rules: RulesOption = None) -> None:
    """List the policies with reference, title and review date; flag reviews that are due."""
    today = datetime.date.today()
    with _user_errors():
        ruleset = load_rules(rules)
    if format is Format.json:
        _print_json([p.to_json(today) for p in ruleset.policies.values()])
        return
    from .render import policies_table

    _console().print(policies_table(ruleset, today))


@app.command()
def analyze(
    policy: Annotated[
        str, typer.Option("--policy", "-p", help='Policy id (see `llr-asp policies`) or "all".')
    ] = "all",
    format: FormatOption = Format.text,
    witnesses: WitnessesOption = None,
    rules: RulesOption = None,
) -> None:
    """Search every possible patient for defects of the policies and their rules.

    Reports, each with a witness patient that `llr-asp explain` shows it on (--witnesses DIR
    saves them as files): exclusions from background text that refuse patients who meet every
    criterion (exclusion_outside_criteria), dead and redundant routes, requirements never or
    always met, patients with two decisions or none, the text defects and interpretations
    recorded in the rules, each contested reading with the patients it decides otherwise
    (contested_reading) and each pair of clinical readings that only together do so
    (contested_combination), reviews due, and rule hygiene (declarations that are wrong or
    unused, with file and line). Exit 0 when the analysis ran, whatever it found (`llr-asp
    check` is the gate that fails); 2 when the rules cannot be read.
    """
    from .analysis import analyze as run_analysis

    with _user_errors():
        ruleset, findings = run_analysis(rules, policy)
        shown = [(f.file_name(n), f.witness) for n, f in enumerate(findings, 1) if f.witness is not None]
        _save_witnesses(witnesses, shown)
    if format is Format.json:
        _print_json(
            {"rules": ruleset.digest if ruleset else None, "findings": [f.to_json() for f in findings]}
        )
        return
    from .render import findings_view

    _console().print(findings_view(findings), crop=False)  # witnesses whole, to copy


class ReportFormat(str, enum.Enum):
    html = "html"
    markdown = "markdown"
    dot = "dot"
    svg = "svg"


@app.command()
def report(
    policy: Annotated[str, typer.Argument(metavar="POLICY", help="The policy id (see `llr-asp policies`).")],
    format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            "-f",
            help="html: one self-contained page; markdown: a Markdown file with the tree as an SVG file "
            "beside it; dot: the requirement tree as Graphviz source; svg: the tree as a picture.",
        ),
    ] = ReportFormat.html,
    out: Annotated[
        Optional[str],
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Where to write it (default: POLICY.html, .md, .dot or .svg here); - for stdout "
            "(not with markdown).",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str,
        typer.Option(
            "--server", metavar="URL", help="The `llr-asp serve` whose page opens a witness's decision."
        ),
    ] = "http://127.0.0.1:8000",
    rules: RulesOption = None,
) -> None:
    """The policy as analysts read it: every sentence of the policy text with what encodes it.

    For each sentence, in order: the rules that encode it (requirement ids and the rules, quoted
    from the .lp files), its contested readings (adopted and alternatives, with the patients each
    decides otherwise), its interpretations and text defects, and the findings of `analyze`
    about it, each with a witness patient (a button opens its decision in `llr-asp serve`, and
    the record can be copied). A sentence nothing encodes says why (background, a definition,
    a heading), or that the rules give no reason. The requirement tree is drawn from the rules.
    """
    from .outputs import replaced

    with _user_errors():
        ruleset = load_rules(rules)
        chosen = ruleset.select(policy)
        if len(chosen) != 1:
            raise UsageError("report takes one policy: give its id (see `llr-asp policies`)")
        if not server.startswith(("http://", "https://")):
            raise UsageError(f"--server {server}: give the service's address, such as http://127.0.0.1:8000")
        if format is ReportFormat.markdown and out == "-":
            raise UsageError("--format markdown writes the tree's SVG beside it: give --out FILE.md")
        target = Path(out or f"{chosen[0].id}.{REPORT_SUFFIX[format]}")
        files = _report_files(ruleset, chosen[0].id, format, target, server)
        for path, text in files.items():
            if out == "-":
                sys.stdout.write(text)
                continue
            with replaced(path, "--out") as file:
                file.write(text)
            typer.echo(f"llr-asp: wrote {path}", err=True)


REPORT_SUFFIX = {"html": "html", "markdown": "md", "dot": "dot", "svg": "svg"}


def _report_files(
    ruleset: Any, policy: str, format: ReportFormat, target: Path, server: str
) -> dict[Path, str]:
    """The files `report` writes: the report, and for Markdown the tree's SVG beside it."""
    from .pictures import policy_dot, policy_tree

    if format is ReportFormat.dot:
        return {target: policy_dot(ruleset.policies[policy])}
    if format is ReportFormat.svg:
        return {target: policy_tree(ruleset.policies[policy]) + "\n"}
    from .literate import literate
    from .policy_report import html_document, markdown

    page = literate(ruleset, policy)
    if format is ReportFormat.html:
        return {target: html_document(page, server)}
    picture = target.with_name(f"{target.stem}-tree.svg")
    return {picture: policy_tree(page.policy) + "\n", target: markdown(page, picture.name)}


class DiffFormat(str, enum.Enum):
    text = "text"
    json = "json"
    svg = "svg"


@app.command()
def diff(
    policies: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="POLICY [POLICY_B]",
            help="Two policies to compare, or one policy to compare across two rule versions.",
            show_default=False,
        ),
    ] = None,
    rules_old: Annotated[
        Optional[Path], typer.Option("--rules-old", metavar="DIR", help="The rules before the change.")
    ] = None,
    rules_new: Annotated[
        Optional[Path],
        typer.Option(
            "--rules-new", metavar="DIR", help="The rules after the change (default: --rules, else bundled)."
        ),
    ] = None,
    against_git: Annotated[
        Optional[str],
        typer.Option(
            "--against-git", metavar="REV", help="Compare with the rules as they were at git revision REV."
        ),
    ] = None,
    reading: Annotated[
        Optional[str],
        typer.Option(
            "--reading",
            metavar="ID",
            help="Compare the policy as adopted with an alternative reading of its contested point ID "
            "(see `llr-asp analyze`).",
        ),
    ] = None,
    alternative: Annotated[
        Optional[str],
        typer.Option(
            "--alternative", metavar="ALT", help="With --reading: which alternative (default: its only one)."
        ),
    ] = None,
    format: Annotated[
        DiffFormat,
        typer.Option(
            "--format", "-f", help="text for people, json for programs, svg: the classes as a bar picture."
        ),
    ] = DiffFormat.text,
    witnesses: WitnessesOption = None,
    rules: RulesOption = None,
) -> None:
    """Show which patients two policies, or two versions or readings of a policy, decide differently.

    `llr-asp diff hip-resurfacing knee-resurfacing` compares two policies;
    `llr-asp diff hip-resurfacing --rules-old OLD --rules-new NEW` or
    `llr-asp diff hip-resurfacing --against-git HEAD` shows what a rule change does;
    `llr-asp diff hip-resurfacing --reading C4.cut-off` what an alternative reading of a damaged
    sentence would do. Each class of patients decided differently comes with the requirements
    that make the difference, the number of fully known patient profiles in it (numbers
    bucketed at the rules' thresholds) and a witness patient.
    """
    from . import difference

    names = policies or []
    with _user_errors():
        if alternative is not None and reading is None:
            raise UsageError("--alternative goes with --reading ID")
        if reading is not None:
            if len(names) != 1 or rules_old is not None or against_git is not None:
                raise UsageError("give one policy with --reading (diff POLICY --reading ID)")
            comparison = difference.compare_reading(
                load_rules(rules_new or rules), names[0], reading, alternative
            )
        elif len(names) == 2 and rules_old is None and against_git is None:
            comparison = difference.compare_policies(load_rules(rules_new or rules), *names)
        elif len(names) == 1 and (rules_old is None) != (against_git is None):
            new = rules_new or rules
            if against_git is not None:
                with difference.rules_at_revision(new or default_rules_dir(), against_git) as old:
                    sides = (f"at {against_git}", "now")
                    comparison = difference.compare_versions(old, new, names[0], sides)
            else:
                assert rules_old is not None
                comparison = difference.compare_versions(rules_old, new, names[0])
        else:
            raise UsageError(
                "give two policies (diff POLICY_A POLICY_B), or one policy with either "
                "--rules-old DIR, --against-git REV or --reading ID"
            )
        classes = enumerate(comparison.differences, 1)
        _save_witnesses(witnesses, [(d.file_name(n), d.witness) for n, d in classes])
    if format is DiffFormat.json:
        _print_json(comparison.to_json())
        return
    if format is DiffFormat.svg:
        from .charts import differences

        sys.stdout.write(differences(comparison) + "\n")
        return
    from .render import comparison_view

    _console().print(comparison_view(comparison), crop=False)  # witnesses whole, to copy


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on; 0.0.0.0 makes the service reachable from other machines."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="Server processes, each with its own warm reasoner."),
    ] = 1,
    cds_issuer: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cds-issuer", metavar="ISS", help="An EHR allowed to call the CDS Hooks services (repeat)."
        ),
    ] = None,
    cds_jwks: Annotated[
        Optional[Path],
        typer.Option(
            "--cds-jwks", metavar="FILE", help="The public keys (JWKS) of the allowed EHRs' tokens."
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="CDS Hooks without authentication: for local use only.")
    ] = False,
    public_url: Annotated[
        Optional[str],
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The base URL callers use (CDS Hooks tokens' aud, card links); default http://HOST:PORT.",
        ),
    ] = None,
    state_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Where used CDS Hooks token ids are kept for all workers (SQLite); default a per-user "
            "cache directory.",
        ),
    ] = None,
    redis: Annotated[
        Optional[str],
        typer.Option(
            "--redis",
            metavar="URL",
            help="Keep used token ids in Redis instead (several hosts behind one balancer).",
        ),
    ] = None,
    proxy: Annotated[
        Optional[list[str]],
        typer.Option(
            "--proxy",
            metavar="ADDR",
            help="A proxy whose X-Forwarded-* headers are believed (repeat); default 127.0.0.1.",
        ),
    ] = None,
    cors_origin: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cors-origin",
            metavar="ORIGIN",
            help="A browser origin allowed to call /cds-services, /fhir/ and /api/ (repeat; * for any); "
            "default none.",
        ),
    ] = None,
    max_header_kib: Annotated[
        int,
        typer.Option(
            "--max-header-kib", min=1, max=1024, help="Request line and headers, at most (400 past it)."
        ),
    ] = 16,
    max_batch_mib: Annotated[
        int,
        typer.Option(
            "--max-batch-mib", min=1, max=10240, help="A batch request's body, at most (413 past it)."
        ),
    ] = 100,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, max=100_000, help="Connections a worker takes (503 past it)."
        ),
    ] = 512,
    rules: RulesOption = None,
) -> None:
    """Serve the clinicians' page, the JSON API, FHIR and CDS Hooks (needs the web extra).

    The page (/) asks the questionnaire one question at a time, shows the decision with its
    reasons, what is missing and what would have to change, and gives the letter; it works
    without JavaScript and loads nothing from another origin. The API (/api/v1/…) answers with
    exactly the JSON of the CLI's --format json; its OpenAPI document is /openapi.json and
    interactive docs are /docs. FHIR R4 (/fhir/): the Questionnaire of each policy, adaptive
    ($next-question), and a QuestionnaireResponse wherever a record is taken. CDS Hooks
    (/cds-services): a card per order-select or order-sign call, for calls whose JWT is signed
    by an EHR given with --cds-issuer and --cds-jwks. /policies/{id}: the policy as analysts
    read it. Patient answers travel in request bodies only; nothing is kept or logged. Stop
    with Ctrl-C.
    """
    import importlib.util

    missing = [
        m for m in ("fastapi", "uvicorn", "jinja2", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        from .install import install_command

        typer.echo(
            f"llr-asp: error: serve needs the web extra ({', '.join(missing)} missing): "
            f"{install_command('web')}",
            err=True,
        )
        raise typer.Exit(2)
    import uvicorn

    from .web.app import RULES_ENV
    from .web.cds import ISSUERS_ENV, JWKS_ENV, NO_AUTH_ENV
    from .web.server import check_address, uvicorn_options
    from .web.settings import ENV, Settings

    with _user_errors():
        check_address(host, port)  # a port in use: one line here, not "serving" and uvicorn's error
        served = load_rules(rules)  # unusable rules: one line here, not a traceback in every worker
        if cds_jwks is not None and not cds_jwks.is_file():
            raise UsageError(f"--cds-jwks {cds_jwks}: no such file; give the JWKS of the allowed EHRs")
        settings = Settings(
            public_url=public_url or f"http://{host}:{port}",
            state_dir=state_dir.resolve() if state_dir is not None else None,
            redis=redis,
            proxies=tuple(proxy) if proxy else ("127.0.0.1",),
            cors_origins=tuple(cors_origin or ()),
            max_header_bytes=max_header_kib << 10,
            max_batch_body=max_batch_mib << 20,
            max_connections=max_connections,
        )
    os.environ[ENV] = settings.to_json()
    if rules is not None:
        os.environ[RULES_ENV] = str(rules.resolve())
    os.environ[ISSUERS_ENV] = ",".join(cds_issuer or [])
    if cds_jwks is not None:
        os.environ[JWKS_ENV] = str(cds_jwks.resolve())
    if no_auth:
        os.environ[NO_AUTH_ENV] = "1"
        typer.echo(
            "llr-asp: WARNING: --no-auth: CDS Hooks calls are not authenticated; local use only", err=True
        )
    elif not (cds_issuer and cds_jwks):
        typer.echo(
            "llr-asp: note: no --cds-issuer and --cds-jwks: every CDS Hooks call will be refused", err=True
        )
    uncoded = [p.reference for p in served.policies.values() if not served.procedures.get(p.id)]
    if uncoded:
        typer.echo(
            f"llr-asp: note: no order codes declared for {', '.join(uncoded)}: no CDS Hooks order will "
            "match (no card) until they are configured (procedure/4 in the rules: see rules/llr_icb.lp)",
            err=True,
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"llr-asp: note: listening on {host}: reachable from other machines", err=True)
        if public_url is None:
            typer.echo(
                f"llr-asp: note: no --public-url: CDS Hooks tokens must name {settings.public_url}", err=True
            )
    typer.echo(f"llr-asp: serving http://{host}:{port}/ (API docs at /docs); Ctrl-C stops", err=True)
    uvicorn.run(
        "llr_asp.web:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(settings),
    )


fhir_app = typer.Typer(
    name="fhir",
    help="FHIR R4 for clinical systems: the Questionnaire derived from the rules. A FHIR "
    "QuestionnaireResponse is accepted wherever a patient record is (explain, whatif, next, batch).",
    no_args_is_help=True,
)
app.add_typer(fhir_app)


@fhir_app.command("questionnaire")
def fhir_questionnaire(
    policy: Annotated[
        str,
        typer.Option("--policy", "-p", help='Policy id (see `llr-asp policies`) or "all" for every field.'),
    ] = "all",
    rules: RulesOption = None,
) -> None:
    """Print the FHIR R4 Questionnaire (SDC) of a policy, derived from the field declarations.

    One item per field the policy tests, linkId = the field's dotted path, text = the question;
    grades are choice items with their rank (itemWeight), numbers decimal or integer items
    with their range and unit. Fill it in and give the QuestionnaireResponse to explain.
    """
    from .fhir import questionnaire

    with _user_errors():
        ruleset = load_rules(rules)
        chosen = None if policy == "all" else ruleset.select(policy)[0]
    _print_json(questionnaire(ruleset, chosen))


class CheckFormat(str, enum.Enum):
    text = "text"
    json = "json"
    junit = "junit"
    sarif = "sarif"


@app.command()
def check(
    rules: RulesOption = None,
    examples: Annotated[
        Optional[Path],
        typer.Option(
            "--examples",
            metavar="DIR",
            help="Example patients with meta.expected outcomes. Default: examples/ beside the rules.",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        Optional[Path],
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="Acknowledged findings, each with a reason. Default: check-baseline.json in the rules.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        CheckFormat,
        typer.Option("--format", "-f", help="text for people; json, junit (XML) or sarif (2.1.0) for CI."),
    ] = CheckFormat.text,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline",
            help="Acknowledge every current finding in the baseline, keeping the reasons given; "
            "new entries get an empty reason, which fails until you write one.",
        ),
    ] = False,
) -> None:
    """The rule-consistency gate for CI: exit 0 clean, 1 on failures, 2 on unusable input.

    Checks that the rules load without clingo warnings, their declarations are complete and
    used, every example keeps its expected outcome, no patient gets two decisions or none, no
    new dead, never-met or redundant requirement appears, the examples cover every requirement
    (met by one, not met by another) at least as well as the baseline records, and every finding
    of `llr-asp analyze` is acknowledged in the baseline with a reason.
    """
    from .check import BASELINE, read_baseline, run_check, write_baseline
    from .wording import counted

    with _user_errors():
        rules_dir = rules or default_rules_dir()
        examples_dir = examples or rules_dir.resolve().parent / "examples"
        baseline_path = baseline or rules_dir / BASELINE
        report = run_check(rules_dir, examples_dir, baseline_path)
        if update_baseline:
            new = write_baseline(
                baseline_path, report.findings, report.coverage, read_baseline(baseline_path)
            )
            typer.echo(
                f"{baseline_path}: {counted(len(report.findings), 'finding')}, {len(new)} new "
                "(give each a reason)",
                err=True,
            )
            report = run_check(rules_dir, examples_dir, baseline_path)
    if format is CheckFormat.json:
        _print_json(report.to_json())
    elif format is CheckFormat.junit:
        from .report import junit_xml

        sys.stdout.write(junit_xml(report))
    elif format is CheckFormat.sarif:
        from .report import sarif

        _print_json(sarif(report))
    else:
        from .render import check_view

        _console().print(check_view(report))
    if not report.passed:
        raise typer.Exit(1)


def main() -> None:
    """The console script. Typer turns every command's signature into options when it starts,
    about 1.3 ms a command (14 ms for all); a call that names a command has only that one
    turned. Anything else (no command, --help, a misspelt command) gets the whole app.

    Output that cannot be written (standard output closed, a full disk, a closed pipe) ends
    the run with one line on stderr and exit code 1, never a traceback or a silent exit 0.
    """
    _guard_streams()
    named = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = [c for c in app.registered_commands if _command_name(c) == named]
    command: Any = app
    if chosen:
        command = typer.Typer(
            name=app.info.name,
            cls=OneLineErrors,
            add_completion=False,
            pretty_exceptions_enable=False,
            context_settings=CONTEXT,
        )
        command.callback(help=HELP)(lambda: None)  # a group still: argv names the command
        command.registered_commands = chosen
    code: Any = 0
    try:
        command(prog_name="llr-asp")
    except SystemExit as exit:  # every command ends here: typer runs click in standalone mode
        code = exit.code
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling (starting up, say)
        code = _interrupted()
    except OSError as error:  # a write that failed (click itself ends a closed pipe with exit 1)
        if error.errno not in WRITE_FAILURES:
            _unexpected(error)
        _cannot_write(error)
    except Exception as error:
        _unexpected(error)
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        _cannot_write(error)
    if code == INTERRUPTED:  # interrupted: end now, waiting for no thread (a worker pool's, say)
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    sys.exit(code)


def _guard_streams() -> None:
    """Standard output that cannot take every character (PYTHONIOENCODING=ascii) escapes it
    instead (✘ as \\u2718); closed standard output fails where it is written."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if sys.stdout is None:
        sys.stdout = _Closed()


class _Closed:
    """Standard output that was closed (`>&-`): writing to it fails as writing to any closed file."""

    def write(self, _: str) -> int:
        raise OSError(9, "standard output is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(9, "standard output is closed")


WRITE_FAILURES = {errno.EBADF, errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT}


def _unexpected(error: BaseException) -> None:
    """A fault of llr-asp itself: one line, and the traceback only when asked for."""
    if os.environ.get("LLR_ASP_DEBUG"):
        raise error
    sys.stderr.write(
        f"llr-asp: error: unexpected failure ({type(error).__name__}: {printable(str(error))[:200]}); "
        "please report it (LLR_ASP_DEBUG=1 shows the traceback)\n"
    )
    sys.stderr.flush()
    os._exit(70)


def _cannot_write(error: BaseException) -> None:
    reason = getattr(error, "strerror", None) or str(error)
    sys.stderr.write(f"llr-asp: error: cannot write the output ({reason}); check where it goes\n")
    sys.stderr.flush()
    os._exit(1)  # not sys.exit: flushing standard output again at exit would fail again


def _command_name(command: typer.models.CommandInfo) -> str:
    assert command.callback is not None
    return command.name or command.callback.__name__.replace("_", "-")
