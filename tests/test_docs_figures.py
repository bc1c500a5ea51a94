"""The documentation's figures come from the scripts named beside them. Those that do not depend
on the machine (counts, questions asked, profiles a reading changes) are checked here, on the page
that states them (README.md, docs/*.md), against what those scripts print, so that the pages
cannot go stale when the rules or the questionnaire change; timings are the benchmarks' to
measure on the machine they name."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import pytest

from llr_asp.core.patient import validate
from llr_asp.engines.analysis import analyze
from llr_asp.engines.interview import Interviewer

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]
WORDS += ["thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
WORDS += [f"twenty-{w}" for w in WORDS[1:10]]


def said(page: str, pattern: str) -> re.Match[str]:
    """`pattern` in `page` (a path from the repository's root), its lines joined as one text."""
    found = re.search(pattern, " ".join((ROOT / page).read_text().split()))
    assert found, f"{page} no longer says {pattern!r}"
    return found


CLINICIANS, ANALYSTS = "docs/clinicians.md", "docs/policy-analysts.md"


def test_the_examples_and_contested_points_are_counted_right() -> None:
    assert said(CLINICIANS, r"`examples/` has ([a-z-]+) records").group(1) == WORDS[len(EXAMPLES)]
    assert said("README.md", r"`examples/` holds ([a-z-]+) patient records").group(1) == WORDS[len(EXAMPLES)]
    _, findings = analyze()
    points = {
        re.search(r"reading (\S+?)\. Adopted", f.message).group(1)
        for f in findings
        if f.kind == "contested_reading"
    }  # type: ignore[union-attr]
    assert said(CLINICIANS, r"read more than one way at ([a-z-]+) points").group(1) == WORDS[len(points)]


def test_the_profiles_each_reading_changes_are_what_analyze_prints() -> None:
    """`llr-asp analyze`: the profiles C6's and C3's alternatives decide otherwise, and the pairs
    and sets of three clinical readings that only together do."""
    _, findings = analyze()

    def changed(reading: str) -> tuple[str, str]:
        [message] = {
            f.message
            for f in findings
            if f.kind == "contested_reading" and f"reading {reading}." in f.message
        }
        found = re.search(r"Under it ([\d,]+) of ([\d,]+) fully known profiles", message)
        assert found, message
        return found.group(1), found.group(2)

    c6, total = changed("C6.route")
    assert said(ANALYSTS, r"C6 as an urgent route changes ([\d,]+) of ([\d,]+);").groups() == (c6, total)
    assert said(ANALYSTS, r"C3's \"exactly moderate\" ([\d,]+)\)").group(1) == changed("C3.impairment")[0]
    sets = {
        (p, size): sum(
            1
            for f in findings
            if f.kind == "contested_combination" and f.policy == p and len(f.requirements) == size
        )
        for p in ("hip-resurfacing", "knee-resurfacing")
        for size in (2, 3)
    }
    assert sets[("hip-resurfacing", 2)] == sets[("knee-resurfacing", 2)]
    assert sets[("hip-resurfacing", 3)] == sets[("knee-resurfacing", 3)]
    found = said(
        ANALYSTS, r"([a-z-]+) pairs and ([a-z-]+) sets of three clinical readings that only together"
    )
    assert found.groups() == (WORDS[sets[("hip-resurfacing", 2)]], WORDS[sets[("hip-resurfacing", 3)]])


@pytest.mark.exhaustive
def test_the_questions_asked_are_what_bench_next_prints() -> None:
    """benchmarks/bench_next.py: questions `next` asks on average over the examples and both
    policies, each from a blank record; and the fields a policy's form has."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_next
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    interviewer = Interviewer.load()
    asked, form = [], []
    for path in EXAMPLES:
        truth = validate(json.loads(path.read_text()), interviewer.rules, str(path))
        for policy in interviewer.rules.policies.values():
            asked.append(bench_next.questions(interviewer, truth, policy)[0])
            form.append(len(policy.fields()))
    found = said(
        CLINICIANS,
        r"it asks ([\d.]+) questions on average, where the form has (\d+) \(`benchmarks/bench_next.py`",
    )
    assert found.groups() == (f"{statistics.mean(asked):.2f}", f"{statistics.mean(form):.0f}")
    assert statistics.mean(asked) < 0.6 * statistics.mean(form)  # far fewer than the whole form
