"""Benchmark for the issues "Policy analysis" and "llr-asp check" (not a test: machines are
shared and noisy).

Whole processes: `llr-asp analyze` of both policies and `llr-asp diff` (two policies; a rule
change), target each <= 3 s; `llr-asp check` on the shipped rules, target <= 5 s.

Run: python benchmarks/bench_analysis.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from timing import installed_cli, interleaved

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    cli = installed_cli()
    with tempfile.TemporaryDirectory() as temporary:
        changed = Path(temporary) / "rules"
        shutil.copytree(RULES, changed)
        criteria = changed / "msk_threshold.lp"
        criteria.write_text(
            criteria.read_text().replace('"conservative.months", ge, 6)', '"conservative.months", ge, 3)')
        )
        commands = {
            "analyze (both policies, text)": [cli, "analyze"],
            "analyze (both policies, json)": [cli, "analyze", "-f", "json"],
            "diff hip-resurfacing knee-resurfacing": [cli, "diff", "hip-resurfacing", "knee-resurfacing"],
            "check (shipped rules and examples)": [cli, "check"],
            "diff hip-resurfacing --rules-old/--rules-new": [
                cli,
                "diff",
                "hip-resurfacing",
                "--rules-old",
                str(RULES),
                "--rules-new",
                str(changed),
            ],
        }
        times = interleaved(commands, runs)
    print(f"whole process, {runs} interleaved runs each (median / max; target 3 s, check 5 s):")
    for name, values in times.items():
        print(f"  {name:<48} {statistics.median(values):6.2f} s / {max(values):5.2f} s")


if __name__ == "__main__":
    main()
