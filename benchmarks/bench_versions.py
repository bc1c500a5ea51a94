"""Before and after: the same commands from two installs of llr-asp, interleaved (not a test:
machines are shared and noisy, and taking turns spreads a noisy spell over both).

For an issue that sets a budget against an earlier revision ("explain no more than 15% slower,
batch no more than 25% slower per line"): install the earlier revision in a virtual environment
of its own, then

    python benchmarks/bench_versions.py --before /path/to/old-venv/bin/llr-asp

measures, for this install and the other one, in turns:
1. `llr-asp explain EXAMPLE` as a whole process, text and JSON (median and min wall time);
2. `llr-asp batch COHORT --out FILE` on a generated cohort (bench_batch.py's), every core,
   every policy: lines per second.
It prints each ratio after / before.

Run: python benchmarks/bench_versions.py --before OLD_LLR_ASP [--runs 15] [--lines 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_batch import cohort
from timing import installed_cli, interleaved, wall

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "undetermined-new-referral.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="The llr-asp console script of the earlier install.")
    parser.add_argument("--runs", type=int, default=15, help="explain runs per command and install")
    parser.add_argument("--lines", type=int, default=20_000, help="cohort size for batch")
    parser.add_argument("--rounds", type=int, default=3, help="batch runs per install")
    arguments = parser.parse_args()
    installs = {"before": arguments.before, "after": installed_cli()}

    commands = {
        f"{name}: explain {form}": [cli, "explain", str(EXAMPLE), *extra]
        for form, extra in (("text", []), ("json", ["--format", "json"]))
        for name, cli in installs.items()
    }
    times = interleaved(commands, arguments.runs)
    print(f"explain as a whole process, {arguments.runs} interleaved runs (median / min):")
    for name, values in times.items():
        print(f"  {name:<24} {statistics.median(values) * 1e3:7.1f} ms / {min(values) * 1e3:6.1f} ms")
    for form in ("text", "json"):
        ratio = statistics.median(times[f"after: explain {form}"]) / statistics.median(
            times[f"before: explain {form}"]
        )
        print(f"  explain {form}: after / before = {ratio:.3f}")

    with tempfile.TemporaryDirectory() as work:
        source, out = Path(work, "cohort.jsonl"), Path(work, "out.jsonl")
        cohort(source, arguments.lines)
        rates: dict[str, list[float]] = {name: [] for name in installs}
        for cli in installs.values():  # warm-up
            wall([cli, "batch", str(source), "--out", str(out)])
        for _ in range(arguments.rounds):
            for name, cli in installs.items():
                rates[name].append(arguments.lines / wall([cli, "batch", str(source), "--out", str(out)]))
    print(f"batch, {arguments.lines:,} lines, every core, {arguments.rounds} interleaved runs (lines/s):")
    for name, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:<8} median {statistics.median(values):8,.0f}   runs {runs}")
    slower = statistics.median(rates["before"]) / statistics.median(rates["after"])
    print(f"  batch time per line: after / before = {slower:.3f}")


if __name__ == "__main__":
    main()
