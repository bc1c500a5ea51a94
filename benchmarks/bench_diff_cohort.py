"""Benchmark for issue 34 (editions): `llr-asp diff OLD NEW --cohort FILE` against `llr-asp batch`
on the same cohort (not a test: machines are shared and noisy).

Makes a second hip edition in a temporary copy of the bundled rules, as docs/rule-authors.md's
recipe does (hip_resurfacing_2027.lp: its own policy id, in force from 2027-04-01, B asking for
three months), writes a cohort of random patients (bench_batch.py's), then times, interleaved:

- batch: `llr-asp batch COHORT --rules R -p hip-resurfacing-2027 --out FILE` (one policy);
- batch of the file: `llr-asp batch COHORT --rules R --out FILE` (as a commissioner runs it: each
  family's edition in force, two policies a patient);
- diff:  `llr-asp diff hip-resurfacing hip-resurfacing-2027 --cohort COHORT --rules R --out FILE`
  (both editions, compared, the changed patients listed).

Target (issue 34): diff within 1.2x of batch on 100,000 patients. Since the engine decides only
the policies asked (issue 39), a batch of one edition solves one policy a patient and diff two:
both ratios are printed.

Run: python benchmarks/bench_diff_cohort.py [--lines 100000] [--runs 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_batch import cohort
from timing import installed_cli, interleaved

from llr_asp.core.ruleset import default_rules_dir


def second_edition(folder: Path) -> Path:
    rules = folder / "rules"
    shutil.copytree(default_rules_dir(), rules)
    text = (rules / "hip_resurfacing.lp").read_text().replace('"hip-resurfacing"', '"hip-resurfacing-2027"')
    text += (
        '\nedition("hip-resurfacing-2027", "hip-resurfacing", "2027-04-01").\n'
        'conservative_period("hip-resurfacing-2027", 3, "Three months of documented conservative measures '
        'have failed", "Fully engaged with conservative measures for at least three months").\n'
    )
    (rules / "hip_resurfacing_2027.lp").write_text(text)
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    cli = installed_cli()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rules = second_edition(folder)
        source = folder / "cohort.jsonl"
        cohort(source, args.lines)
        common = ["--rules", str(rules), *jobs]
        commands = {
            "batch": [
                cli, "batch", str(source), "-p", "hip-resurfacing-2027",
                "--out", str(folder / "b.jsonl"), *common,
            ],
            "batch-file": [
                cli, "batch", str(source),
                "--out", str(folder / "f.jsonl"), *common,
            ],
            "diff": [
                cli, "diff", "hip-resurfacing", "hip-resurfacing-2027", "--cohort", str(source),
                "--out", str(folder / "d.jsonl"), *common,
            ],
        }  # fmt: skip
        times = interleaved(commands, args.runs)
    batch, whole, diff = (statistics.median(times[k]) for k in ("batch", "batch-file", "diff"))
    print(f"{args.lines:,} patients, {args.runs} runs each (median wall seconds)")
    print(f"  batch (one edition):       {batch:7.2f} s  {args.lines / batch:9,.0f} patients/s")
    print(f"  diff --cohort (two, compared): {diff:7.2f} s  {args.lines / diff:9,.0f} patients/s")
    print(f"  batch (as it runs on the file: each family's edition in force): {whole:7.2f} s")
    print(f"  diff / batch of one edition: {diff / batch:.2f}")
    print(f"  diff / batch of the file: {diff / whole:.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
