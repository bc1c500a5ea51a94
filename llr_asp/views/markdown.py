"""A decision as Markdown: the letter (llr_asp/views/letter.py) for a referral, an Individual Funding
Request or a CDS card's detail. Every string from a patient file or a rule file is escaped, so
it is shown, never obeyed."""

from __future__ import annotations

import datetime

from ..core.decision import Decision
from ..core.ruleset import RuleSet
from .letter import escape, markdown_letter

__all__ = ["decision_markdown", "escape"]


def decision_markdown(
    decision: Decision, rules: RuleSet, full: bool = False, today: datetime.date | None = None
) -> str:
    """The letter as Markdown, dated `today` (default: the date now)."""
    return markdown_letter(decision, rules, today or datetime.date.today(), full)
