"""The letter: a decision as a clinician pastes it into a record system or a referral.

One model of the letter (`blocks`), written two ways: plain text (`explain --format letter`,
the page's "Copy the letter"), which a record system shows as typed, with no markup to show
literally; and Markdown (`--format markdown`, the CDS card's detail), escaped so that text from
a record or a rule file is shown, never obeyed. Both are dated, say the verdict as every other
output does, name each requirement by the policy's label with its id once, give the patient's
values in words (`Conservative care: 4 months; the policy needs at least 6 months`), carry the
policy's caveats where they bear on the result, and keep the rule set's hash to a footer.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import NamedTuple

from ..core.decision import Decision, Node
from ..core.documents import PARTIAL_DATE, date_time
from ..core.errors import printable
from ..core.ruleset import RuleSet
from .wording import (
    after_refusal,
    conflict_words,
    contest_line,
    contested_summary,
    evidence_words,
    filled_words,
    flags,
    headline,
    leads_to,
    marked,
    root_status,
    urgent_note,
)

STATUS_WORDS = {"met": "✔ Met", "not_met": "✘ Not met", "unknown": "? Unknown"}


class Block(NamedTuple):
    """A piece of a letter: a heading, a paragraph (`strong` for the verdict), a section title,
    or an item of a list at `depth` with the lines under it."""

    kind: str  # heading | para | strong | section | item | note
    text: str
    depth: int = 0
    under: tuple[str, ...] = ()


def _day(text: str) -> str | None:
    """A day in words (`1 March 2024`); a year or a month alone as it is (`2026`, `March 2024`)."""
    if PARTIAL_DATE.fullmatch(text):
        month = int(text[5:7]) if len(text) > 4 else 0
        return (
            f"{datetime.date(int(text[:4]), month, 1):%B %Y}"
            if 1 <= month <= 12 and text[:4] != "0000"
            else text
        )
    when = date_time(text)
    return None if when is None else f"{when.day} {when:%B %Y}"


def _given(decision: Decision) -> str:
    """When the form says the answers were given (a QuestionnaireResponse's `authored`), or that
    its date cannot be theirs (no date, or one still to come): nothing for a patient record."""
    if decision.given is None:
        return ""
    if "/" in decision.given:  # answers given over a span (some confirmed later)
        first, last = (_day(d) for d in decision.given.split("/", 1))
        if first is not None and last is not None:
            return f" Answers given between {first} and {last}."
    if date_time(decision.given) is None:
        return (
            f" The form's date ({printable(decision.given)}) cannot be when it was answered (not a date, "
            "or one still to come): check when it was filled in."
        )
    on = "in" if PARTIAL_DATE.fullmatch(decision.given) else "on"  # (a year, or a month, alone)
    return f" Answers given {on} {_day(decision.given)}."


def blocks(decision: Decision, rules: RuleSet, today: datetime.date, full: bool = False) -> Iterator[Block]:
    """The letter for one decision, top to bottom."""
    policy = decision.policy
    yield Block("heading", f"{policy.title} ({policy.reference})")
    yield Block("para", f"Patient: {decision.patient}. Date: {today.day} {today:%B %Y}.{_given(decision)}")
    if policy.dated:
        yield Block("para", f"Decided under the {policy.edition_words()}.")
    yield Block("strong", f"Decision: {headline(decision)}")
    urgent = urgent_note(decision)
    if urgent:
        yield Block("strong", f"⚠ {urgent}")
    for conflict in decision.conflicts:
        yield Block("strong", f"⚑ {conflict_words(conflict, rules)}")
    if decision.contested:
        yield Block("strong", f"⚑ {contested_summary(decision)}")
    for stated in decision.filled:
        yield Block("note", f"ⓘ {filled_words(stated, rules)}")
    yield Block(
        "para",
        f"The criteria were checked against the published policy text; the funding decision rests "
        f"with {policy.commissioner}. {policy.review_words(today)}.",
    )
    for warning in decision.warnings:
        yield Block(
            "note",
            f"⚠ The record contradicts a domain assumption: {warning.text} Check the record; the "
            "decision is computed from it as it stands.",
        )
    yield Block("section", "Why")
    tree = list(_node(decision.tree, None, 0, True, full, marked(decision), rules))
    if not decision.robust:  # the root line says the verdict's qualification too
        first = tree[0]
        tree[0] = first._replace(
            text=first.text.replace(STATUS_WORDS[decision.tree.status], f"{root_status(decision)}", 1)
        )
    yield from tree
    if decision.contested:
        yield Block(
            "section", "Readings of the policy text under which the decision differs (the ICB must confirm)"
        )
        for contest in decision.contested:
            yield Block("item", f"⚑ {contest_line(contest, policy)}")
    if decision.missing:
        yield Block("section", "Still needed to decide")
        yield from _questions(decision.missing, decision, rules)
    if decision.to_settle:
        yield Block("section", "Answers that could settle the reading")
        yield from _questions(decision.to_settle, decision, rules)
    after = after_refusal(decision)
    if after:
        yield Block("para", after)
    yield Block("note", f"llr-asp, rule set sha256 {decision.rules[:16]}.")


def _questions(fields: Sequence[str], decision: Decision, rules: RuleSet) -> Iterator[Block]:
    for field in fields:
        yield Block("item", rules.fields[field].question, 0, tuple(rules.caveats(field, [decision.policy])))


def _node(
    node: Node,
    parent_text: str | None,
    depth: int,
    shown: bool,
    full: bool,
    flagged: Collection[str],
    rules: RuleSet,
) -> Iterator[Block]:
    """A requirement as an item: its status and label, then the sentence it encodes (once), the
    interpretation and defects it rests on, and the patient's values in words; then its parts,
    those that are not a reason for the result on one line each."""
    head = f"{STATUS_WORDS[node.status]}: {node.label} ({node.id})"
    if flags(node, flagged):
        head += " ⚑ read otherwise by another reading"
    if not shown:
        yield Block("item", f"{head} (not a reason for the result)", depth)
        return
    under: list[str] = []
    if node.text and node.text != parent_text:
        under.append(f"Policy: “{node.text}”")
    if node.interpretation:
        under.append(f"Interpretation: {node.interpretation}")
    under += [f"The published text: {defect}" for defect in node.defects]
    under += [evidence_words(e, rules) + "." for e in node.evidence]
    yield Block("item", head, depth, tuple(under))
    for child in node.children:
        expanded = full or child.reason or leads_to(child, flagged)
        yield from _node(child, node.text, depth + 1, expanded, full, flagged, rules)


def plain_letter(
    decisions: Sequence[Decision],
    rules: RuleSet,
    today: datetime.date,
    full: bool = False,
    preface: str | None = None,
    receipts: Mapping[str, str] | None = None,
) -> str:
    """The letter as plain text: nothing a record system would show literally (no escapes, no
    markup), control characters written out. `receipts` (policy id -> a decision receipt, a
    compact JWS): each decision's receipt id in its footer,"""
    parts = [preface] if preface else []
    for decision in decisions:
        lines: list[str] = []
        for block in blocks(decision, rules, today, full):
            text = printable(block.text)
            if block.kind == "heading":
                lines += [text, "=" * min(len(text), 72)]
            elif block.kind == "section":
                lines += ["", f"{text}:"]
            elif block.kind == "item":
                pad = "  " * block.depth
                lines.append(f"{pad}- {text}")
                lines += [f"{pad}    {printable(line)}" for line in block.under]
            else:  # a paragraph: a blank line before it (runs of blank lines are squeezed)
                lines += ["", text]
        receipt = (receipts or {}).get(decision.policy.id)
        if receipt is not None:
            lines += ["", f"Decision receipt: {receipt_id(receipt)} (llr-asp receipt verify checks it)"]
        parts.append("\n".join(_squeezed(lines)).strip())
    return "\n\n\n".join(parts) + "\n"


def receipt_id(receipt: str) -> str:
    """The id (`jti`) a decision receipt (a compact JWS, as the service signed it) names."""
    import base64
    import json

    body = receipt.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["jti"])


def _squeezed(lines: list[str]) -> list[str]:
    """No run of blank lines longer than one."""
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    return kept


_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def escape(text: str) -> str:
    """`text` as literal Markdown, within a line (every string here follows a fixed prefix, so
    only the characters that act inside a line are escaped)."""
    return _SPECIAL.sub(r"\\\1", printable(text))


def markdown_letter(decision: Decision, rules: RuleSet, today: datetime.date, full: bool = False) -> str:
    """The letter as Markdown, every string from a record or a rule file escaped."""
    lines: list[str] = []
    for block in blocks(decision, rules, today, full):
        text = escape(block.text)
        if block.kind == "heading":
            lines += [f"### {text}", ""]
        elif block.kind == "strong":
            lines += [f"**{text}**", ""]
        elif block.kind == "section":
            lines += ["", f"**{text}:**", ""]
        elif block.kind == "note":
            lines += ["", f"*{text}*", ""]
        elif block.kind == "item":
            pad = "  " * block.depth
            item = [f"{pad}- {text}", *(f"{pad}  {escape(line)}" for line in block.under)]
            lines += [f"{line}\\" for line in item[:-1]] + item[-1:]  # a backslash ends a line: hard break
        else:
            lines += ["", text, ""]
    return "\n".join(_squeezed(lines)).strip() + "\n"
