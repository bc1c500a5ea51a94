"""Benchmark for the issue "Cohorts: streaming batch decisions" (not a test: machines are shared
and noisy).

Writes a cohort of random patients (about 85% of fields known, the rest absent; values anywhere
in their domains, numbers near the thresholds), then measures, in one run:
1. `llr-asp batch COHORT --out FILE` as a whole process (JSONL in, JSONL out with `failed` and
   `missing`, every core, every policy): lines (patients) per second and decisions (output
   records: one per line and policy) per second, and the peak resident memory of the process
   and its workers together. Targets: >= 10,000 "patient decisions" a second (reported both
   ways, per line and per decision); <= 300 MB at 1,000,000 lines.
2. Linearity: with --scale 10, N lines, then 10N, then N again: the time of 10N over the mean
   time of N (target <= 11).
3. The floor: a plain-Python strong Kleene evaluation of the same requirement trees (read from
   the rules, one process, decision and failed but not missing, which needs a search), JSONL in
   and out.

Run: python benchmarks/bench_batch.py [--lines 100000] [--scale 10] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from timing import installed_cli

from llr_asp import load_rules
from llr_asp.core.patient import nested
from llr_asp.core.ruleset import Policy, RuleSet

RULES = load_rules()


def cohort(path: Path, lines: int, seed: int = 1, only: set[str] | None = None) -> None:
    """`lines` random patients, of the fields in `only` (default: every field)."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for n in range(lines):
            values: dict[str, Any] = {}
            for name, field in RULES.fields.items():
                if (only is not None and name not in only) or rng.random() < 0.15:
                    continue
                if field.type == "bool":
                    values[name] = rng.random() < 0.7
                elif field.values:
                    values[name] = rng.choice(field.values)
                elif field.type == "date":  # the referral's day: it picks the edition in force
                    values[name] = rng.choice(["2026-05-01", "2027-05-01"])
                elif field.type == "integer":
                    values[name] = rng.randint(field.minimum or 0, 3)
                else:
                    values[name] = rng.choice([rng.randint(0, 24), round(rng.uniform(0, 24), 1)])
            out.write(json.dumps({"id": f"p{n}", **nested(values)}) + "\n")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += (
                int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) * 1024
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def run_batch(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak memory (bytes, sampled every 50 ms) of one batch run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if process.returncode not in (0, 1):
        raise SystemExit(f"batch failed with exit code {process.returncode}")
    return elapsed, peak


def kleene(rules: RuleSet, policy: Policy, rid: str, values: dict[str, Any], failed: list[str]) -> str:
    requirement = policy.requirements[rid]
    if requirement.test is not None:
        test = requirement.test
        if test.field not in values:
            return "unknown"
        value, target = values[test.field], test.value
        field = rules.fields[test.field]
        if field.type == "grade":
            value, target = field.values.index(value), field.values.index(target)
        ok = {
            "eq": value == target,
            "ne": value != target,
            "ge": value >= target,
            "gt": value > target,
            "le": value <= target,
            "lt": value < target,
        }[test.op]
        status = "met" if ok else "not_met"
    else:
        parts = [kleene(rules, policy, c, values, failed) for c in requirement.parts]
        decisive, other = ("not_met", "met") if requirement.form == "all_of" else ("met", "not_met")
        status = decisive if decisive in parts else other if all(p == other for p in parts) else "unknown"
    if status == "not_met":
        failed.append(rid)
    return status


def plain_python(source: Path, target: Path) -> float:
    verdict = {"met": "eligible", "not_met": "not_eligible", "unknown": "undetermined"}
    start = time.perf_counter()
    with source.open() as lines, target.open("w") as out:
        for number, line in enumerate(lines, 1):
            document = json.loads(line)
            values = {}
            for path in RULES.fields:
                node: Any = document
                for key in path.split("."):
                    node = node.get(key) if isinstance(node, dict) else None
                if node is not None:
                    values[path] = node
            for policy in RULES.policies.values():
                failed: list[str] = []
                status = kleene(RULES, policy, policy.root, values, failed)
                result = {
                    "line": number,
                    "patient": document.get("id"),
                    "policy": policy.id,
                    "reference": policy.reference,
                    "decision": verdict[status],
                    "failed": list(dict.fromkeys(reversed(failed))),
                }
                out.write(json.dumps(result) + "\n")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument(
        "--scale", type=int, default=0, help="Also run SCALE times the lines, for linearity (0 or 1: skip)."
    )
    parser.add_argument("--jobs", type=int, default=0, help="Workers (default: every core).")
    options = parser.parse_args()
    cli = installed_cli()
    jobs = ["--jobs", str(options.jobs)] if options.jobs else []
    with tempfile.TemporaryDirectory() as work:
        # with --scale: the small run again after the large one, so that a fast or slow spell of
        # a shared machine does not pass for (non-)linearity
        small, large = options.lines, options.lines * options.scale
        sizes = [small, large, small] if options.scale > 1 else [small]
        times: dict[int, list[float]] = {}
        for lines in sizes:
            source, target = Path(work, f"cohort-{lines}.jsonl"), Path(work, "out.jsonl")
            if not source.exists():
                cohort(source, lines)
            elapsed, peak = run_batch([cli, "batch", str(source), "--out", str(target), *jobs])
            times.setdefault(lines, []).append(elapsed)
            print(
                f"batch, {lines:,} lines ({os.cpu_count()} cores): {elapsed:6.1f} s, "
                f"{lines / elapsed:8,.0f} patients/s = {lines * len(RULES.policies) / elapsed:8,.0f} "
                f"decisions/s ({len(RULES.policies)} policies), peak memory {peak / 2**20:5.0f} MB"
            )
            if lines == small and len(times[small]) == 1:
                floor = plain_python(source, Path(work, "plain.jsonl"))
                print(
                    f"plain Python, same lines, one process, no missing: {floor:6.1f} s, "
                    f"{lines / floor:8,.0f} patients/s; batch takes {elapsed / floor:4.1f}x as long"
                )
        if options.scale > 1:
            before, after = times[small]
            ratio = times[large][0] / ((before + after) / 2)
            print(
                f"linearity: {large:,} lines take {ratio:4.1f}x the mean time of {small:,} "
                f"({before:.1f} s before, {after:.1f} s after)"
            )


if __name__ == "__main__":
    main()
