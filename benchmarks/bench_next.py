"""Benchmark for `llr-asp next` (issue "For clinicians: ... a questionnaire that asks only what
matters"; not a test: machines are shared and noisy).

1. Questions asked, averaged over the examples and both policies, each started from a blank
   record and answered from the example (a field the example lacks is answered "unknown"):
   `next` against asking every field the policy uses in declared order, and against that same
   order stopped as soon as the decision is made.
2. `llr-asp next` as a whole process against `llr-asp explain` on the same patient,
   interleaved; target: within 1.6x.

Run: python benchmarks/bench_next.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from timing import installed_cli, interleaved

from llr_asp.core.patient import Patient, validate
from llr_asp.core.ruleset import Policy
from llr_asp.engines.interview import Interviewer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
TIMED = ROOT / "examples" / "undetermined-new-referral.json"


def answered(patient: Patient, field: str, truth: Patient) -> Patient:
    values = dict(patient.values)
    if field in truth.values:
        values[field] = truth.values[field]
    return Patient(patient.id, None, values, patient.answered | {field})


def questions(interviewer: Interviewer, truth: Patient, policy: Policy) -> tuple[int, int]:
    """Questions `next` asks, and questions asked in declared order until decided."""
    patient, by_next = Patient(truth.id, None, {}, frozenset()), 0
    while (question := interviewer.next(patient, [policy])[0].question) is not None:
        patient, by_next = answered(patient, question.field, truth), by_next + 1
    patient, in_order = Patient(truth.id, None, {}, frozenset()), 0
    for field in (f for f in interviewer.rules.fields if f in policy.fields()):
        if interviewer.decide(patient, [policy])[0].decision != "undetermined":
            break
        patient, in_order = answered(patient, field, truth), in_order + 1
    return by_next, in_order


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    interviewer = Interviewer.load()
    counts: list[tuple[int, int, int]] = []
    for path in EXAMPLES:
        truth = validate(json.loads(path.read_text()), interviewer.rules, str(path))
        for policy in interviewer.rules.policies.values():
            counts.append((*questions(interviewer, truth, policy), len(policy.fields())))
    by_next, in_order, form = (statistics.mean(c) for c in zip(*counts))
    print(
        f"questions asked, mean over {len(EXAMPLES)} examples x {len(interviewer.rules.policies)} policies:"
    )
    print(f"  next:                                 {by_next:5.2f}  (max {max(c[0] for c in counts)})")
    print(f"  declared order, stopped when decided: {in_order:5.2f}  (max {max(c[1] for c in counts)})")
    print(f"  every field the policy uses:          {form:5.2f}")

    cli = installed_cli()
    explain, ask_next = [cli, "explain", str(TIMED), "-f", "json"], [cli, "next", str(TIMED), "-f", "json"]
    times = interleaved({"explain": explain, "next": ask_next}, runs)
    a, b = statistics.median(times["explain"]), statistics.median(times["next"])
    print(f"whole process, {runs} interleaved runs each (medians; target next <= 1.6x explain):")
    print(f"  explain {a * 1e3:6.1f} ms, next {b * 1e3:6.1f} ms, ratio {b / a:4.2f}x")


if __name__ == "__main__":
    main()
