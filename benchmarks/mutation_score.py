"""Mutation score of `llr-asp check` (issue "llr-asp check"): every single mutation of the rule
files that still loads and changes some example's decision or statuses must make check fail.

Prints the score, the time per mutant, and every survivor (a survivor means an example or an
invariant is missing). Target: >= 90%.

Run: python benchmarks/mutation_score.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutants import mutants, outcomes, verdict  # noqa: E402


def main() -> None:
    rules, examples = ROOT / "rules", ROOT / "examples"
    original = outcomes(rules, examples)
    counts: Counter[str] = Counter()
    survivors = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        everything = list(mutants(rules))
        for number, mutant in enumerate(everything, 1):
            result = verdict(mutant, rules, examples, Path(work), original)
            counts[result] += 1
            if result == "survived":
                survivors.append(mutant.name)
            print(f"\r{number}/{len(everything)} mutants", end="", file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(file=sys.stderr)
    relevant = counts["killed"] + counts["survived"]
    print(f"mutants: {len(everything)} ({dict(counts)}), {elapsed / len(everything) * 1e3:.0f} ms each")
    score = counts["killed"] / relevant
    print(f"score: {counts['killed']}/{relevant} = {score:.1%} of the mutants that change an example")
    for name in survivors:
        print(f"  survivor: {name}")


if __name__ == "__main__":
    main()
