"""A decision as Markdown, for pasting into a referral letter or an Individual Funding Request.

The same content as the Rich tree: the decision, each requirement with its status, the policy
sentence it encodes, the interpretation made, the patient's values, and what is still needed.
Every string from a patient file or a rule file is escaped, so it is shown, never obeyed.
"""

from __future__ import annotations

import re

from .decision import Decision, Node
from .errors import printable
from .ruleset import RuleSet, show
from .wording import contest_line, contested_summary, headline, leads_to, marked

STATUS = {"met": "✔ met", "not_met": "✘ not met", "unknown": "? unknown"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def escape(text: str) -> str:
    """`text` as literal Markdown, within a line (every string here follows a fixed prefix, so
    only the characters that act inside a line are escaped)."""
    return _SPECIAL.sub(r"\\\1", printable(text))


def decision_markdown(decision: Decision, rules: RuleSet, full: bool = False) -> str:
    """The decision and its justification; requirements that are not a reason for the result
    take one line each unless `full`."""
    policy = decision.policy
    lines = [
        f"### {escape(policy.title)} ({escape(policy.reference)}): **{escape(headline(decision))}**",
        "",
    ]
    if not decision.robust:
        lines += [f"**⚑ {escape(contested_summary(decision))}**", ""]
    lines += [
        f"> **Warning:** the record contradicts a domain assumption: {escape(w.text)} "
        "Check the record; the decision is computed from it as it stands."
        for w in decision.warnings
    ]
    if decision.warnings:
        lines.append("")
    lines += [
        f"Patient: {escape(decision.patient)}\\",
        f"Commissioner: {escape(policy.commissioner)}\\",
        "The criteria were checked against the published policy text by llr-asp "
        f"(rule set sha256 `{decision.rules[:16]}`); the funding decision rests with "
        f"{escape(policy.commissioner)}.",
        "",
    ]
    lines += _node(decision.tree, None, 0, False, full, marked(decision))
    if decision.contested:
        lines += [
            "",
            "**Readings of the policy text under which the decision differs (the ICB must confirm):**",
            "",
        ]
        lines += [f"- ⚑ {escape(contest_line(c))}" for c in decision.contested]
    if decision.missing:
        lines += ["", "**Still needed to decide:**", ""]
        lines += [f"- {escape(f)}: {escape(rules.fields[f].question)}" for f in decision.missing]
    if decision.to_settle:
        lines += ["", "**Answers that could settle the reading:**", ""]
        lines += [f"- {escape(f)}: {escape(rules.fields[f].question)}" for f in decision.to_settle]
    if decision.decision == "not_eligible" and policy.recourse:
        lines += ["", f"*{escape(policy.recourse)}*"]
    return "\n".join(lines) + "\n"


def _node(
    node: Node, parent_text: str | None, depth: int, brief: bool, full: bool, marked: set[str]
) -> list[str]:
    """A list item: the requirement, then its sentence, interpretation and evidence on lines of
    their own, then its parts as a nested list."""
    head = f"{STATUS[node.status]}: **{escape(node.id)}** {escape(node.label)}"
    if node.id in marked:
        head += " ⚑ *read otherwise by another reading*"
    if brief:
        return [f"{'  ' * depth}- {head} (not a reason for the result)"]
    item = [head]
    if node.text and node.text != parent_text:
        item.append(f"*“{escape(node.text)}”*")
    if node.interpretation:
        item.append(f"Interpretation: {escape(node.interpretation)}")
    for evidence in node.evidence:
        value = "unknown" if evidence.value is None else f"= {escape(show(evidence.value))}"
        item.append(f"Patient: {escape(evidence.field)} {value}, {escape(evidence.needs())}")
    pad = "  " * depth
    lines = [f"{pad}- {item[0]}", *(f"{pad}  {line}" for line in item[1:])]
    lines = [f"{line}\\" for line in lines[:-1]] + lines[-1:]  # a backslash ends a line: hard break
    for child in node.children:
        brief = not (full or child.reason or leads_to(child, marked))
        lines += _node(child, node.text, depth + 1, brief, full, marked)
    return lines
