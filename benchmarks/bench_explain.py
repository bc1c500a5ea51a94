"""Benchmark for the issue "The eligibility reasoner" (not a test: machines are shared and noisy).

1. Start-up: `llr-asp explain` as a whole process against `python -c "import clingo, rich, typer"`,
   interleaved in one run; target: explain within 1.6x the import baseline. Also Rich's own
   floor for the text output: a process that imports clingo, rich and typer, then Rich's console
   (which `import rich` leaves out), and prints explain's text as one plain Text, no reasoning.
2. In-process: one decision with explanation tree and `missing`, for every example and policy;
   target: <= 2 ms per patient.

Run: python benchmarks/bench_explain.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import installed_cli, interleaved

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "undetermined-new-referral.json"


def startup(runs: int) -> None:
    cli = installed_cli()
    # pip byte-compiles the dependencies at install time; give llr_asp the same footing even
    # where PYTHONDONTWRITEBYTECODE is set (an editable install writes .pyc on first run otherwise)
    compileall.compile_dir(ROOT / "llr_asp", quiet=1)
    text = subprocess.run([cli, "explain", str(EXAMPLE)], capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory() as work:
        printed = Path(work, "explain.txt")
        printed.write_text(text.stdout)
        floor = (
            "import clingo, rich, typer; from rich.console import Console; from rich.text import Text; "
            f"Console(highlight=False).print(Text(open({str(printed)!r}).read()))"
        )
        commands = {
            "baseline: import clingo, rich, typer": [sys.executable, "-c", "import clingo, rich, typer"],
            f"Rich floor: print the {text.stdout.count(chr(10))} lines, no reasoning": [
                sys.executable,
                "-c",
                floor,
            ],
            "llr-asp explain (text)": [cli, "explain", str(EXAMPLE)],
            "llr-asp explain --format json": [cli, "explain", str(EXAMPLE), "--format", "json"],
        }
        times = interleaved(commands, runs)
    base = statistics.median(times[next(iter(commands))])
    print(f"start-up, {runs} interleaved runs each (median / min, ratio of medians to baseline):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<52} {median * 1e3:7.1f} ms / {min(values) * 1e3:6.1f} ms   {median / base:4.2f}x")


def in_process(rounds: int) -> None:
    sys.path.insert(0, str(ROOT))
    from llr_asp import Reasoner, read_patient

    reasoner = Reasoner.load()
    rules = reasoner.rules
    patients = [read_patient(str(p), rules) for p in sorted((ROOT / "examples").glob("*.json"))]
    for patient in patients:  # warm up the caches of shown atoms
        reasoner.decide(patient)
    per_policy = []
    for policy in rules.policies.values():
        start = time.perf_counter()
        for _ in range(rounds):
            for patient in patients:
                reasoner.decide(patient, [policy])
        per_policy.append((time.perf_counter() - start) / (rounds * len(patients)))
    start = time.perf_counter()
    for _ in range(rounds):
        for patient in patients:
            reasoner.decide(patient)
    both = (time.perf_counter() - start) / (rounds * len(patients))
    first = [next(iter(rules.policies.values()))]
    # the examples above are decided again and again: the verdict cache answers them. Distinct
    # random patients (bench_batch.py's cohort) show a decision that clingo solves.
    from bench_batch import cohort

    from llr_asp.core.documents import validate
    from llr_asp.core.patient import parse

    with tempfile.TemporaryDirectory() as work:
        cohort(Path(work, "cohort.jsonl"), 2000, seed=7)
        lines = Path(work, "cohort.jsonl").read_text().splitlines()
    distinct = [validate(parse(line, "cohort"), rules, "cohort") for line in lines]
    cache = getattr(reasoner, "verdicts", None)
    random_cpu = []
    for chosen in (first, None):
        if cache is not None:
            cache.hits = cache.misses = 0
        start = time.process_time()
        for patient in distinct:
            reasoner.decide(patient, chosen)
        random_cpu.append((time.process_time() - start) / len(distinct))
    hit_rate = f"{cache.hit_rate:.1%}" if cache is not None else "no cache"
    worst, slowest = max((min(_time(reasoner.decide, p, first) for _ in range(20)), p.id) for p in patients)
    print(f"in-process decision with tree and missing, {len(patients)} examples x {rounds} rounds:")
    for policy, seconds in zip(rules.policies, per_policy):
        print(f"  one policy ({policy}): {seconds * 1e3:.3f} ms per patient")
    print(f"  every policy at once ({len(rules.policies)}): {both * 1e3:.3f} ms per patient")
    print(f"  slowest example ({slowest}, one policy): {worst * 1e3:.3f} ms")
    print(
        f"  {len(distinct):,} distinct random patients, CPU a decision: one policy ({first[0].id}) "
        f"{random_cpu[0] * 1e3:.3f} ms, every policy {random_cpu[1] * 1e3:.3f} ms "
        f"(verdict cache hit rate {hit_rate})"
    )


def _time(call: Callable[..., object], *arguments: object) -> float:
    start = time.perf_counter()
    call(*arguments)
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="start-up runs per command")
    parser.add_argument("--rounds", type=int, default=50, help="in-process rounds over the examples")
    arguments = parser.parse_args()
    startup(arguments.runs)
    in_process(arguments.rounds)
