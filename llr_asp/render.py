"""Rendering for people: Rich justification trees and tables.

Every string from a patient file or a rule file enters Rich as `Text`, never as markup, so
brackets or escape codes in them are shown, not obeyed.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from .decision import Decision, Evidence, Node
from .errors import printable
from .ruleset import RuleSet, show
from .wording import (
    CHANGE_KEY,
    after_refusal,
    change_words,
    contest_line,
    contested_summary,
    evidence_words,
    flags,
    headline,
    leads_to,
    marked,
    root_status,
    tone,
    urgent_note,
)

if TYPE_CHECKING:  # explain does not pay for importing the analysis, or tables
    from rich.table import Table

    from .analysis import Finding
    from .batch import Summary
    from .check import Report
    from .difference import Comparison
    from .interview import Next, Question
    from .whatif import WhatIf

ICON = {"met": "✔", "not_met": "✘", "unknown": "?"}
STYLE = {"met": "green", "not_met": "red", "unknown": "yellow"}
VERDICT = {
    "eligible": ("ELIGIBLE", "bold green"),
    "not_eligible": ("NOT ELIGIBLE", "bold red"),
    "undetermined": ("UNDETERMINED: answers missing", "bold yellow"),
}
TONE = {**{d: style for d, (_, style) in VERDICT.items()}, "contested": "bold magenta"}
"""The style of each verdict class (wording.tone): a decision that is not robust is never green."""


def decision_view(
    decision: Decision, rules: RuleSet, full: bool = False, today: datetime.date | None = None
) -> Group:
    """The decision first, then the justification tree, then what is still needed.

    A requirement that is not a reason for its parent's status is shown on one line, unless
    `full`: its sentence and its parts do not bear on the result.
    """
    policy = decision.policy
    header = Text.assemble(
        (f"{policy.title} ({policy.reference})", "bold"),
        "\nPatient ",
        (printable(decision.patient), "bold"),
        ": ",
        (headline(decision), TONE[tone(decision)]),
    )
    parts: list[Text | Tree] = [header]
    urgent = urgent_note(decision)
    if urgent:
        parts.append(Text(f"⚠ {urgent}", style="bold yellow"))
    if not decision.robust:
        parts.append(Text(f"⚑ {contested_summary(decision)}", style="magenta"))
    today = today or datetime.date.today()
    parts.append(
        Text(
            f"The funding decision rests with {policy.commissioner}. {policy.review_words(today)}.",
            style="dim",
        )
    )
    for warning in decision.warnings:
        parts.append(
            Text.assemble(
                ("⚠ The record contradicts a domain assumption: ", "bold yellow"),
                warning.text,
                " Check the record; the decision is computed from it as it stands.",
            )
        )
    flagged = marked(decision)
    root = _node_label(decision.tree, None, False, flagged, rules)
    if not decision.robust:  # the root line says the verdict's qualification too
        root = Text.assemble((f"{root_status(decision)}: ", "bold magenta"), root)
    tree = Tree(root, guide_style="dim")
    _add_children(tree, decision.tree, full, flagged, rules)
    parts.append(tree)
    if decision.contested:
        contested = Text(
            "Readings of the policy text under which the decision differs (the ICB must confirm):",
            style="bold magenta",
        )
        for contest in decision.contested:
            contested.append("\n  ⚑ ")
            contested.append(contest_line(contest, policy))
        parts.append(contested)
    for fields, title, style in (
        (decision.missing, "Still needed to decide:", "bold yellow"),
        (decision.to_settle, "Answers that could settle the reading:", "bold magenta"),
    ):
        if fields:
            needed = Text(title, style=style)
            for field in fields:
                needed.append("\n  • ")
                needed.append(rules.fields[field].question, style="bold")
                needed.append(f"  [{field}]", style="dim")
                for caveat in rules.caveats(field, [policy]):
                    needed.append(f"\n    {caveat}", style="yellow")
            parts.append(needed)
    key = "✔ met   ✘ not met   ? unknown"
    if flagged:
        key += "   ⚑ read otherwise by another reading"
    if not full:
        key += "   … not a reason for the result (--full expands)"
    parts.append(Text(key, style="dim"))
    after = after_refusal(decision)
    if after:
        parts.append(Text(f"→ {after}", style="bold"))
    return Group(*parts)


def _add_children(tree: Tree, node: Node, full: bool, marked: Collection[str], rules: RuleSet) -> None:
    for child in node.children:
        brief = not (full or child.reason or leads_to(child, marked))
        branch = tree.add(_node_label(child, node.text, brief, marked, rules))
        if not brief:
            _add_children(branch, child, full, marked, rules)


def _node_label(
    node: Node, parent_text: str | None, brief: bool, marked: Collection[str], rules: RuleSet
) -> Text:
    label = Text.assemble(
        (f"{ICON[node.status]} ", STYLE[node.status]),
        (node.id, "bold"),
        "  ",
        node.label,
    )
    if flags(node, marked):
        label.append("  ⚑ read otherwise by another reading", style="bold magenta")
    if brief:
        label.append(" …")
        label.stylize("dim")
        return label
    if node.text and node.text != parent_text:
        label.append(f"\n“{node.text}”", style="italic")
    if node.interpretation:
        label.append(f"\nInterpretation: {node.interpretation}", style="cyan")
    for defect in node.defects:
        label.append(f"\nThe published text: {defect}", style="yellow")
    for evidence in node.evidence:
        label.append("\n")
        label.append_text(evidence_text(evidence, rules))
    return label


def evidence_text(evidence: Evidence, rules: RuleSet) -> Text:
    """`Conservative care: 4 months; the policy needs at least 6 months [conservative.months]`: the
    values in words, and the field's path, which a record is fixed by."""
    said = Text(evidence_words(evidence, rules))
    if evidence.value is None:
        said.stylize("yellow", said.plain.index(": ") + 2, said.plain.index(";"))
    said.append(f"  [{evidence.field}]", style="dim")
    return said


def _table(title: str | None = None) -> Table:
    from rich.table import Table  # not needed by explain's tree: imported only for tables

    return Table(title=title, title_justify="left")


def policies_table(rules: RuleSet, today: datetime.date) -> Table:
    table = _table("Policies")
    for column in ("id", "reference", "title", "review", "commissioner"):
        table.add_column(column, overflow="fold")
    for policy in rules.policies.values():
        due = policy.review_due(today)
        review = Text(str(policy.review))
        if due:
            review.append(f" ({due})", style="bold red")
        table.add_row(
            Text(policy.id), Text(policy.reference), Text(policy.title), review, Text(policy.commissioner)
        )
    return table


def print_all(console: Console, views: Iterable[Group | Table]) -> None:
    for index, view in enumerate(views):
        if index:
            console.print()
        console.print(view)


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def findings_view(findings: Sequence[Finding]) -> Group:
    """The findings by severity as a table, then each in full: message, sentence, witness."""
    from .analysis import SEVERITIES

    if not findings:
        return Group(Text("No findings.", style="bold green"))
    counts = Counter(f.severity for f in findings)
    summary = ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in SEVERITIES if counts[s])
    table = _table(f"Findings: {summary}")
    for column in ("#", "severity", "kind", "policy", "requirements"):
        table.add_column(column, overflow="fold")
    details: list[Text] = []
    for number, finding in enumerate(findings, 1):
        style = SEVERITY_STYLE[finding.severity]
        table.add_row(
            str(number),
            Text(finding.severity, style=style),
            Text(finding.kind),
            Text(finding.policy or "-"),
            Text(", ".join(finding.requirements) or "-"),
        )
        detail = Text.assemble(
            (f"[{number}] ", "bold"), (finding.kind, style), " ", printable(finding.message)
        )
        if finding.quote:
            detail.append(f"\n    policy text: “{printable(finding.quote)}”", style="italic")
        if finding.file:
            where = f"{finding.file}:{finding.line}" if finding.line else finding.file
            detail.append(f"\n    at {printable(where)}")
        if finding.witness is not None:
            detail.append(
                f"\n    witness: {printable(json.dumps(finding.witness, ensure_ascii=False))}", style="dim"
            )
        details.append(detail)
    return Group(table, Text(), *details)


def comparison_view(comparison: Comparison) -> Group:
    """The classes of patients two policies decide differently, largest first."""
    first, second = comparison.first.label, comparison.second.label
    affected = sum(d.profiles for d in comparison.differences)
    heading = Text.assemble(
        (f"{first} vs {second}: ", "bold"),
        f"{len(comparison.differences)} classes of patients decided differently, "
        f"{affected:,} of {comparison.profiles:,} fully known profiles",
    )
    if not comparison.differences:
        return Group(heading, Text("The two decide every patient alike.", style="bold green"))
    table = _table()
    for column in ("#", first, second, "difference made by", "profiles"):
        table.add_column(column, overflow="fold")
    details: list[Text] = []
    for number, difference in enumerate(comparison.differences, 1):
        table.add_row(
            str(number),
            Text(difference.first.replace("_", " ")),
            Text(difference.second.replace("_", " ")),
            Text(", ".join(difference.requirements) or "-"),
            f"{difference.profiles:,}",
        )
        detail = Text.assemble((f"[{number}] ", "bold"), printable(difference.message))
        witness = json.dumps(difference.witness, ensure_ascii=False)
        detail.append(f"\n    witness: {printable(witness)}", style="dim")
        details.append(detail)
    return Group(heading, table, Text(), *details)


def check_view(report: Report) -> Group:
    """Each step passed or failed, then every failure with the file and line to fix."""
    from .check import STEPS

    table = _table(f"llr-asp check: {'PASSED' if report.passed else 'FAILED'}")
    for column in ("step", "checked", "failed", "what it checks"):
        table.add_column(column, overflow="fold")
    for step, description in STEPS.items():
        cases = [c for c in report.cases if c.step == step]
        failed = sum(1 for c in cases if c.failures)
        mark = Text("✘ " + step, style="red") if failed else Text("✔ " + step, style="green")
        if not cases:
            mark = Text("- " + step, style="dim")
        table.add_row(mark, str(len(cases)), str(failed), description)
    lines: list[Text] = []
    if report.coverage is not None:
        lines.append(Text(f"Coverage: {report.coverage:.1%} of requirements met and not met by examples"))
        lines += [Text(f"  uncovered: {printable(u)}", style="yellow") for u in report.uncovered]
    for case, failure in report.failures():
        where = f"{failure.file}:{failure.line}" if failure.file and failure.line else failure.file or ""
        line = Text.assemble(("✘ ", "red"), (f"{case.step} ", "bold"), printable(case.name))
        if where:
            line.append(f"\n    {printable(where)}", style="cyan")
        line.append(f"\n    {printable(failure.message)}")
        lines.append(line)
    lines += [Text(f"note: {printable(n)}", style="dim") for n in report.notices]
    return Group(table, *lines)


def whatif_view(answer: WhatIf, rules: RuleSet) -> Group:
    """The smallest sets of changes that would make the patient eligible, or why none can; first,
    any reading of the policy under which the patient is eligible as the record stands."""
    policy = answer.policy
    lines = [
        Text.assemble(
            (f"{policy.title} ({policy.reference}): ", "bold"), (headline(answer), TONE[tone(answer)])
        )
    ]
    for contest in answer.eligible_now:
        lines.append(
            Text.assemble(
                (
                    "⚑ Eligible as the record stands under another reading of the policy text: ",
                    "bold magenta",
                ),
                contest_line(contest, policy),
                " No change is needed under it: ask the ICB to confirm the reading.",
            )
        )
    if answer.decision == "eligible" and answer.robust:
        lines.append(Text("Already eligible under every reading: nothing needs to change."))
    elif answer.decision == "eligible":
        lines.append(
            Text(
                "Eligible on the adopted reading only; no change to the record makes it certain: "
                "ask the ICB to confirm the reading."
            )
        )
    elif answer.blocker is not None:
        blocker = answer.blocker
        fixed = ", ".join(f"{f} = {show(v)}" for f, v in blocker.fixed)
        because = f": {fixed}, which cannot change" if fixed else ""
        cannot = f"{blocker.requirement} ({blocker.label}) cannot be met{because}."
        lines.append(Text(f"No change can make the patient eligible under the adopted reading. {cannot}"))
        for _, statement in blocker.assumptions:
            lines.append(Text(f"  Not without contradicting the domain assumption: {statement}"))
    else:
        size = len(answer.counterfactuals[0])
        fields = f"{size} field{'s' if size > 1 else ''} each"
        lines.append(Text(f"Smallest changes that would make the patient eligible ({fields}):"))
        for number, changes in enumerate(answer.counterfactuals, 1):
            line = Text(f"  {number}. Eligible if ")
            for index, change in enumerate(changes):
                line.append("; and " if index else "")
                line.append(change_words(change, rules), style="bold yellow" if change.caution else "")
            lines.append(line)
        lines.append(Text(CHANGE_KEY, style="dim"))
    for contest in answer.contested:
        if contest not in answer.eligible_now:
            lines.append(
                Text.assemble(("⚑ Another reading: ", "bold magenta"), contest_line(contest, policy))
            )
    return Group(*lines)


def next_view(step: Next) -> Group:
    """The decision so far and the next question, or why there is none."""
    decision = step.decision
    policy = decision.policy
    lines = [
        Text.assemble(
            (f"{policy.title} ({policy.reference}): ", "bold"),
            (headline(decision), TONE[tone(decision)]),
        )
    ]
    unknown = [*decision.missing, *decision.to_settle]
    if step.question is not None:
        others = step.pending - 1
        more = f" ({others} more can still change or settle the decision)" if others else ""
        lines.append(Text(f"Next question{more}:"))
        lines.append(question_text(step.question))
    elif unknown:
        lines.append(
            Text(
                f"Nothing more to ask now: {', '.join(unknown)} "
                f"{'was' if len(unknown) == 1 else 'were'} answered as not known, and "
                f"{'is' if len(unknown) == 1 else 'are'} still needed"
                + (" to decide." if decision.missing else " to settle the reading.")
            )
        )
    elif not decision.robust:
        lines.append(Text("Nothing more to ask: no answer can settle the reading; the ICB must confirm it."))
    else:
        lines.append(Text("Decided under every reading of the policy: nothing more to ask."))
    return Group(*lines)


def question_text(question: Question) -> Text:
    """`What is the patient's pain grade?` with its field and the answers it takes."""
    text = Text.assemble(("  " + question.text, "bold"), f"  [{question.field}]")
    if question.choices is None:
        answers = "a number"
    elif question.type == "bool":
        answers = "yes / no"
    else:
        answers = " / ".join(f"{n}. {show(c)}" for n, c in enumerate(question.choices, 1))
    for caveat in question.caveats:
        text.append(f"\n  Note: {caveat}", style="yellow")
    text.append(f"\n  Answer: {answers}, or unknown", style="dim")
    return text


BAR = 20  # characters for the largest count


def bar(segments: Sequence[tuple[int, str, str]], scale: int) -> Text:
    """A bar of (count, character, style) segments to `scale`: each status its own character
    (█ ▓ ░), so that it reads without colour; a count too small for the scale keeps one."""
    drawn = Text()
    for count, character, style in segments:
        length = round(BAR * count / scale) if scale else 0
        drawn.append(character * (max(length, 1) if count else 0), style=style)
    return drawn


def funnel_text(summary: Summary, policy: str) -> Text:
    """The funnel of `charts.funnel` as text: each step of the decision with the patients it
    passes (█ ✔), stops (▓ ✘) and leaves open (░ ?, undetermined or refused later)."""
    steps = summary.funnel_json(policy)
    total = sum(summary.decisions[policy].values())
    lines = Text("Through the criteria, in order (█ ✔ pass · ▓ ✘ stop · ░ ? open):", style="bold")
    width = max((len(s["requirement"]) for s in steps), default=0)
    for step in steps:
        lines.append(f"\n  {printable(step['requirement']):<{width}}  ")
        shown = [(step["met"], "█", "green"), (step["not_met"], "▓", "red"), (step["unknown"], "░", "yellow")]
        drawn = bar(shown, total)
        lines.append_text(drawn)
        lines.append(" " * max(BAR - len(drawn), 0))
        later = f" ({step['unknown_refused_later']} refused later)" if step["unknown_refused_later"] else ""
        lines.append(f"  ✔ {step['met']}  ✘ {step['not_met']}  ? {step['unknown']}{later}")
    return lines


def summary_view(summary: Summary) -> Group:
    """Per policy: how many patients got each decision, the funnel through its criteria, the
    requirements most often not met, the fields most often missing, with bars; then the bad
    lines."""
    parts: list[Table | Text] = []
    for policy, decisions in summary.decisions.items():
        reference = summary.rules.policies[policy].reference
        table = _table(f"{policy} ({reference})")
        table.add_column("decision")
        table.add_column("patients", justify="right")
        total = sum(decisions.values())
        for decision in ("eligible", "not_eligible", "undetermined"):
            count = decisions.get(decision, 0)
            share = f"{count / total:.1%}" if total else "-"
            table.add_row(
                Text(VERDICT[decision][0].split(":")[0], style=VERDICT[decision][1]), f"{count} ({share})"
            )
        parts.append(table)
        parts.append(funnel_text(summary, policy))
        requirements = summary.rules.policies[policy].requirements
        top = requirements[summary.rules.policies[policy].root].parts
        failed = summary.failed[policy]
        rows = {
            "Stopped by (requirements of the decision not met)": [
                (failed[r], f"{r}  {requirements[r].label}") for r in sorted(top, key=lambda r: -failed[r])
            ],
            "Most often missing": [(n, f) for f, n in summary.missing[policy].most_common(5)],
            "Decided otherwise under an alternative reading (patients)": [
                (n, f"{reading}: {alternative}")
                for (reading, alternative), n in summary.contested[policy].most_common()
            ],
            "Records that contradict a domain assumption": [
                (n, summary.rules.assumptions[a]) for a, n in summary.warnings[policy].most_common()
            ],
        }
        for title, counts in rows.items():
            if any(n for n, _ in counts):
                lines = Text(f"{title}:", style="bold")
                scale = max(n for n, _ in counts)
                for count, name in counts:
                    drawn = bar([(count, "█", "blue")], scale)
                    lines.append("\n  ")
                    lines.append_text(drawn)
                    lines.append(" " * (BAR - len(drawn)) + f" {count:>7}  {printable(name)}")
                parts.append(lines)
    if summary.error_count:
        errors = Text(f"{summary.error_count} bad lines", style="bold red")
        for error in summary.errors[:5]:
            errors.append(f"\n  line {error.line}: {printable(error.error)}")
        if summary.error_count > 5:
            errors.append('\n  … every one is in the output, as {"line", "error"}')
        parts.append(errors)
    else:
        parts.append(Text("No bad lines.", style="green"))
    return Group(*parts)
