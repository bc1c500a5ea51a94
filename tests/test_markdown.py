"""`explain --format markdown`: what a referral letter gets, and strings that stay literal."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from markdown_it import MarkdownIt  # Rich's own Markdown parser
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleSet, validate
from llr_asp.cli import app
from llr_asp.core.ruleset import default_rules_dir
from llr_asp.views.markdown import decision_markdown

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
    refused = CliRunner().invoke(app, ["explain", str(record), "-f", "markdown"])
    assert refused.exit_code == 2 and "the record names no procedure" in refused.stderr  # which letter?
    result = CliRunner().invoke(app, ["explain", str(record), "-f", "markdown", "--policy", "all"])
    assert result.exit_code == 0, result.output
    hip, knee = result.stdout.split("\n---\n")
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


QUESTION = "For how many months **of care** &lt;b&gt; [x](http://e.vil) A & B?"
LABEL = "Six months _of_ `care` &amp; <i>x</i>"


def test_questions_and_labels_from_the_rules_stay_literal(tmp_path: Path) -> None:
    """A question's wording (under "Still needed to decide") and a requirement's label (an item of
    the tree) with Markdown and HTML in them: shown as written, an entity included (bugs: `&` not
    escaped, so `&lt;b&gt;` showed as <b>; list items written unescaped)."""
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    fields = rules / "fields.lp"
    wording = '"For how many months has the patient fully engaged with conservative measures?"'
    fields.write_text(fields.read_text().replace(wording, json.dumps(QUESTION), 1))
    criteria = rules / "msk_threshold.lp"
    criteria.write_text(
        criteria.read_text().replace(
            '"Six months of documented conservative measures have failed"', json.dumps(LABEL), 1
        )
    )
    reasoner = Reasoner.load(rules)
    patient = validate({"id": "p", "sex": "male"}, reasoner.rules, "p")
    [decision] = reasoner.decide(patient, [reasoner.rules.policies["hip-resurfacing"]])
    assert "conservative.months" in decision.missing  # the question is listed
    html = MarkdownIt("commonmark").render(decision_markdown(decision, reasoner.rules, full=True))
    assert "For how many months **of care** &amp;lt;b&amp;gt; [x](http://e.vil) A &amp; B?" in html
    assert "Six months _of_ `care` &amp;amp; &lt;i&gt;x&lt;/i&gt;" in html
    assert "<a " not in html and "<i>" not in html and "<code>" not in html and "<b>" not in html
    for written in ("For how many months", "Six months _of_"):  # the items hold no markup at all
        [item] = [i for i in re.findall(r"<li>(.*?)(?:</li>|<ul>|\n)", html) if written in i]
        assert "<" not in item.replace("<br />", ""), item  # a hard break ends a line of the item
