"""The policy analysts' commands and the CI gate: policies, analyze, report, diff and check."""

from __future__ import annotations

import contextlib
import datetime
import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.errors import UsageError
from ..core.ruleset import default_rules_dir, load_rules
from .app import (
    Format,
    FormatOption,
    RulesOption,
    app,
    console,
    print_json,
    user_errors,
)

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
    from ..core.files import write_witnesses
    from ..views.wording import counted

    written = write_witnesses(directory, "--witnesses", named)
    typer.echo(f"llr-asp: wrote {counted(len(written), 'witness', 'witnesses')} to {directory}", err=True)


@app.command()
def policies(format: FormatOption = Format.text, rules: RulesOption = None) -> None:
    """List the policies with reference, title and review date; flag reviews that are due.

    A policy with editions (edition/3) is listed as its family: each edition with the days it
    is in force, earliest first (`--policy FAMILY` picks the one in force on the date)."""
    today = datetime.date.today()
    with user_errors():
        ruleset = load_rules(rules)
    if format is Format.json:
        print_json([p.to_json(today) for p in ruleset.editions()])
        return
    from ..views.terminal import policies_table

    console().print(policies_table(ruleset, today))


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
    (contested_reading) and each pair or three of clinical readings that only together do so
    (contested_combination), reviews due, and rule hygiene (declarations that are wrong or
    unused, with file and line). Exit 0 when the analysis ran, whatever it found (`llr-asp
    check` is the gate that fails); 2 when the rules cannot be read.
    """
    from ..engines.analysis import analyze as run_analysis

    with user_errors():
        ruleset, findings = run_analysis(rules, policy)
        shown = [(f.file_name(n), f.witness) for n, f in enumerate(findings, 1) if f.witness is not None]
        _save_witnesses(witnesses, shown)
    if format is Format.json:
        print_json(
            {"rules": ruleset.digest if ruleset else None, "findings": [f.to_json() for f in findings]}
        )
        return
    from ..views.terminal import findings_view

    console().print(findings_view(findings), crop=False)  # witnesses whole, to copy


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
    from ..core.files import replaced
    from ..views.policy_page import REPORT_SUFFIX, report_files

    with user_errors():
        ruleset = load_rules(rules)
        chosen = ruleset.select(policy)
        if len(chosen) != 1:
            raise UsageError("report takes one policy: give its id (see `llr-asp policies`)")
        if not server.startswith(("http://", "https://")):
            raise UsageError(f"--server {server}: give the service's address, such as http://127.0.0.1:8000")
        if format is ReportFormat.markdown and out == "-":
            raise UsageError("--format markdown writes the tree's SVG beside it: give --out FILE.md")
        target = Path(out or f"{chosen[0].id}.{REPORT_SUFFIX[format.value]}")
        files = report_files(ruleset, chosen[0].id, format.value, target, server)
        for path, text in files.items():
            if out == "-":
                sys.stdout.write(text)
                continue
            with replaced(path, "--out") as file:
                file.write(text)
            typer.echo(f"llr-asp: wrote {path}", err=True)


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
    cohort: Annotated[
        Optional[str],
        typer.Option(
            "--cohort",
            metavar="FILE",
            help="With OLD NEW (two policies or editions): decide every patient of FILE (JSON Lines; "
            "CSV or Parquet by a .csv or .parquet suffix; - for stdin) under both, and count those "
            "decided otherwise.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            metavar="FILE",
            help="With --cohort: also list each patient decided otherwise, as JSON Lines (line, patient, "
            "class, requirements, old, new).",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Optional[Path],
        typer.Option(
            "--report",
            metavar="FILE.html",
            help="With --cohort: also write the changes as one self-contained HTML page (the classes "
            "drawn as bars, each with the requirements that changed it).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        Optional[int], typer.Option("--jobs", "-j", min=1, help="With --cohort: worker processes.")
    ] = None,
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

    `llr-asp diff hip-resurfacing hip-resurfacing-2027 --cohort patients.jsonl` decides a real
    cohort under both (editions, or any two policies of one rule set), streamed as `batch`
    streams it, and counts the patients decided otherwise by class: newly eligible, newly
    refused, newly undetermined, newly contested, newly robust, with the requirements that
    changed each (`--out FILE` lists them).
    """
    from ..engines import difference

    names = policies or []
    if cohort is not None or out is not None or report is not None:
        _diff_cohort(names, cohort, out, report, jobs, format, rules)
        return
    with user_errors():
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
        print_json(comparison.to_json())
        return
    if format is DiffFormat.svg:
        from ..views.charts import differences

        sys.stdout.write(differences(comparison) + "\n")
        return
    from ..views.terminal import comparison_view

    console().print(comparison_view(comparison), crop=False)  # witnesses whole, to copy


def _diff_cohort(
    names: list[str],
    cohort: str | None,
    out: Path | None,
    report: Path | None,
    jobs: int | None,
    format: Any,
    rules: Path | None,
) -> None:
    """`diff OLD NEW --cohort FILE [--out FILE] [--report FILE.html]`: the cohort decided under
    both, compared."""
    from ..core.files import check_outputs, replaced
    from ..engines.batch import CHUNK, chunks, decide_chunks, default_jobs
    from ..engines.cohort_difference import CohortDifference, compared
    from ..formats.readers import read_csv, read_jsonl
    from .cohort import _arrow, _open_input

    with user_errors():
        if cohort is None:
            raise UsageError(f"{'--out' if out is not None else '--report'} goes with --cohort FILE")
        if len(names) != 2:
            raise UsageError("give the two policies or editions to compare: diff OLD NEW --cohort FILE")
        if format is not DiffFormat.text and format is not DiffFormat.json:
            raise UsageError("diff --cohort writes text or json")
        ruleset = load_rules(rules)
        old, new = (ruleset.policies.get(n) for n in names)
        if old is None or new is None:
            unknown = names[0] if old is None else names[1]
            raise UsageError(f'unknown policy "{unknown}"; choose one of {", ".join(ruleset.policies)}')
        if old.id == new.id:
            raise UsageError("OLD and NEW are the same policy: give two")
        targets = {name: path for name, path in (("--out", out), ("--report", report)) if path}
        check_outputs(None if cohort == "-" else Path(cohort), targets)
        if cohort.lower().endswith(".parquet"):
            pieces = _arrow().read_parquet(Path(cohort), ruleset)[1]
        else:
            stream = _open_input(cohort)
            lines = read_csv(stream, ruleset, ",") if cohort.lower().endswith(".csv") else read_jsonl(stream)
            pieces = chunks(lines, CHUNK)
        workers = min(jobs or default_jobs(), default_jobs())
        source = "stdin" if cohort == "-" else cohort
        results = decide_chunks(pieces, None, rules, workers, source, None, (old.id, new.id))
        summary = CohortDifference(old, new, ruleset.digest)
        with replaced(out, "--out") if out else contextlib.nullcontext() as listed:
            for item in compared(results, old, new):
                summary.add(item)
                if item is not None and listed is not None:
                    listed.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
        if report is not None:
            from ..views.cohort_page import difference_document

            with replaced(report, "--report") as written:
                written.write(difference_document(summary, source))
    if format is DiffFormat.json:
        print_json(summary.to_json())
        return
    from ..views.terminal import cohort_difference_view

    console().print(cohort_difference_view(summary, source))


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
    from ..engines.check import BASELINE, read_baseline, run_check, write_baseline
    from ..views.wording import counted

    with user_errors():
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
        print_json(report.to_json())
    elif format is CheckFormat.junit:
        from ..formats.junit_sarif import junit_xml

        sys.stdout.write(junit_xml(report))
    elif format is CheckFormat.sarif:
        from ..formats.junit_sarif import sarif

        print_json(sarif(report))
    else:
        from ..views.terminal import check_view

        console().print(check_view(report))
    if not report.passed:
        raise typer.Exit(1)
