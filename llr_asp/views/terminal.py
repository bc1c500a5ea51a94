"""Rendering for people: Rich justification trees and tables.

Every string from a patient file or a rule file enters Rich as `Text`, never as markup, so
brackets or escape codes in them are shown, not obeyed.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Union

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.segment import Segment
from rich.text import Text
from rich.tree import Tree

from ..core.decision import Decision, Evidence, Node
from ..core.errors import printable
from ..core.ruleset import RuleSet, show
from ..core.urgency import urgent_route
from .wording import (
    CHANGE_KEY,
    after_refusal,
    cannot_words,
    certain_words,
    conflict_words,
    contest_line,
    contested_summary,
    counted,
    evidence_words,
    filled_words,
    flags,
    headline,
    leads_to,
    marked,
    resting_words,
    root_status,
    set_words,
    steps_words,
    tone,
    unnamed_note,
    urgent_note,
    urgent_summary,
    withheld_words,
)

if TYPE_CHECKING:  # explain does not pay for importing the analysis, or tables
    from rich.table import Table

    from ..engines.analysis import Finding
    from ..engines.batch import Summary
    from ..engines.check import Report
    from ..engines.cohort_difference import CohortDifference
    from ..engines.difference import Comparison
    from ..engines.interview import Next, Question
    from ..engines.whatif import WhatIf

ICON = {"met": "✔", "not_met": "✘", "unknown": "?"}
STYLE = {"met": "green", "not_met": "red", "unknown": "yellow"}
VERDICT = {
    "eligible": ("ELIGIBLE", "bold green"),
    "not_eligible": ("NOT ELIGIBLE", "bold red"),
    "undetermined": ("UNDETERMINED: answers missing", "bold yellow"),
}
TONE = {**{d: style for d, (_, style) in VERDICT.items()}, "contested": "bold magenta"}
"""The style of each verdict class (wording.tone): a decision that is not robust is never green."""


class Hanging:
    """`lead` (a bullet, a number, an indent) then `body`, whose wrapped lines start under its
    own first character: a list item keeps its indent at any width."""

    def __init__(self, lead: Union[str, Text], body: RenderableType) -> None:
        self.lead = lead if isinstance(lead, Text) else Text(lead)
        self.body = body

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        width = self.lead.cell_len
        inner = options.update_width(max(options.max_width - width, 10))
        lead = list(self.lead.render(console))
        for number, line in enumerate(console.render_lines(self.body, inner, pad=False)):
            yield from lead if number == 0 else (Segment(" " * width),)
            yield from line
            yield Segment.line()


class Fitted:
    """A table that keeps its ids whole: when its narrowest rendering (ids in columns that never
    wrap) is wider than the width, it is drawn without the padding inside its cells."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        table = self.table
        if console.measure(table, options=options.update_width(1 << 20)).minimum > options.max_width:
            table = copy.copy(table)
            table.padding = (0, 0)
        yield table


def whole(text: str, style: str = "") -> Text:
    """A line that is never wrapped or cut, whatever the width (a witness to copy whole): the
    console prints it with crop=False."""
    return Text(text, style=style, no_wrap=True, overflow="ignore")


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
        f"\nDecided under the {policy.edition_words()}" if policy.dated else "",
        "\nPatient ",
        (printable(decision.patient), "bold"),
        ": ",
        (headline(decision), TONE[tone(decision)]),
    )
    parts: list[RenderableType] = [header]
    urgent = urgent_note(decision)
    if urgent:
        parts.append(Text(f"⚠ {urgent}", style="bold yellow"))
    for conflict in decision.conflicts:
        parts.append(Text(f"⚑ {conflict_words(conflict, rules)}", style="magenta"))
    if decision.contested:
        parts.append(Text(f"⚑ {contested_summary(decision)}", style="magenta"))
    for stated in decision.filled:
        parts.append(Text(f"ⓘ {filled_words(stated, rules)}"))
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
        title = "Readings of the policy text under which the decision differs (the ICB must confirm):"
        parts.append(Text(title, style="bold magenta"))
        parts += [Hanging("  ⚑ ", Text(contest_line(c, policy))) for c in decision.contested]
    for fields, title, style in (
        (decision.missing, "Still needed to decide:", "bold yellow"),
        (decision.to_settle, "Answers that could settle the reading:", "bold magenta"),
    ):
        if fields:
            parts.append(Text(title, style=style))
            for field in fields:
                question = Text.assemble((rules.fields[field].question, "bold"), (f"  [{field}]", "dim"))
                caveats = [Hanging("  ", Text(c, style="yellow")) for c in rules.caveats(field, [policy])]
                parts.append(Hanging("  • ", Group(question, *caveats)))
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


def policies_table(rules: RuleSet, today: datetime.date) -> Fitted:
    """The policies; an id (typed into every command) and a reference are never wrapped."""
    table = _table("Policies")
    for column in ("id", "reference"):
        table.add_column(column, no_wrap=True)
    dated = any(p.dated for p in rules.policies.values())  # editions: their family and days
    if dated:
        table.add_column("family", no_wrap=True)
        table.add_column("in force", overflow="fold")
    for column in ("title", "review", "commissioner"):
        table.add_column(column, overflow="fold")
    for policy in rules.editions():
        due = policy.review_due(today)
        review = Text(str(policy.review))
        if due:
            review.append(f" ({due})", style="bold red")
        edition = [Text(policy.family), Text(policy.edition_words().split("in force ", 1)[1])]
        table.add_row(
            Text(policy.id),
            Text(policy.reference),
            *(edition if dated else []),
            Text(policy.title),
            review,
            Text(policy.commissioner),
        )
    return Fitted(table)


def print_all(console: Console, views: Iterable[RenderableType]) -> None:
    for index, view in enumerate(views):
        if index:
            console.print()
        console.print(view)


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def findings_view(findings: Sequence[Finding]) -> Group:
    """The findings by severity as a table, then each in full: message, sentence, witness."""
    from ..engines.analysis import SEVERITIES

    if not findings:
        return Group(Text("No findings.", style="bold green"))
    counts = Counter(f.severity for f in findings)
    summary = ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in SEVERITIES if counts[s])
    table = _table(f"Findings: {summary}")
    for column in ("#", "severity", "kind", "policy"):
        table.add_column(column, no_wrap=True)
    table.add_column("requirements", min_width=_longest(r for f in findings for r in f.requirements))
    details: list[RenderableType] = []
    for number, finding in enumerate(findings, 1):
        style = SEVERITY_STYLE[finding.severity]
        table.add_row(
            str(number),
            Text(finding.severity, style=style),
            Text(finding.kind),
            Text(finding.policy or "-"),
            Text(", ".join(finding.requirements) or "-"),
        )
        lead = Text(f"[{number}] ", style="bold")
        details.append(Hanging(lead, Text.assemble((finding.kind, style), " ", printable(finding.message))))
        if finding.quote:
            details.append(
                Hanging("    ", Text(f"policy text: “{printable(finding.quote)}”", style="italic"))
            )
        if finding.file:
            where = f"{finding.file}:{finding.line}" if finding.line else finding.file
            details.append(Hanging("    ", Text(f"at {printable(where)}")))
        if finding.witness is not None:
            details.append(witness_line(finding.witness))
    return Group(Fitted(table), Text(), *details)


def witness_line(witness: dict[str, object]) -> Text:
    """`    witness: {...}`, on one line however wide: copied from the terminal, it is valid JSON."""
    return whole(f"    witness: {printable(json.dumps(witness, ensure_ascii=False))}", style="dim")


def _longest(words: Iterable[str]) -> int:
    """The width of the longest of `words` (ids a column must not split), at least 1."""
    return max((len(w) for w in words), default=1)


def cohort_difference_view(summary: CohortDifference, source: str) -> Group:
    """What the new policy does to a cohort: the patients decided otherwise, by class, with the
    requirements that changed them most often."""
    from ..engines.cohort_difference import CLASSES

    heading = Text.assemble(
        (f"{summary.old.id} → {summary.new.id}", "bold"),
        f" on {printable(source)}: {summary.patients:,} patients, "
        f"{summary.patients - summary.unchanged:,} decided otherwise"
        + (f", {counted(summary.errors, 'bad line', 'bad lines')}" if summary.errors else ""),
    )
    table = _table()
    table.add_column("change", no_wrap=True)
    table.add_column("patients", no_wrap=True, justify="right")
    table.add_column("requirements that changed them", overflow="fold")
    for kind in CLASSES:
        found = summary.requirements.get(kind, Counter())
        said = ", ".join(f"{r} {n:,}" for r, n in found.most_common())
        table.add_row(kind.replace("_", " "), f"{summary.counts[kind]:,}", Text(said or "-"))
    table.add_row("unchanged", f"{summary.unchanged:,}", Text(""))
    return Group(heading, Fitted(table))


def comparison_view(comparison: Comparison) -> Group:
    """The classes of patients two policies decide differently, largest first."""
    first, second = comparison.first.label, comparison.second.label
    affected = sum(d.profiles for d in comparison.differences)
    classes = len(comparison.differences)
    heading = Text.assemble(
        (f"{first} vs {second}: ", "bold"),
        f"{counted(classes, 'class', 'classes')} of patients decided differently, "
        f"{affected:,} of {comparison.profiles:,} fully known profiles",
    )
    if not comparison.differences:
        return Group(heading, Text("The two decide every patient alike.", style="bold green"))
    table = _table()
    table.add_column("#", no_wrap=True)
    table.add_column(first, overflow="fold")
    table.add_column(second, overflow="fold")
    ids = (r for d in comparison.differences for r in d.requirements)
    table.add_column("difference made by", min_width=_longest(ids))
    table.add_column("profiles", no_wrap=True, justify="right")
    details: list[RenderableType] = []
    for number, difference in enumerate(comparison.differences, 1):
        table.add_row(
            str(number),
            Text(difference.first.replace("_", " ")),
            Text(difference.second.replace("_", " ")),
            Text(", ".join(difference.requirements) or "-"),
            f"{difference.profiles:,}",
        )
        details.append(Hanging(Text(f"[{number}] ", style="bold"), Text(printable(difference.message))))
        details.append(witness_line(difference.witness))
    return Group(heading, Fitted(table), Text(), *details)


def check_view(report: Report) -> Group:
    """Each step passed or failed, then every failure with the file and line to fix."""
    from ..engines.check import STEPS

    table = _table(f"llr-asp check: {'PASSED' if report.passed else 'FAILED'}")
    for column in ("step", "checked", "failed"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it checks", overflow="fold")
    for step, description in STEPS.items():
        cases = [c for c in report.cases if c.step == step]
        failed = sum(1 for c in cases if c.failures)
        mark = Text("✘ " + step, style="red") if failed else Text("✔ " + step, style="green")
        if not cases:
            mark = Text("- " + step, style="dim")
        table.add_row(mark, str(len(cases)), str(failed), description)
    lines: list[RenderableType] = []
    if report.coverage is not None:
        lines.append(Text(f"Coverage: {report.coverage:.1%} of requirements met and not met by examples"))
        lines += [Hanging("  ", Text(f"uncovered: {printable(u)}", style="yellow")) for u in report.uncovered]
    for case, failure in report.failures():
        where = f"{failure.file}:{failure.line}" if failure.file and failure.line else failure.file or ""
        lines.append(
            Hanging(Text("✘ ", style="red"), Text.assemble((f"{case.step} ", "bold"), printable(case.name)))
        )
        if where:
            lines.append(Hanging("    ", Text(printable(where), style="cyan")))
        lines.append(Hanging("    ", Text(printable(failure.message))))
    lines += [Hanging(Text("note: ", style="dim"), Text(printable(n), style="dim")) for n in report.notices]
    return Group(Fitted(table), *lines)


def whatif_view(answer: WhatIf, rules: RuleSet) -> Group:
    """The smallest sets of changes that would make the patient eligible, or why none can; first,
    any reading of the policy under which the patient is eligible as the record stands."""
    policy = answer.policy
    lines: list[RenderableType] = [
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
        lines.append(Text(certain_words(answer, rules)))
    withheld = withheld_words(answer, rules)
    if withheld:
        lines.append(Text(f"⚠ {withheld}", style="bold yellow"))
    if answer.decision != "eligible" and answer.blocker is not None:
        lines.append(Text(cannot_words(answer, rules)))
        for _, statement in answer.blocker.assumptions:
            lines.append(Hanging("  ", Text(f"Not without contradicting the domain assumption: {statement}")))
    elif answer.decision != "eligible" and answer.counterfactuals:
        size = len(answer.counterfactuals[0])
        fields = f"{size} field{'s' if size > 1 else ''} each"
        lines.append(Text(f"Smallest changes that would make the patient eligible ({fields}):"))
        for number, changes in enumerate(answer.counterfactuals, 1):
            line = Text("Eligible if ")
            for index, (words, caution) in enumerate(set_words(changes, rules)):
                line.append("; and " if index else "")
                line.append(words, style="bold yellow" if caution else "")
            lines.append(Hanging(f"  {number}. ", line))
        resting = resting_words(answer, rules)
        if resting:
            lines.append(Text(f"ⓘ {resting}"))
        lines.append(Text(CHANGE_KEY, style="dim"))
    steps = steps_words(answer, rules)
    if steps:
        lines.append(Text(steps))
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
    lines: list[RenderableType] = [
        Text.assemble(
            (f"{policy.title} ({policy.reference}): ", "bold"),
            (headline(decision), TONE[tone(decision)]),
        )
    ]
    urgent = urgent_note(decision)
    if urgent:  # before any question: an urgent patient is never only "waiting for answers"
        lines.append(Text(f"⚠ {urgent}", style="bold yellow"))
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
    elif decision.contested or decision.disputed:
        lines.append(Text("Nothing more to ask: no answer can settle the reading; the ICB must confirm it."))
    elif not decision.robust:  # resting on values no one confirmed (asked first: `Interviewer.next`)
        lines.append(Text(contested_summary(decision)))
    else:  # (a route it may meet is still to find out: the urgent line above says what)
        route = urgent_route(decision)
        later = (
            " for its funding; find out what the urgent line above asks."
            if route and route[1] == "find out"
            else "."
        )
        lines.append(Text(f"Decided under every reading of the policy: nothing more to ask{later}"))
    return Group(*lines)


def question_text(question: Question) -> Group:
    """`What is the patient's pain grade?` with its field and the answers it takes, each line
    indented however it wraps."""
    lines = [Hanging("  ", Text.assemble((question.text, "bold"), f"  [{question.field}]"))]
    if question.choices is None:
        answers = "a number"
    elif question.type == "bool":
        answers = "yes / no"
    else:
        answers = " / ".join(f"{n}. {show(c)}" for n, c in enumerate(question.choices, 1))
    lines += [Hanging("  ", Text(f"Note: {caveat}", style="yellow")) for caveat in question.caveats]
    lines.append(Hanging("  ", Text(f"Answer: {answers}, or unknown", style="dim")))
    return Group(*lines)


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
    """Per policy: the patients on an urgent route first, how many patients got each decision,
    the funnel through its criteria, the requirements most often not met, the fields most often
    missing, with bars; then the bad lines. Records that named no policy and were decided for
    every policy are said first."""
    parts: list[RenderableType] = []
    note = unnamed_note(summary.unnamed, list(summary.rules.policies))
    if note:
        parts.append(Text(note, style="bold"))
    for policy in summary.policies():
        decisions = summary.decisions[policy]
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
        said = urgent_summary(f"{policy} ({reference})", summary.urgent_json(policy))
        if said:  # before the decisions: these patients must not wait
            parts.append(Text(said, style="bold red"))
        parts.append(table)
        parts.append(funnel_text(summary, policy))
        requirements = summary.rules.policies[policy].requirements
        rows = {
            "Stopped by (patients each requirement refused or left undetermined; stopped_by)": [
                (n, f"{r}  {requirements[r].label}") for r, n in summary.stopped_by[policy].most_common()
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
                parts.append(Text(f"{title}:", style="bold"))
                scale = max(n for n, _ in counts)
                for count, name in counts:
                    drawn = bar([(count, "█", "blue")], scale)
                    lead = Text("  ").append_text(drawn).append(" " * (BAR - len(drawn)) + f" {count:>7}  ")
                    parts.append(Hanging(lead, Text(printable(name))))
    if summary.error_count:
        count = summary.error_count
        parts.append(Text(counted(count, "bad line"), style="bold red"))
        parts += [Hanging("  ", Text(f"line {e.line}: {printable(e.error)}")) for e in summary.errors[:5]]
        if summary.error_count > 5:
            parts.append(Text('  … every one is in the output, as {"line", "error"}'))
    else:
        parts.append(Text("No bad lines.", style="green"))
    return Group(*parts)
