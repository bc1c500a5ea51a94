"""Golden files: the rendered justification tree, as a clinician reads it (80 columns, no colour),
and the Markdown for a referral letter.

After an intended change of output, regenerate with `LLR_ASP_UPDATE_GOLDEN=1 pytest tests/test_golden.py`
and review the diff.
"""

from __future__ import annotations

import datetime
import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from llr_asp import Reasoner, RuleSet, read_patient
from llr_asp.views.markdown import decision_markdown
from llr_asp.views.terminal import decision_view

EXAMPLES = Path(__file__).parent.parent / "examples"
GOLDEN = Path(__file__).parent / "golden"
TODAY = datetime.date(2026, 11, 21)  # the date a letter carries, and the review status it shows
CASES = [
    ("refused-b-four-months", "hip-resurfacing", False),
    ("undetermined-pain-unknown", "knee-resurfacing", False),
    ("route-c5-independence", "hip-resurfacing", False),  # refused; eligible under C5.route
    ("route-c4-sfi", "knee-resurfacing", False),  # eligible; contested twice
    ("route-c4-sfi", "hip-resurfacing", True),
]
MARKDOWN = CASES[:4]


def updating() -> bool:
    """Whether to rewrite the golden files: asked for by hand, never under CI (where a rewrite
    would compare the output with itself)."""
    if not os.environ.get("LLR_ASP_UPDATE_GOLDEN"):
        return False
    if os.environ.get("CI"):
        pytest.fail("LLR_ASP_UPDATE_GOLDEN is set under CI: golden files are compared there, never rewritten")
    return True


@pytest.mark.parametrize(("example", "policy", "full"), CASES)
def test_rendered_tree(example: str, policy: str, full: bool, rules: RuleSet, reasoner: Reasoner) -> None:
    patient = read_patient(str(EXAMPLES / f"{example}.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies[policy]])
    out = io.StringIO()
    Console(file=out, width=80, color_system=None, force_terminal=False).print(
        decision_view(decision, rules, full, TODAY)
    )
    rendered = out.getvalue()
    assert all(len(line) <= 80 for line in rendered.splitlines())
    golden = GOLDEN / f"{example}.{policy}{'.full' if full else ''}.txt"
    if updating():
        golden.write_text(rendered)
    assert rendered == golden.read_text()


@pytest.mark.parametrize(("example", "policy", "full"), MARKDOWN)
def test_markdown(example: str, policy: str, full: bool, rules: RuleSet, reasoner: Reasoner) -> None:
    patient = read_patient(str(EXAMPLES / f"{example}.json"), rules)
    [decision] = reasoner.decide(patient, [rules.policies[policy]])
    rendered = decision_markdown(decision, rules, full, TODAY).replace(decision.rules[:16], "<rule set>")
    golden = GOLDEN / f"{example}.{policy}.md"
    if updating():
        golden.write_text(rendered)
    assert rendered == golden.read_text()
