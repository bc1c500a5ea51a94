"""`explain --format markdown`: what a referral letter gets, and strings that stay literal."""

from __future__ import annotations

import json
from pathlib import Path

from markdown_it import MarkdownIt  # Rich's own Markdown parser
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleSet, validate
from llr_asp.cli import EVERY_POLICY, app
from llr_asp.markdown import decision_markdown

HOSTILE = "p-9 **bold** [link](http://x) <script>x</script> `code` _i_ ~~s~~ |t| &amp; \\"


def test_patient_and_rule_strings_never_become_markup(rules: RuleSet, reasoner: Reasoner) -> None:
    patient = validate({"id": HOSTILE, "sex": "female"}, rules, "p")
    [decision] = reasoner.decide(patient, [rules.policies["hip-resurfacing"]])
    html = (
        MarkdownIt("commonmark")
        .enable("strikethrough")
        .enable("table")
        .render(decision_markdown(decision, rules))
    )
    assert "<a " not in html and "<script>" not in html and "<code>p" not in html
    assert "<del>" not in html
    assert "Patient: p-9 **bold** [link](http://x) &lt;script&gt;x&lt;/script&gt; `code` _i_" in html


def test_markdown_has_the_decision_the_sentences_and_the_recourse(tmp_path: Path) -> None:
    record = tmp_path / "p.json"
    record.write_text(json.dumps({"id": "p-1", "sex": "female", "conservative": {"months": 2}}))
    result = CliRunner().invoke(app, ["explain", str(record), "-f", "markdown"])
    assert result.exit_code == 0, result.output
    preface, hip = result.stdout.split("\n\n", 1)
    hip, knee = hip.split("\n---\n")
    assert preface == f"*{EVERY_POLICY}*"  # no policy named: the letter says why both are there
    assert hip.startswith("### Policy for Hip Resurfacing (ARP 55): **NOT ELIGIBLE**")
    assert "Decided by" not in hip and "the funding decision rests with NHS Leicester" in hip
    assert "*“The procedure is contraindicated in females.”*" in hip
    assert "Patient: conservative.months = 2, needs ≥ 6" in hip
    assert hip.rstrip().endswith("Individual Funding Request (IFR).*")
    assert "### Policy for Knee Resurfacing (ARP 60): **NOT ELIGIBLE ON THE ADOPTED READING — another" in knee
