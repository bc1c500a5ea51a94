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
LABEL_WIDTH = 230
BAR_WIDTH = 280
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


def draw_bars(
    bars: Sequence[Bar],
    scale: int,
    title: str,
    description: str,
    key: str,
    legend: Sequence[str],
    heading: bool = False,
) -> str:
    """Horizontal bars to one scale (`scale` patients fill a bar), labels on the left, the
    counts in words on the right; `heading`: the title drawn above them too (for a picture that
    stands alone, not under a heading of its page)."""
    shapes: list[Element] = []
    y = float(MARGIN)
    right = 0.0
    if heading:
        shapes.append(text(MARGIN, y + 14, title, SIZE + 2, bold=True))
        right = MARGIN + text_width(title, SIZE + 2, True)
        y += LEADING + GAP + 4
    bar_x = MARGIN + LABEL_WIDTH + GAP
    for bar in bars:
        if bar.apart:
            y += GAP * 1.5
            rule = f"M{MARGIN} {y - GAP:g} H{bar_x + BAR_WIDTH}"
            shapes.append(element("path", d=rule, stroke=LINE, stroke_dasharray="3 3"))
        lines = _label_lines(bar.label, bar.note)
        height = max(BAR_HEIGHT, len(lines) * LEADING)
        shapes.append(text(MARGIN, y + 14, bar.label, SIZE, bold=True))
        for n, line in enumerate(lines):
            indent = text_width(bar.label + " ", SIZE, True) if n == 0 else 0
            if line:
                shapes.append(text(MARGIN + indent, y + 14 + n * LEADING, line, SIZE))
        x = float(bar_x)
        track = {"fill": "#f0f4f5", "stroke": "#d8dde0"}
        shapes.append(element("rect", x=bar_x, y=y, width=BAR_WIDTH, height=BAR_HEIGHT, **track))
        for segment in bar.segments:
            width = BAR_WIDTH * segment.count / scale if scale else 0
            if segment.count and width < 2:
                width = 2  # a count too small for the scale still shows
            if width:
                frame: dict[str, Any] = {"fill": STATUS_FILL.get(segment.status, "#dbe7f4")}
                frame["stroke"] = SOLID[segment.status]
                if segment.status == "unknown":
                    frame["stroke_dasharray"] = "4 2"
                shapes.append(element("rect", x=x, y=y, width=width, height=BAR_HEIGHT, **frame))
            x += width
        said_x = float(bar_x + BAR_WIDTH + GAP)
        for segment in bar.segments:
            if not segment.count and segment.status != "count":
                continue
            colour = STATUS_INK.get(segment.status, INK)
            shapes.append(text(said_x, y + 14, segment.words, SIZE, bold=True, fill=colour))
            said_x += text_width(segment.words, SIZE, True) + 12
        right = max(right, said_x)
        y += height + GAP
    for line in legend:
        shapes.append(text(MARGIN, y + 12, line, SIZE - 1, fill=GREY))
        right = max(right, MARGIN + text_width(line, SIZE - 1) + MARGIN)
        y += LEADING
    drawing = Drawing(max(right, bar_x + BAR_WIDTH) + MARGIN, y + MARGIN, title, description, key)
    drawing.extend(shapes)
    return drawing.render()


def _label_lines(label: str, note: str) -> list[str]:
    """The note's lines beside a bold label: the first after the label, the rest below it."""
    room = LABEL_WIDTH - text_width(label + " ", SIZE, True)
    words = note.split()
    first: list[str] = []
    while words and text_width(" ".join([*first, words[0]]), SIZE) <= room:
        first.append(words.pop(0))
    return [" ".join(first), *wrap(" ".join(words), LABEL_WIDTH, SIZE)]


def funnel(summary: Any, policy: str) -> str:
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
    )


def counts(
    title: str, rows: Sequence[tuple[str, str, int]], key: str, unit: str, legend: str, heading: bool = False
) -> str:
    """Bars of counts, largest first as given: (label, note, count) each, to the largest."""
    scale = max((n for _, _, n in rows), default=0)
    bars = [Bar(label, note, (Segment(n, "count", _counted(n, unit)),)) for label, note, n in rows]
    description = "; ".join(f"{label}: {_counted(n, unit)}" for label, _, n in rows) or "none"
    return draw_bars(bars, scale, title, description, key, [legend, "Bars to the largest."], heading)


def _counted(n: int, unit: str) -> str:
    """`1 patient`, `2 patients` (unit: the plural)."""
    return f"{n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


def contested(summary: Any, policy: str) -> str:
    """The patients each contested reading would decide otherwise."""
    readings = summary.rules.policies[policy].readings
    rows = []
    for (label, described), n in summary.contested[policy].most_common():
        # a label names the points read otherwise (C4.cut-off, or A+B for a combination)
        ids = []
        for reading, said in zip(label.split("+"), described.split(" And: ")):
            point = readings.get(reading)
            ids.append(next((a.id for a in point.alternatives if a.text == said), "?") if point else "?")
        rows.append((label, f"({' + '.join(ids)})", n))
    reference = summary.rules.policies[policy].reference
    return counts(
        f"{reference}: patients each contested reading would decide otherwise",
        rows,
        f"contested-{ident(policy)}",
        "patients",
        "Each bar: the patients of the cohort whose decision differs under that alternative reading.",
    )


def missing(summary: Any, policy: str, limit: int = 10) -> str:
    """The answers most often missing from undetermined decisions."""
    rows = [(field, "", n) for field, n in summary.missing[policy].most_common(limit)]
    reference = summary.rules.policies[policy].reference
    return counts(
        f"{reference}: the answers most often missing",
        rows,
        f"missing-{ident(policy)}",
        "patients",
        "Each bar: the undetermined patients for whom this answer could still change the decision.",
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
