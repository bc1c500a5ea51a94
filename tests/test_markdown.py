"""`explain --format markdown`: what a referral letter gets, and strings that stay literal."""

from __future__ import annotations

import json
import re
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
    assert hip.startswith("### Policy for Hip Resurfacing (ARP 55)\n\nPatient: p-1. Date: ")
    assert "\n**Decision: NOT ELIGIBLE**\n" in hip
    assert "Decided by" not in hip and "the funding decision rests with NHS Leicester" in hip
    assert "Policy: “The procedure is contraindicated in females.”" in hip
    assert "Conservative care: 2 months; the policy needs at least 6 months." in hip
    assert "conservative.months" not in hip  # words, not field paths
    assert "\n\nHip resurfacing is contra-indicated in women" in hip  # a paragraph of its own: no IFR for it
    assert re.search(r"\n\n\*llr-asp, rule set sha256 [0-9a-f]{16}\.\*$", hip.rstrip())  # the hash: a footer
    assert hip.count("sha256") == 1
    assert "**Decision: NOT ELIGIBLE ON THE ADOPTED READING — another reading needs more answers**" in knee
