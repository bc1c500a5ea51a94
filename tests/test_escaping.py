"""Text from rule files and records stays literal in every report (issue "Tests that bite"):
Markdown and Rich show `&`, `|`, `*`, brackets, newlines and control characters, never act on
them; and the reports' own marks and counts say what they mean."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console
from typer.testing import CliRunner

from llr_asp import Reasoner, validate
from llr_asp.cli import app
from llr_asp.core.ruleset import default_rules_dir
from llr_asp.views.markdown import decision_markdown
from llr_asp.views.terminal import decision_view

HOSTILE = "A & B | **C** <b>D</b> [x](http://e.vil) `E` \\x1b[31mred\\x1b[0m\\nnext"
runner = CliRunner()


def hostile_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    hip = rules / "hip_resurfacing.lp"
    text = hip.read_text().replace('"Meets the ARP 55 funding criteria"', json.dumps(HOSTILE), 1)
    text = text.replace('"ARP 55")', f"{json.dumps('ARP | 55 & <i>')})", 1)
    # into clingo's string syntax: \x1b as the escape character itself, \n as clingo's own
    # escape, which clingo reads as a newline (json.dumps had doubled the backslash: clingo read
    # a backslash and an n, so no real newline was ever tested)
    hip.write_text(text.replace("\\\\x1b", "\x1b").replace("\\\\nnext", "\\nnext"))
    return rules


def decision(rules: Path):  # type: ignore[no-untyped-def]
    reasoner = Reasoner.load(rules)
    patient = validate({"id": "p|1 **x**", "sex": "female"}, reasoner.rules, "p")
    [hip] = reasoner.decide(patient, [reasoner.rules.policies["hip-resurfacing"]])
    return reasoner.rules, hip


def test_markdown_keeps_hostile_rule_text_literal(tmp_path: Path) -> None:
    rules, hip = decision(hostile_rules(tmp_path))
    text = decision_markdown(hip, rules)
    assert "\x1b" not in text
    rendered = MarkdownIt().render(text)
    assert "<b>D</b>" not in rendered and 'href="http://e.vil"' not in rendered
    assert "A &amp; B | **C** &lt;b&gt;D&lt;/b&gt;" in rendered.replace("\\", "")
    assert "<i>" not in rendered and "p|1 **x**" in rendered.replace("\\", "")
    assert not any(line.startswith("next") for line in text.splitlines())  # the newline is not obeyed
    heading = text.splitlines()[0]
    assert heading.startswith("### ") and "\\|" in heading  # a | cannot open a table


def test_rich_shows_hostile_rule_text_without_obeying_it(tmp_path: Path) -> None:
    rules, hip = decision(hostile_rules(tmp_path))
    out = io.StringIO()
    Console(file=out, width=100, color_system=None, force_terminal=False).print(decision_view(hip, rules))
    shown = out.getvalue()
    assert "\x1b" not in shown and "\\x1b[31mred" in shown
    assert "**C** <b>D</b> [x](http://e.vil)" in shown  # brackets are not Rich markup either
    assert "\\nnext" in shown  # a newline in a label is shown, not obeyed
    assert not any(line.lstrip(" │├└─✘✔?").startswith("next") for line in shown.splitlines())


@pytest.mark.whole
def test_the_check_report_marks_each_step(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    examples = tmp_path / "examples"
    shutil.copytree(Path(__file__).parent.parent / "examples", examples)
    (examples / "route-c1-pain.json").write_text(
        (examples / "route-c1-pain.json")
        .read_text()
        .replace('"decision": "eligible"', '"decision": "not_eligible"', 1)
    )
    result = runner.invoke(
        app, ["check", "--rules", str(rules), "--examples", str(examples)], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 1
    lines = {
        m.group(2): m.group(1)
        for m in re.finditer(r"([✔✘-]) (load|hygiene|examples|invariants|coverage|baseline)", result.stdout)
    }
    assert lines["examples"] == "✘" and lines["load"] == lines["hygiene"] == lines["baseline"] == "✔"
    assert "decision is eligible, expected not_eligible" in result.stdout


def test_the_batch_summary_counts_what_stopped_and_what_is_missing(tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"w{n}", "sex": "female"}) for n in range(3)]
    lines += [json.dumps({"id": "m", "sex": "male", "msk": {"assessed": False}})]
    lines += [json.dumps({"id": f"u{n}", "sex": "male"}) for n in range(2)]  # undetermined: answers missing
    lines += ["{bad"] * 7
    cohort = tmp_path / "c.jsonl"
    cohort.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app, ["batch", str(cohort), "-p", "hip-resurfacing", "-j", "1"], env={"COLUMNS": "120"}
    )
    summary = result.stderr
    assert "Stopped by" in summary, summary
    stopped = summary[summary.index("Stopped by") :]
    # three women refused by no_contraindication; A refused one man and left two undetermined
    assert re.search(r"\b3\s+no_contraindication", stopped) and re.search(r"\b3\s+A\b", stopped)
    assert re.search(r"\b2\s+conservative\.months", summary[summary.index("Most often missing") :])
    assert "7 bad lines" in summary and summary.count("line ") >= 5
    assert '… every one is in the output, as {"line", "error"}' in summary  # 7 errors, 5 shown


def test_the_findings_view_shows_escape_codes_from_the_rules(tmp_path: Path) -> None:
    """A hygiene finding quotes the offending rule as written, escape character included: the
    findings view writes it out (bug: the message printed as it is, recolouring the terminal)."""
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    with (rules / "hip_resurfacing.lp").open("a") as extra:
        extra.write('condition("hip-resurfacing", "zz", "Odd", "no\x1b[31m.field", eq, true).\n')
    result = runner.invoke(app, ["analyze", "--rules", str(rules)], env={"COLUMNS": "200"})
    assert "condition tests an undeclared field" in result.stdout
    assert "\x1b" not in result.stdout and "no\\x1b[31m.field" in result.stdout
