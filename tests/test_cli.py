"""The command line as users meet it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp.cli import app

EXAMPLES = Path(__file__).parent.parent / "examples"
runner = CliRunner()


def test_explain_json_matches_the_contract() -> None:
    result = runner.invoke(
        app, ["explain", str(EXAMPLES / "refused-b-four-months.json"), "-p", "hip-resurfacing", "-f", "json"]
    )
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert set(out) == {
        "patient",
        "policy",
        "reference",
        "decision",
        "tree",
        "missing",
        "robust",
        "possible",
        "contested",
        "to_settle",
        "warnings",
        "conflicts",
        "filled",
        "urgent",
        "review",
        "edition",
        "rules",
    }
    # the shipped policies are undated: each its own family, in force always (DESIGN §5 Editions)
    assert out["edition"] == {
        "policy": "hip-resurfacing",
        "family": "hip-resurfacing",
        "in_force_from": None,
        "rules": out["rules"],
    }
    assert out["review"]["due"] == "2026" and out["review"]["status"] in ("current", "due", "overdue")
    assert (out["contested"], out["warnings"], out["to_settle"]) == ([], [], [])
    assert (out["conflicts"], out["filled"]) == ([], [])  # one source: the record
    assert (out["robust"], out["possible"]) == (True, ["not_eligible"])
    assert (out["patient"], out["policy"], out["reference"], out["decision"]) == (
        "refused-b-four-months",
        "hip-resurfacing",
        "ARP 55",
        "not_eligible",
    )
    assert len(out["rules"]) == 64
    tree = out["tree"]
    assert set(tree) == {"id", "status", "label", "text", "interpretation", "defects", "evidence", "children"}

    def nodes(node: dict) -> list[dict]:
        return [node, *(n for c in node["children"] for n in nodes(c))]

    by_id = {n["id"]: n for n in nodes(tree)}
    required = {"eligibility", "A", "B", "C", "C1", "C2", "C3", "C4", "C5", "C6", "no_contraindication"}
    assert required <= set(by_id)
    assert by_id["B.months"]["evidence"] == [{"field": "conservative.months", "value": 4, "test": ">= 6"}]
    assert by_id["B"]["text"].startswith("The patient has fully engaged with conservative measures")
    assert "cut off" in by_id["C4"]["interpretation"]


def test_all_policies_give_an_array_and_record_policy_is_default() -> None:
    both = runner.invoke(app, ["explain", str(EXAMPLES / "route-c1-pain.json"), "-f", "json"])
    assert [o["policy"] for o in json.loads(both.stdout)] == ["hip-resurfacing", "knee-resurfacing"]
    named = runner.invoke(app, ["explain", str(EXAMPLES / "refused-hip-woman-unknowns.json"), "-f", "json"])
    assert json.loads(named.stdout)["policy"] == "hip-resurfacing"


def test_explain_text_says_decision_reason_and_missing() -> None:
    result = runner.invoke(
        app, ["explain", str(EXAMPLES / "undetermined-pain-unknown.json"), "-p", "hip-resurfacing"]
    )
    assert result.exit_code == 0
    assert "UNDETERMINED" in result.stdout
    said = " ".join(result.stdout.split())
    assert "Pain: not known; the policy needs at least intense [pain.severity]" in said
    # the policy's caveat on the question still needed, and the review date in the headline
    assert "How severe is the patient's pain? [pain.severity]" in said
    assert "The policy names grades of pain (intense, severe) but does not define them" in said
    assert "Policy review date: 2026" in said
    assert "Still needed to decide:" in result.stdout
    assert "How severe is the patient's pain?" in result.stdout


def test_explain_reads_stdin() -> None:
    result = runner.invoke(
        app,
        ["explain", "-", "-p", "knee-resurfacing", "-f", "json"],
        input='{"knee": {"compartments_affected": 3}}',
    )
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert (out["patient"], out["decision"]) == ("stdin", "not_eligible")


def test_schema_is_valid_json_schema_from_the_fields() -> None:
    import jsonschema

    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["pain"]["properties"]["severity"]["enum"] == [
        "none",
        "mild",
        "moderate",
        "intense",
        "severe",
        None,
    ]
    assert schema["properties"]["conservative"]["properties"]["months"]["minimum"] == 0


def test_policies_lists_and_flags_review() -> None:
    text = runner.invoke(app, ["policies"])
    assert "ARP 55" in text.stdout and "ARP 60" in text.stdout
    out = json.loads(runner.invoke(app, ["policies", "-f", "json"]).stdout)
    assert {p["id"]: p["reference"] for p in out} == {
        "hip-resurfacing": "ARP 55",
        "knee-resurfacing": "ARP 60",
    }
    assert all(p["review"] == 2026 for p in out)


@pytest.mark.parametrize("command", [[], ["explain", "--help"], ["schema", "--help"], ["policies", "--help"]])
def test_help_explains(command: list[str]) -> None:
    result = runner.invoke(app, command or ["--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_bad_rules_directory_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policies", "--rules", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "rules directory not found" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", str(EXAMPLES / "eligible-despite-unknowns.json"), "--format", "json"],
        ["next", "--help"],
        ["explain"],  # a usage error names the command
        ["--help"],
        ["no-such-command"],
    ],
)
def test_console_script_behaves_as_the_whole_app(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() builds only the command named on the command line; nothing a user sees changes."""
    from llr_asp.cli import main

    whole = CliRunner().invoke(app, argv, prog_name="llr-asp")
    monkeypatch.setattr("sys.argv", ["llr-asp", *argv])
    with pytest.raises(SystemExit) as exit:
        main()
    captured = capsys.readouterr()
    assert exit.value.code == whole.exit_code
    assert captured.out + captured.err == whole.output


def test_the_review_date_is_current_due_or_overdue_as_the_year_goes() -> None:
    import datetime

    from llr_asp import load_rules

    hip = load_rules().policies["hip-resurfacing"]
    assert hip.review == 2026
    said = {year: hip.review_json(datetime.date(year, 6, 1)) for year in (2025, 2026, 2027)}
    assert said == {
        2025: {"due": "2026", "status": "current"},
        2026: {"due": "2026", "status": "due"},
        2027: {"due": "2026", "status": "overdue"},
    }
    assert hip.review_words(datetime.date(2027, 1, 1)) == "Policy review date: 2026 (overdue for review)"


def test_version_comes_from_the_package_metadata() -> None:
    import importlib.metadata

    import llr_asp

    installed = importlib.metadata.version("llr-asp")
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith(f"llr-asp {installed} (clingo ")
    assert llr_asp.__version__ == installed


@pytest.mark.parametrize(
    "args", [["-h"], ["explain", "-h"], ["batch", "-h"], ["fhir", "questionnaire", "-h"]]
)
def test_h_is_help(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "Usage: llr-asp" in result.stdout


@pytest.mark.parametrize(
    ("origin", "command"),
    [
        (
            {"url": "file:///home/gp/llr-asp", "dir_info": {"editable": True}},
            "pip install -e '/home/gp/llr-asp[web]'",
        ),
        ({"url": "file:///home/gp/llr-asp", "dir_info": {}}, "pip install '/home/gp/llr-asp[web]'"),
        (
            {"url": "file:///tmp/dist/llr_asp-0.1.0-py3-none-any.whl", "archive_info": {}},
            "pip install '/tmp/dist/llr_asp-0.1.0-py3-none-any.whl[web]'",
        ),
        (
            {
                "url": "https://example.org/icb/llr-asp.git",
                "vcs_info": {"vcs": "git", "requested_revision": "v0.1.0"},
            },
            "pip install 'llr-asp[web] @ git+https://example.org/icb/llr-asp.git@v0.1.0'",
        ),
        (
            {"url": "file://localhost/srv/llr-asp", "vcs_info": {"vcs": "git", "commit_id": "377bdff"}},
            "pip install 'llr-asp[web] @ git+file://localhost/srv/llr-asp@377bdff'",
        ),
        ({}, "pip install 'llr-asp[web]'"),
    ],
)
def test_the_install_hint_names_where_llr_asp_came_from(origin: dict, command: str) -> None:
    """`serve` without the web extra says how to add it to this installation: from a clone, a
    wheel or a repository URL, as pip recorded it (PEP 610)."""
    from llr_asp.cli.install import install_command

    assert install_command("web", origin) == command


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["explain", "{example}", "-f", "fhirx"],
            "Invalid value for '--format' / '-f': 'fhirx' is not one of",
        ),
        (["explian"], "No such command 'explian'. Did you mean 'explain'?"),
        (["batch"], "Missing argument 'INPUT' (see `llr-asp batch -h`)"),
        (["explain", "{example}", "--nope"], "No such option: --nope (see `llr-asp explain -h`)"),
        (["batch", "x.jsonl", "-j", "0"], "'--jobs' / '-j': 0 is not in the range x>=1"),
        (["fhir", "questionnaire", "-p"], "Option '-p' requires an argument"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], said: str) -> None:
    """As every other error: one line on stderr and exit code 2, not click's boxed usage text."""
    example = str(EXAMPLES / "route-c1-pain.json")
    result = runner.invoke(app, [a.replace("{example}", example) for a in args])
    assert result.exit_code == 2
    assert result.stderr.startswith("llr-asp: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert said in result.stderr and "╭" not in result.stderr


def test_ctrl_c_in_any_command_is_one_line() -> None:
    """explain waiting on a standard input held open, interrupted."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    cli = shutil.which("llr-asp") or str(Path(sys.executable).parent / "llr-asp")
    process = subprocess.Popen(
        [cli, "explain", "-"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not reading_stdin(process.pid) and time.monotonic() < deadline:  # llr-asp has started
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (130, "llr-asp: interrupted\n")


def reading_stdin(pid: int) -> bool:
    """Whether the process waits in read(2) on its standard input (Linux: x86-64 or arm64), or,
    where that cannot be seen, after a few seconds."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        import time

        time.sleep(3)
        return True
    return call[:2] in (["0", "0x0"], ["63", "0x0"])


def help_text(*args: str) -> str:
    """A command's -h, its words on one line (the boxes and wrapping of the help taken out)."""
    result = runner.invoke(app, [*args, "-h"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    return " ".join(result.stdout.replace("│", " ").split())


def test_help_says_what_the_readme_says() -> None:
    batch = help_text("batch")
    assert "3 when a worker process died or failed" in batch and "130 on Ctrl-C" in batch
    assert "`stopped_by` the requirements that refuse the patient or leave the decision open" in batch
    assert "--delimiter" in batch and "--input-format" in batch
    analyze = help_text("analyze")
    assert "(contested_reading)" in analyze and "(contested_combination)" in analyze
    assert "--witnesses" in analyze
    serve = help_text("serve")
    assert "FHIR R4 (/fhir/)" in serve and "CDS Hooks (/cds-services)" in serve
    assert "fhir: a QuestionnaireResponse" in help_text("explain")
