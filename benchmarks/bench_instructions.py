"""Instructions a decision costs, counted by valgrind's callgrind: the measure behind the issue
"Safe verdicts" targets (explain in process and batch per line each at most 1.25× what they cost
before the readings were weighed), and the one figure on this shared machine that does not move
with its load (not a test: it takes minutes).

For each source tree (this checkout, and with --against REV a git revision of it, unpacked to a
temporary folder), a small driver runs twice under callgrind, children traced: once doing only the
warm-up (groundings made, the first patients decided) and once doing the warm-up and then N more
decisions. The difference over N is what one more decision costs, set-up excluded:
- explain: Reasoner.decide on each bundled example (both policies), --repeats times over;
- batch: iterate_decisions(jobs=1) over --lines lines of bench_batch.py's random cohort, of the
  fields every tree compared knows (a line with a field a rule set lacks is an error line: cheap).

Run: python benchmarks/bench_instructions.py [--against REV] [--lines 1000] [--repeats 4]
(needs valgrind; about a minute per tree on a quiet machine.)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_batch import cohort

ROOT = Path(__file__).resolve().parents[1]

EXPLAIN = """
import glob, json, sys
sys.path.insert(0, {tree!r})
from llr_asp import Reasoner, validate
reasoner = Reasoner.load()
patients = [validate(json.load(open(f)), reasoner.rules, f) for f in sorted(glob.glob({examples!r}))]
for patient in patients:  # the warm-up: every grounding made
    reasoner.decide(patient)
for _ in range({n}):
    for patient in patients:
        reasoner.decide(patient)
"""

BATCH = """
import sys
sys.path.insert(0, {tree!r})
from llr_asp.engines.batch import iterate_decisions
lines = open({cohort!r}).read().splitlines()
list(iterate_decisions(lines[:50], policy="all", jobs=1))  # the warm-up: every grounding made
list(iterate_decisions(lines[50:50 + {n}], policy="all", jobs=1))
"""


FIELDS = """
import json, sys
sys.path.insert(0, {tree!r})
from llr_asp import load_rules
print(json.dumps(list(load_rules().fields)))
"""


def fields(tree: Path) -> set[str]:
    """The fields of the rules of source tree `tree`."""
    driver = FIELDS.format(tree=str(tree))
    run = subprocess.run([sys.executable, "-c", driver], capture_output=True, check=True)
    return set(json.loads(run.stdout))


def instructions(driver: str) -> int:
    """The instructions callgrind counts for one run of a Python `driver`, children included."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--trace-children=yes", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", driver],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sum(int(n) for n in re.findall(r"Collected : (\d+)", run.stderr))


def per_decision(template: str, n: int, per: int, **names: str) -> float:
    """Millions of instructions one more unit of `template`'s work costs (`per` units a round)."""
    idle = instructions(template.format(n=0, **names))
    busy = instructions(template.format(n=n, **names))
    return (busy - idle) / (n * per) / 1e6


def measure(tree: Path, lines: Path, count: int, repeats: int) -> dict[str, float]:
    examples = str(tree / "examples" / "*.json")
    found = len(list((tree / "examples").glob("*.json")))
    return {
        "explain (M a decision of both policies)": per_decision(
            EXPLAIN, repeats, found, tree=str(tree), examples=examples
        ),
        "batch (M a line, both policies)": per_decision(BATCH, count, 1, tree=str(tree), cohort=str(lines)),
    }


def unpacked(revision: str, into: Path) -> Path:
    """The tree of `revision` of this repository, unpacked into `into`."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    layout = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=layout)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with (e.g. a61b5dd)")
    parser.add_argument("--lines", type=int, default=1000, help="batch lines counted (default 1000)")
    parser.add_argument("--repeats", type=int, default=4, help="rounds over the examples (default 4)")
    arguments = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as folder:
        trees = {"now": ROOT}
        if arguments.against:
            trees[arguments.against] = unpacked(arguments.against, Path(folder) / "against")
        lines = Path(folder) / "cohort.jsonl"
        cohort(lines, arguments.lines + 50, only=set.intersection(*map(fields, trees.values())))
        results = {}
        for name, tree in trees.items():
            print(f"counting {name} ...", file=sys.stderr, flush=True)
            results[name] = measure(tree, lines, arguments.lines, arguments.repeats)
    for what in results["now"]:
        figures = "  ".join(f"{name} {values[what]:.2f}" for name, values in results.items())
        ratio = ""
        if arguments.against:
            ratio = f"  ({results['now'][what] / results[arguments.against][what]:.2f}×)"
        print(f"{what}: {figures}{ratio}")


if __name__ == "__main__":
    main()
