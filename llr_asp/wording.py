"""Plain wording shared by every renderer (text, Markdown): no Rich, no markup."""

from __future__ import annotations

from .decision import Decision, Node

VERDICT_WORDS = {"eligible": "ELIGIBLE", "not_eligible": "NOT ELIGIBLE", "undetermined": "UNDETERMINED"}


def plain(decision: str) -> str:
    """A decision in running text: `not eligible`."""
    return decision.replace("_", " ")


def contested_headline(decision: Decision) -> str:
    """What the decision rests on, after the verdict: `rests on a contested reading of C4
    (C4.cut-off): under the alternative, NOT ELIGIBLE. Confirm with the ICB.`"""
    contests = decision.contested
    points = ", ".join(f"{c.requirement} ({c.reading})" for c in contests)
    outcomes = " or ".join(sorted({VERDICT_WORDS[c.decision] for c in contests}))
    readings, under = ("a contested reading", "the") if len(contests) == 1 else ("contested readings", "an")
    return f"rests on {readings} of {points}: under {under} alternative, {outcomes}. Confirm with the ICB."


def leads_to(node: Node, marked: set[str]) -> bool:
    """Whether `node` or a node below it is one of `marked`: such a node is never folded away."""
    return bool(marked) and any(n.id in marked for n in node.walk())
