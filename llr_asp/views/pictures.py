"""The requirement tree as a picture, drawn from the rules: a policy's (every requirement, its
form, the contested points and text defects) and one patient's decision (each requirement met,
not met or unknown, by colour and by a symbol and a word). SVG by llr_asp.views.svg, and Graphviz
source for analysts who use it.

The tree is drawn as an outline: one row per requirement, parts indented under their parent
and joined to it by a line, so long labels stay readable at the width of a page. A requirement
under two parents (SFI, under C2 and C4) is drawn in full at its first place and as a one-line
reference at the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..core.decision import Decision, Node
from ..core.ruleset import Policy, Requirement, RuleSet, show
from .svg import Drawing, Element, element, text, text_width, wrap
from .wording import evidence_words, headline

SIGNS = {"eq": "=", "ne": "≠", "ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
FORM_WORDS = {"all_of": "ALL OF", "any_of": "ANY OF", "condition": "IF"}
STATUS_WORDS = {"met": "met", "not_met": "not met", "unknown": "unknown"}
STATUS_MARKS = {"met": "✔", "not_met": "✘", "unknown": "?"}
STATUS_FILL = {"met": "#e3f2e8", "not_met": "#fbe4e2", "unknown": "#fff1cc"}
STATUS_INK = {"met": "#00662f", "not_met": "#b1221a", "unknown": "#6b4c00"}
INK, GREY, LINE, PURPLE, DEFECT = "#212b32", "#4c6272", "#768692", "#330072", "#a0210f"

SIZE = 13  # the label's font size, px
SMALL = 11  # the form word and the markers
LEADING = 17  # line to line
PAD = 7  # inside a box
INDENT = 26
MARGIN = 12
GAP = 8  # between rows
LABEL_WIDTH = 470  # labels wrap past this
NARROW_INDENT = 12  # drawn narrow (for a phone's width)


@dataclass(frozen=True)
class Row:
    """One requirement drawn at one place of the tree."""

    depth: int
    parent: int | None  # the row of its parent
    id: str
    form: str  # all_of | any_of | condition
    label: str
    detail: str | None  # a condition's test, or the patient's value against it
    status: str | None = None  # in a decision: met | not_met | unknown
    adopted: bool = False  # the root of a decision that is not robust: its status on the adopted reading only
    contested: tuple[str, ...] = ()  # the contested points (readings) of its sentence
    defects: int = 0
    background: bool = False
    repeat: bool = False  # drawn in full at an earlier row


def test_words(requirement: Requirement) -> str | None:
    """A condition's test as people read it: `conservative.months ≥ 6`, `sex ≠ female`."""
    test = requirement.test
    return f"{test.field} {SIGNS[test.op]} {show(test.value)}" if test else None


def policy_rows(policy: Policy) -> list[Row]:
    """Every requirement of the policy, depth first in declared order."""
    rows: list[Row] = []
    seen: set[str] = set()

    def visit(rid: str, depth: int, parent: int | None) -> None:
        requirement = policy.requirements[rid]
        repeat = rid in seen
        seen.add(rid)
        rows.append(
            Row(
                depth,
                parent,
                rid,
                requirement.form,
                requirement.label,
                None if repeat else test_words(requirement),
                contested=tuple(r.id for r in policy.readings_of(rid)),
                defects=len(requirement.defects),
                background=requirement.background,
                repeat=repeat,
            )
        )
        here = len(rows) - 1
        if not repeat:
            for part in requirement.parts:
                visit(part, depth + 1, here)

    visit(policy.root, 0, None)
    return rows


def decision_rows(decision: Decision, rules: RuleSet | None = None) -> list[Row]:
    """The patient's tree: every requirement with its status and the values it used (in words,
    as the letter gives them, when `rules` are given; else by field path, for analysts)."""
    policy = decision.policy
    marked: dict[str, list[str]] = {}
    for contest in decision.contested:  # one alternative, or a combination
        for taken in contest.taken:
            marked.setdefault(taken.requirement, []).append(taken.reading)
    rows: list[Row] = []
    seen: set[str] = set()

    def visit(node: Node, depth: int, parent: int | None) -> None:
        requirement = policy.requirements.get(node.id)
        repeat = node.id in seen
        seen.add(node.id)
        detail = None
        if node.evidence and not repeat and rules is not None:
            detail = "; ".join(f"patient: {evidence_words(e, rules)}" for e in node.evidence)
        elif node.evidence and not repeat:
            detail = "; ".join(
                f"patient: {e.field} {'unknown' if e.value is None else '= ' + show(e.value)}, {e.needs()}"
                for e in node.evidence
            )
        rows.append(
            Row(
                depth,
                parent,
                node.id,
                requirement.form if requirement else ("condition" if node.evidence else "all_of"),
                node.label,
                detail,
                status=node.status,
                contested=tuple(dict.fromkeys(marked.get(node.id, []))),
                repeat=repeat,
                adopted=depth == 0 and not decision.robust,
            )
        )
        here = len(rows) - 1
        if not repeat:
            for child in node.children:
                visit(child, depth + 1, here)

    visit(decision.tree, 0, None)
    return rows


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float
    lines: list[str]  # the label, wrapped
    head: str  # what leads the first line: status, id and form word


def _head(row: Row) -> list[tuple[str, bool, float, str]]:
    """The pieces that lead a row's first line: (words, bold, size, colour)."""
    pieces: list[tuple[str, bool, float, str]] = []
    if row.status is not None and row.adopted:  # never a plain green tick over a contested verdict
        pieces.append((f"⚑ {STATUS_WORDS[row.status]} on the adopted reading", True, SIZE, PURPLE))
    elif row.status is not None:
        status = f"{STATUS_MARKS[row.status]} {STATUS_WORDS[row.status]}"
        pieces.append((status, True, SIZE, STATUS_INK[row.status]))
    pieces.append((row.id, True, SIZE, INK))
    if not row.repeat:
        pieces.append((FORM_WORDS[row.form], True, SMALL, GREY))
    return pieces


def _markers(row: Row) -> list[tuple[str, str]]:
    """What is said beside a row's box, each with its colour: never by colour alone."""
    markers: list[tuple[str, str]] = []
    if row.repeat:
        markers.append(("↑ drawn in full above", GREY))
    if row.contested:
        markers.append((f"⚑ contested: {', '.join(row.contested)}", PURPLE))
    if row.defects:
        markers.append((f"⚠ text defect{'s' if row.defects > 1 else ''}: {row.defects}", DEFECT))
    if row.background:
        markers.append(("from the background text", GREY))
    return markers


def draw_rows(
    rows: list[Row],
    title: str,
    description: str,
    ident: str,
    legend: list[str],
    links: dict[str, str] | None = None,
    width: float | None = None,
) -> str:
    """The rows as an outline tree, with the legend below it. `links`: per requirement id, where
    its box links to (an in-page anchor); `width`: draw narrow, within that many pixels (the
    label under the id, the marks inside the box), else wide (marks beside the box)."""
    shapes: list[Element] = []
    boxes: list[_Box] = []
    y = float(MARGIN)
    right = 0.0
    indent = INDENT if width is None else NARROW_INDENT
    for row in rows:
        x = MARGIN + row.depth * indent
        pieces = _head(row)
        lead = sum(text_width(words, size, bold) for words, bold, size, _ in pieces) + 8 * len(pieces)
        label = "as above" if row.repeat else row.label
        if width is None:
            lines = wrap(label, LABEL_WIDTH, SIZE) or [""]
            detail = wrap(row.detail, LABEL_WIDTH + lead - 8, SMALL + 1) if row.detail else []
            marks: list[tuple[str, str]] = []
            inner = max(
                lead + max(text_width(line, SIZE) for line in lines),
                max((text_width(line, SMALL + 1) for line in detail), default=0),
            )
        else:
            room = width - MARGIN - x - 2 * PAD
            lines = wrap(label, room, SIZE) or [""]
            detail = wrap(row.detail, room, SMALL + 1) if row.detail else []
            marks = [
                (line, colour)
                for words, colour in _markers(row)
                for line in wrap(words, room, SMALL + 1, True)
            ]
            inner = max(
                lead,
                max(text_width(line, SIZE) for line in lines),
                max((text_width(line, SMALL + 1) for line in detail), default=0),
                max((text_width(line, SMALL + 1, True) for line, _ in marks), default=0),
            )
            lines = ["", *lines]  # the id and form word have the first line to themselves
            lead = 0
        height = PAD * 2 + LEADING * (len(lines) + len(detail) + len(marks)) - 4
        box = _Box(x, y, inner + 2 * PAD, height, lines, "")
        boxes.append(box)
        drawn = list(_box_shapes(row, box, pieces, lead, detail))
        for n, (line, colour) in enumerate(marks):
            baseline = y + PAD + 12 + (len(lines) + len(detail) + n) * LEADING
            drawn.append(text(box.x + PAD, baseline, line, SMALL + 1, bold=True, fill=colour))
        marker_x = box.x + box.width + 10
        if width is None:
            for words, colour in _markers(row):
                drawn.append(text(marker_x, y + PAD + 12, words, SMALL + 1, bold=True, fill=colour))
                marker_x += text_width(words, SMALL + 1, True) + 14
        target = (links or {}).get(row.id)
        if target is not None:  # the box, its words and its marks: a link to the requirement's sentence
            shapes.append(element("a", *drawn, href=target, aria_label=f"{row.id}: {label}"))
        else:
            shapes += drawn
        right = max(right, marker_x)
        y += height + GAP
    shapes = [*_connectors(rows, boxes, indent), *shapes]
    y += 6
    for said in legend:
        for line in [said] if width is None else wrap(said, width - 2 * MARGIN, SMALL + 1):
            shapes.append(text(MARGIN, y + 12, line, SMALL + 1, fill=GREY))
            right = max(right, MARGIN + text_width(line, SMALL + 1) + 10)
            y += LEADING
    drawing = Drawing(right + MARGIN, y + MARGIN, title, description, ident)
    drawing.extend(shapes)
    return drawing.render()


def _box_shapes(
    row: Row, box: _Box, pieces: list[tuple[str, bool, float, str]], lead: float, detail: list[str]
) -> Iterator[Element]:
    contested = bool(row.contested)
    frame: dict[str, str | float] = {
        "fill": "#fff1cc" if row.adopted else STATUS_FILL[row.status] if row.status else "#ffffff",
        "stroke": PURPLE if contested else LINE,
        "stroke_width": 2.5 if contested else 1,
    }
    if contested:
        frame["stroke_dasharray"] = "6 3"
    if row.repeat:
        frame["stroke_dasharray"] = "2 3"
    yield element("rect", x=box.x, y=box.y, width=box.width, height=box.height, rx=4, **frame)
    baseline = box.y + PAD + 12
    x = box.x + PAD
    for words, bold, size, colour in pieces:
        yield text(x, baseline, words, size, bold=bold, fill=colour)
        x += text_width(words, size, bold) + 8
    for n, line in enumerate(box.lines):
        if not line:
            continue
        yield text(box.x + PAD + lead, baseline + n * LEADING, line, SIZE, fill=GREY if row.repeat else INK)
    for n, line in enumerate(detail):
        y = baseline + (len(box.lines) + n) * LEADING
        yield text(box.x + PAD, y, line, SMALL + 1, fill=GREY)


def _connectors(rows: list[Row], boxes: list[_Box], indent: float = INDENT) -> Iterator[Element]:
    """A line from each parent's box down its left side to each part."""
    for row, box in zip(rows, boxes):
        if row.parent is None:
            continue
        above = boxes[row.parent]
        spine = above.x + indent / 2
        middle = box.y + PAD + 8
        path = f"M{spine:g} {above.y + above.height:g} V{middle:g} H{box.x:g}"
        yield element("path", d=path, fill="none", stroke=LINE, stroke_width=1.5)


def _forms_said(policy: Policy) -> str:
    """The tree in words, for the picture's description: each requirement with parts."""
    said = []
    for rid, requirement in policy.requirements.items():
        if requirement.parts:
            joined = ", ".join(requirement.parts)
            said.append(f"{rid} is met when {'all' if requirement.form == 'all_of' else 'any'} of {joined}")
    return "; ".join(said)


def policy_tree(policy: Policy, links: dict[str, str] | None = None, width: float | None = None) -> str:
    """The requirement tree of `policy` as SVG: every requirement, its form, its contested
    points (outlined, ⚑) and text defects (⚠). `links`: per requirement, the anchor its box
    links to; `width`: drawn narrow, within that many pixels (draw_rows)."""
    rows = policy_rows(policy)
    contested = sorted({r.id for r in rows if r.contested})
    defects = sorted({r.id for r in rows if r.defects})
    description = (
        f"{len(policy.requirements)} requirements. {_forms_said(policy)}. "
        f"Contested readings at {', '.join(contested) or 'none'}; "
        f"text defects at {', '.join(defects) or 'none'}."
    )
    legend = [
        "ALL OF: every part must be met · ANY OF: one part is enough · IF: a test of one answer",
        "⚑ a contested reading (box outlined in dashes) · ⚠ a defect of the published sentence",
        "↑ a requirement under two parents, drawn in full at its first place",
    ]
    return draw_rows(
        rows,
        f"Requirement tree of {policy.reference}, {policy.title}",
        description,
        f"tree-{ident(policy.id)}" + ("" if width is None else "-narrow"),
        legend,
        links,
        width,
    )


def decision_tree(decision: Decision, rules: RuleSet | None = None) -> str:
    """One patient's decision as SVG: each requirement's status by colour and by a symbol and
    a word (✔ met, ✘ not met, ? unknown), the values it used, ⚑ where it rests on a contested
    reading."""
    rows = decision_rows(decision, rules)
    counts = {s: sum(1 for r in rows if r.status == s and not r.repeat) for s in STATUS_WORDS}
    policy = decision.policy
    said = headline(decision)  # qualified as every output says it: never a plain verdict that is contested
    description = (
        f"Decision: {said}. "
        + ", ".join(f"{n} requirements {STATUS_WORDS[s]}" for s, n in counts.items())
        + ". "
        + " ".join(
            f"{r.id} {STATUS_WORDS[r.status or 'unknown']}." for r in rows if not r.repeat and r.depth <= 1
        )
    )
    legend = [
        "✔ met (green) · ✘ not met (red) · ? unknown (amber) · ⚑ the decision rests on a contested reading",
        "ALL OF: every part must be met · ANY OF: one part is enough · IF: a test of one answer",
    ]
    return draw_rows(
        rows,
        f"{policy.reference} decision for {decision.patient}: {said}",
        description,
        f"decision-{ident(policy.id)}",
        legend,
    )


def ident(value: str) -> str:
    """An id attribute made of `value` (letters, digits and dashes)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", value).strip("-") or "x"


def policy_dot(policy: Policy) -> str:
    """The requirement tree as Graphviz source (`dot -Tsvg`): the same nodes and marks."""
    lines = [
        f"digraph {_dot(policy.id)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Liberation Sans", fontsize=11];',
        f"  label={_dot(f'{policy.reference} {policy.title}: requirement tree')}; labelloc=t;",
    ]
    for row in policy_rows(policy):
        if row.repeat:
            continue
        words = [f"{row.id}  {FORM_WORDS[row.form]}", row.label]
        if row.detail:
            words.append(row.detail)
        attributes = []
        if row.contested:
            words.append(f"⚑ contested: {', '.join(row.contested)}")
            attributes.append('style="rounded,dashed,bold", color="#330072"')
        if row.defects:
            words.append(f"⚠ text defect{'s' if row.defects > 1 else ''}: {row.defects}")
        if row.background:
            words.append("from the background text")
        label = "\\n".join(_dot_text(w) for w in words)
        extra = "".join(f", {a}" for a in attributes)
        lines.append(f'  {_dot(row.id)} [label="{label}"{extra}];')
    for rid, requirement in policy.requirements.items():
        style = "" if requirement.form == "all_of" else ' [style=dashed, label="or"]'
        lines += [f"  {_dot(rid)} -> {_dot(part)}{style};" for part in requirement.parts]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _dot(value: str) -> str:
    return f'"{_dot_text(value)}"'
