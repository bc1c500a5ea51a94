"""Benchmark for the issue "The policy as analysts read it" (not a test: machines are shared and
noisy).

Whole processes: `llr-asp report POLICY` (the literate page, HTML and Markdown), target <= 3 s
a policy, and `--format svg` (the tree alone). In process, where a report's time goes: the
analysis (`analyze`, most of it), the rest of the literate policy (the source text split, the
rules parsed and quoted), the HTML; and each picture's render time: the requirement tree, a
patient's decision, a cohort's funnel.

Run: python benchmarks/bench_report.py [--runs N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import installed_cli, interleaved

from llr_asp import Reasoner, load_rules, validate
from llr_asp.engines.analysis import _analyze
from llr_asp.engines.batch import Summary, iterate_decisions
from llr_asp.engines.literate import literate
from llr_asp.views.charts import funnel
from llr_asp.views.pictures import decision_tree, policy_tree
from llr_asp.views.policy_page import html_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def best(work: Callable[[], object], runs: int) -> float:
    """Median milliseconds of `runs` runs of `work`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    cli = installed_cli()
    with tempfile.TemporaryDirectory() as temporary:
        out = Path(temporary)
        commands = {
            "report hip-resurfacing (html)": [cli, "report", "hip-resurfacing", "-o", str(out / "hip.html")],
            "report knee-resurfacing (html)": [
                cli,
                "report",
                "knee-resurfacing",
                "-o",
                str(out / "knee.html"),
            ],
            "report knee-resurfacing (markdown)": [
                *[cli, "report", "knee-resurfacing", "-f", "markdown", "-o", str(out / "knee.md")]
            ],
            "report hip-resurfacing --format svg": [cli, "report", "hip-resurfacing", "-f", "svg", "-o", "-"],
        }
        times = interleaved(commands, runs)
    print(f"Whole processes, median of {runs} (target: a report <= 3 s):")
    for name, seconds in times.items():
        print(f"  {name:<40} {statistics.median(seconds):6.2f} s  (max {max(seconds):.2f})")

    rules = load_rules()
    hip = rules.policies["hip-resurfacing"]
    findings = _analyze(rules.directory, "hip-resurfacing", datetime.date.today())[1]
    page = literate(rules, "hip-resurfacing", findings=findings)
    reasoner = Reasoner(rules)
    document = json.loads((EXAMPLES / "route-c4-sfi.json").read_text())
    [decision] = reasoner.decide(validate(document, rules, "bench"), [hip])
    summary = Summary(rules)
    for result in iterate_decisions([json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]):
        summary.add(result)
    parts: list[tuple[str, Callable[[], object], int]] = [
        ("analyze", lambda: _analyze(rules.directory, "hip-resurfacing", datetime.date.today()), runs),
        ("literate policy (split, parse, quote)", lambda: literate(rules, "hip-resurfacing", findings), runs),
        ("HTML document (tree included)", lambda: html_document(page), runs),
        (f"requirement tree SVG ({len(hip.requirements)} requirements)", lambda: policy_tree(hip), 50),
        ("decision SVG (route-c4-sfi)", lambda: decision_tree(decision), 50),
        ("funnel SVG (4 steps, 7 bars)", lambda: funnel(summary, "hip-resurfacing"), 50),
    ]
    print("\nIn process, hip-resurfacing, median ms:")
    for name, work, repeat in parts:
        print(f"  {name:<42} {best(work, repeat):8.2f}")


if __name__ == "__main__":
    main()
