"""Plain wording shared by every renderer (text, Markdown, the page, cards): no Rich, no markup.

A decision is said in one of the verdict classes a clinician can act on. Only a robust decision
(every clinical reading of the policy text agrees) is said plainly; one that is not robust is
always said with its qualification, in the same words wherever it appears.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .decision import Contest, Decision, Node
from .ruleset import RuleSet, show

if TYPE_CHECKING:
    from .whatif import Change

VERDICT_WORDS = {"eligible": "ELIGIBLE", "not_eligible": "NOT ELIGIBLE", "undetermined": "UNDETERMINED"}


def plain(decision: str) -> str:
    """A decision in running text: `not eligible`."""
    return decision.replace("_", " ")


class Verdict(Protocol):
    """Anything that says a decision and whether it is robust: a Decision, a batch Screening,
    a WhatIf."""

    @property
    def decision(self) -> str: ...
    @property
    def robust(self) -> bool: ...
    @property
    def possible(self) -> tuple[str, ...]: ...


def tone(decision: Verdict) -> str:
    """The verdict class, for styling: eligible, not_eligible and undetermined when robust;
    contested when a reading of the text would decide otherwise (never shown as plain)."""
    return decision.decision if decision.robust else "contested"


def headline(decision: Verdict) -> str:
    """The verdict as the first words a clinician reads.

    `ELIGIBLE` only when every clinical reading agrees; `ELIGIBLE ON THE ADOPTED READING — the
    ICB must confirm` when another reading refuses (or needs more answers); a refusal that
    another reading would fund says so."""
    words = VERDICT_WORDS[decision.decision]
    if decision.decision == "undetermined":
        words += ": answers missing"
    if decision.robust:
        return words
    if decision.decision == "eligible":
        return f"{words} ON THE ADOPTED READING — the ICB must confirm"
    if decision.decision == "not_eligible":
        if "eligible" in decision.possible:
            return f"{words} ON THE ADOPTED READING — another reading of the policy would fund: ask the ICB"
        return f"{words} ON THE ADOPTED READING — another reading needs more answers"
    if "eligible" in decision.possible:
        return f"{words} — and another reading of the policy could fund: ask the ICB"
    return f"{words} — readings of the policy text differ"


def contested_summary(decision: Decision) -> str:
    """One sentence under the headline of a decision that is not robust: what it rests on, and
    what the clinician can do about it."""
    points = ", ".join(
        dict.fromkeys(f"{t.requirement} ({t.reading})" for c in decision.contested for t in c.taken)
    )
    others = [d for d in decision.possible if d != decision.decision]
    under = " or ".join("not yet decided" if d == "undetermined" else VERDICT_WORDS[d] for d in others)
    said = (
        f"The policy text can be read another way at {points}: under another reading the patient is {under}."
    )
    if decision.to_settle:
        said += " The answers listed below could settle it."
    if any(d != "undetermined" for d in others):
        said += " The ICB must confirm which reading applies."
    return said


def contest_line(contest: Contest) -> str:
    """One contest in words: the alternative(s) taken, then the decision under them."""
    if len(contest.taken) == 1:
        [one] = contest.taken
        return f"{one.requirement} ({one.reading}): {one.text} Under it: {VERDICT_WORDS[contest.decision]}."
    said = " Together with ".join(f"{t.requirement} ({t.reading}): {t.text}" for t in contest.taken)
    return f"{said} Under these together: {VERDICT_WORDS[contest.decision]}."


def leads_to(node: Node, marked: set[str]) -> bool:
    """Whether `node` or a node below it is one of `marked`: such a node is never folded away."""
    return bool(marked) and any(n.id in marked for n in node.walk())


def marked(decision: Decision) -> set[str]:
    """The requirements whose sentences a contest reads otherwise (⚑ in every tree)."""
    return {r for c in decision.contested for r in c.requirements}


def change_words(change: Change, rules: RuleSet) -> str:
    """One change of a what-if set, as a clause after "eligible if": an unknown as a question to
    find out, care as a step, a finding or an outcome as a condition (never an instruction);
    with the policy's own caution when a route the patient meets says not to wait."""
    field = change.field
    after = show(change.after)
    before = "not known" if change.before is None else show(change.before)
    if change.kind == "answer":
        answer = {"true": "yes", "false": "no"}.get(after, after)
        said = f"you find out “{rules.fields[field].question}” and the answer is {answer}"
    elif change.kind == "finding":
        said = f"{field} were {after} (now {before}; a clinical finding, not a step to take)"
    elif change.kind == "outcome":
        said = f"{field} were {after} (now {before}; an outcome of care, not a step to take)"
    else:
        said = f"{field} went from {before} to {after} (care you can act on)"
    if change.caution is not None:
        said += (
            f" ⚠ Caution: the patient meets {change.caution.route}: “{change.caution.text}” "
            "Do not delay for this without asking the ICB"
        )
    return said


CHANGE_KEY = (
    "care: what a clinician can act on; a clinical finding changes with the disease, and an "
    "outcome of care follows from the care: neither is a step to take"
)
