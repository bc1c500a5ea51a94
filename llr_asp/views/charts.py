"""Pictures of cohorts and comparisons: a funnel per policy (how many patients pass each part of
the decision, in the policy's order, how many it stops, how many it leaves open), bars of counts
(the patients each contested reading decides otherwise, the answers most often missing), and the
classes of patients a `diff` finds. SVG by llr_asp.views.svg: every count is written beside its bar
with a symbol, so nothing is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.decision import plain
from .pictures import STATUS_FILL, STATUS_INK, ident
from .svg import Drawing, Element, element, text, text_width, wrap

INK, GREY, LINE = "#212b32", "#4c6272", "#768692"
SIZE = 13
LEADING = 16
MARGIN = 12
LABEL_WIDTH = 340
BAR_WIDTH = 240
GAP = 10
BAR_HEIGHT = 20
SOLID = {"met": "#007f3b", "not_met": "#d5281b", "unknown": "#ffb81c", "count": "#005eb8"}


@dataclass(frozen=True)
class Segment:
    """A part of a bar: how many, drawn how, and said how."""

    count: int
    status: str  # met | not_met | unknown | count
    words: str  # e.g. "✔ 21 pass"


@dataclass(frozen=True)
class Bar:
    label: str  # bold, first
    note: str  # after the label, plain
    segments: tuple[Segment, ...]
    apart: bool = False  # drawn after a gap, apart from the rows above


WIDE = 860  # a picture's width on a wide screen (the page's column), px
NARROW = 310  # and on a phone's


def draw_bars(
    bars: Sequence[Bar],
    scale: int,
    title: str,
    description: str,
    key: str,
    legend: Sequence[str],
    heading: bool = False,
    width: float | None = None,
) -> str:
    """Horizontal bars to one scale (`scale` patients fill a bar), labels on the left, the
    counts in words on the right, each wrapped to stay within the picture; `heading`: the title
    drawn above them too (for a picture that stands alone, not under a heading of its page).
    `width`: drawn narrow, within that many pixels: each label above its bar, the counts below."""
    narrow = width is not None
    total = width if width is not None else float(WIDE)
    label_width = total - 2 * MARGIN if narrow else LABEL_WIDTH
    bar_x = float(MARGIN) if narrow else float(MARGIN + LABEL_WIDTH + GAP)
    bar_width = total - 2 * MARGIN if narrow else float(BAR_WIDTH)
    said_x0 = float(MARGIN) if narrow else bar_x + bar_width + GAP
    said_room = total - MARGIN - said_x0
    shapes: list[Element] = []
    y = float(MARGIN)
    if heading:
        for line in wrap(title, total - 2 * MARGIN, SIZE + 2, True):
            shapes.append(text(MARGIN, y + 14, line, SIZE + 2, bold=True))
            y += LEADING + 2
        y += GAP + 4
    for bar in bars:
        if bar.apart:
            y += GAP * 1.5
            rule = f"M{MARGIN} {y - GAP:g} H{bar_x + bar_width:g}"
            shapes.append(element("path", d=rule, stroke=LINE, stroke_dasharray="3 3"))
        heads, lines = _label_lines(bar.label, bar.note, label_width)
        for n, line in enumerate(heads):
            shapes.append(text(MARGIN, y + 14 + n * LEADING, line, SIZE, bold=True))
        for n, line in enumerate(lines):
            row = len(heads) - 1 + n
            indent = text_width(heads[-1] + " ", SIZE, True) if n == 0 else 0
            if line:
                shapes.append(text(MARGIN + indent, y + 14 + row * LEADING, line, SIZE))
        label_height = (len(heads) + len(lines) - 1) * LEADING
        top = y + label_height + 4 if narrow else y
        x = bar_x
        track = {"fill": "#f0f4f5", "stroke": "#d8dde0"}
        shapes.append(element("rect", x=bar_x, y=top, width=bar_width, height=BAR_HEIGHT, **track))
        for segment in bar.segments:
            part = bar_width * segment.count / scale if scale else 0
            if segment.count and part < 2:
                part = 2  # a count too small for the scale still shows
            if part:
                frame: dict[str, Any] = {"fill": STATUS_FILL.get(segment.status, "#dbe7f4")}
                frame["stroke"] = SOLID[segment.status]
                if segment.status == "unknown":
                    frame["stroke_dasharray"] = "4 2"
                shapes.append(element("rect", x=x, y=top, width=part, height=BAR_HEIGHT, **frame))
            x += part
        said_x, said_y = said_x0, (top + BAR_HEIGHT + 14 if narrow else y + 14)
        for segment in bar.segments:
            if not segment.count and segment.status != "count":
                continue
            colour = STATUS_INK.get(segment.status, INK)
            for words in wrap(segment.words, said_room, SIZE, True):  # a long one wraps, as a whole
                used = text_width(words, SIZE, True)
                if said_x > said_x0 and said_x + used > said_x0 + said_room:
                    said_x, said_y = said_x0, said_y + LEADING
                shapes.append(text(said_x, said_y, words, SIZE, bold=True, fill=colour))
                said_x += used + 12
        bottom = said_y + 6 if narrow else max(y + BAR_HEIGHT, y + label_height + 16, said_y + 6)
        y = bottom + GAP
    for said in legend:
        for line in wrap(said, total - 2 * MARGIN, SIZE - 1):
            shapes.append(text(MARGIN, y + 12, line, SIZE - 1, fill=GREY))
            y += LEADING
    drawing = Drawing(total, y + MARGIN, title, description, key + ("-narrow" if narrow else ""))
    drawing.extend(shapes)
    return drawing.render()


def _label_lines(label: str, note: str, width: float) -> tuple[list[str], list[str]]:
    """A bold label, broken after each `+` (a combination of readings) where it is too long,
    and its note's lines: the first after the label's last line, the rest below it."""
    heads: list[str] = []
    pieces = [
        (p, n > 0 and m == 0) for n, word in enumerate(label.split()) for m, p in enumerate(_plus(word))
    ]
    for piece, spaced in pieces:
        joined = (heads[-1] + (" " if spaced else "") + piece) if heads else piece
        if heads and text_width(joined, SIZE, True) <= width:
            heads[-1] = joined
        else:
            heads.append(piece)
    heads = heads or [""]
    room = width - text_width(heads[-1] + " ", SIZE, True)
    words = note.split()
    first: list[str] = []
    while words and text_width(" ".join([*first, words[0]]), SIZE) <= room:
        first.append(words.pop(0))
    return heads, [" ".join(first), *wrap(" ".join(words), width, SIZE)]


def _plus(word: str) -> list[str]:
    """A word broken after each `+`: `A+B` -> `A+`, `B`."""
    parts = word.split("+")
    return [p + "+" for p in parts[:-1]] + [parts[-1]]


def both(draw: Any, *args: Any, **kwargs: Any) -> str:
    """A picture drawn wide and narrow, for a page whose stylesheet shows the one that fits."""
    return (
        f'<div class="wide">{draw(*args, **kwargs)}</div>'
        f'<div class="narrow">{draw(*args, **kwargs, width=NARROW)}</div>'
    )


def funnel(summary: Any, policy: str, width: float | None = None) -> str:
    """How the cohort goes through the policy's decision, step by step: at each part of the
    decision (in the order the policy lists them), how many patients it reaches, passes (✔),
    stops (✘) and leaves open (?, drawn apart: undetermined, or refused by a later step)."""
    declared = summary.rules.policies[policy]
    steps = summary.funnel_json(policy)
    decisions = summary.decisions[policy]
    total = sum(decisions.values())
    bars = [Bar("All patients", "decided by the policy", (Segment(total, "count", f"{total:,}"),))]
    for step in steps:
        open_words = f"? {step['unknown']:,} open"
        if step["unknown_refused_later"]:
            open_words += f" ({step['unknown_refused_later']:,} refused later)"
        bars.append(
            Bar(
                step["requirement"],
                step["label"],
                (
                    Segment(step["met"], "met", f"✔ {step['met']:,} pass"),
                    Segment(step["not_met"], "not_met", f"✘ {step['not_met']:,} stop"),
                    Segment(step["unknown"], "unknown", open_words),
                ),
            )
        )
    eligible = decisions.get("eligible", 0)
    undetermined = decisions.get("undetermined", 0)
    refused = decisions.get("not_eligible", 0)
    bars += [
        Bar("Eligible", "", (Segment(eligible, "met", f"✔ {eligible:,} eligible"),)),
        Bar("Not eligible", "", (Segment(refused, "not_met", f"✘ {refused:,} not eligible"),), apart=True),
        Bar("Undetermined", "answers missing", (Segment(undetermined, "unknown", f"? {undetermined:,}"),)),
    ]
    description = (
        f"Of {total:,} patients: "
        + "; ".join(
            f"{s['requirement']} reached by {s['reached']:,}, passed by {s['met']:,}, "
            f"stops {s['not_met']:,}, leaves {s['unknown']:,} open"
            for s in steps
        )
        + f". {eligible:,} eligible, {refused:,} not eligible, {undetermined:,} undetermined."
    )
    legend = [
        "A patient reaches a step when every step before it is met. ✔ pass: met · ✘ stop: not met ·",
        "? open: unknown, shown apart (undetermined, or refused by a later step). Bars to one scale.",
    ]
    return draw_bars(
        bars,
        total,
        f"{declared.reference}: how {total:,} patients go through the criteria",
        description,
        f"funnel-{ident(policy)}",
        legend,
        width=width,
    )


def counts(
    title: str,
    rows: Sequence[tuple[str, str, int]],
    key: str,
    unit: str,
    legend: str,
    heading: bool = False,
    width: float | None = None,
    description: str | None = None,
) -> str:
    """Bars of counts, largest first as given: (label, note, count) each, to the largest."""
    scale = max((n for _, _, n in rows), default=0)
    bars = [Bar(label, note, (Segment(n, "count", _counted(n, unit)),)) for label, note, n in rows]
    said = description or "; ".join(f"{label}: {_counted(n, unit)}" for label, _, n in rows) or "none"
    return draw_bars(bars, scale, title, said, key, [legend, "Bars to the largest."], heading, width)


def _counted(n: int, unit: str) -> str:
    """`1 patient`, `2 patients` (unit: the plural)."""
    return f"{n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


def contested(summary: Any, policy: str, width: float | None = None) -> str:
    """The patients each contested reading would decide otherwise: each bar named by the
    readings' ids, then each alternative's id and what it says."""
    readings = summary.rules.policies[policy].readings
    rows = []
    for (label, described), n in summary.contested[policy].most_common():
        # a label names the points read otherwise (C4.cut-off, or A+B for a combination)
        said = []
        for reading, words in zip(label.split("+"), described.split(" And: ")):
            point = readings.get(reading)
            aid = next((a.id for a in point.alternatives if a.text == words), "?") if point else "?"
            said.append(f"{aid}: {words}")
        rows.append((label, " · ".join(said), n))
    reference = summary.rules.policies[policy].reference
    return counts(
        f"{reference}: patients each contested reading would decide otherwise",
        rows,
        f"contested-{ident(policy)}",
        "patients",
        "Each bar: the patients of the cohort whose decision differs under that alternative reading.",
        width=width,
    )


def missing(summary: Any, policy: str, limit: int = 10, width: float | None = None) -> str:
    """The answers most often missing from undetermined decisions, each asked as the rules ask it."""
    fields = summary.rules.fields
    counted = summary.missing[policy].most_common(limit)
    rows = [(fields[f].question if f in fields else f, "", n) for f, n in counted]
    reference = summary.rules.policies[policy].reference
    return counts(
        f"{reference}: the answers most often missing",
        rows,
        f"missing-{ident(policy)}",
        "patients",
        "Each bar: the undetermined patients for whom this answer could still change the decision.",
        width=width,
        description="; ".join(
            f"{q} ({f}): {_counted(n, 'patients')}" for (q, _, n), (f, _) in zip(rows, counted)
        )
        or "none",
    )


def changes(summary: Any) -> str:
    """What a new policy (an edition) does to a cohort (`diff OLD NEW --cohort`): a bar per class
    of change, named by the requirements that changed it most often."""
    from ..engines.cohort_difference import CLASSES

    rows = [
        (
            kind.replace("_", " "),
            f"({', '.join(r for r, _ in summary.requirements[kind].most_common(3))})"
            if kind in summary.requirements
            else "",
            summary.counts[kind],
        )
        for kind in CLASSES
    ]
    changed = summary.patients - summary.unchanged
    return counts(
        f"{summary.old.id} → {summary.new.id}: {changed:,} of {summary.patients:,} patients "
        "decided otherwise",
        rows,
        "changes",
        "patients",
        f"Each bar: the patients {summary.new.id} decides otherwise than {summary.old.id}, by what "
        "changed, with the requirements that changed them most often.",
        heading=True,
    )


def differences(comparison: Any) -> str:
    """The classes of patients two policies, versions or readings decide differently."""
    first, second = comparison.first.label, comparison.second.label
    rows = [
        (
            f"{plain(d.first)} → {plain(d.second)}",
            f"({', '.join(d.requirements) or 'the structure'})",
            d.profiles,
        )
        for d in comparison.differences
    ]
    affected = sum(d.profiles for d in comparison.differences)
    return counts(
        f"{first} vs {second}: {affected:,} of {comparison.profiles:,} fully known profiles "
        "decided differently",
        rows,
        "differences",
        "profiles",
        f"Each bar: a class of patients, decided first by {first}, then by {second}, "
        "and what makes the difference.",
        heading=True,
    )
