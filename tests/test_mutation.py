"""The gate bites: `llr-asp check` fails on the rule mutations that change an example.

A deterministic sample (every tenth mutant) keeps the suite fast; benchmarks/mutation_score.py
runs them all and lists the survivors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mutants import mutants, outcomes, verdict

from llr_asp.core.ruleset import default_rules_dir

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.mutation


def test_check_fails_on_at_least_90_percent_of_relevant_mutants(tmp_path: Path) -> None:
    rules, examples = default_rules_dir(), ROOT / "examples"
    original = outcomes(rules, examples)
    sample = list(mutants(rules))[::10]
    assert any("rule removed" in m.name for m in sample) and any("->" in m.name for m in sample)
    results = Counter(verdict(m, rules, examples, tmp_path, original) for m in sample)
    relevant = results["killed"] + results["survived"]
    assert relevant >= 8, results  # the sample really exercises the gate
    assert results["killed"] / relevant >= 0.9, results


def test_a_mutant_that_changes_nothing_is_not_counted(tmp_path: Path) -> None:
    rules, examples = default_rules_dir(), ROOT / "examples"
    original = outcomes(rules, examples)
    # C2.instability: eq significant and ge significant are the same test (significant is the top grade)
    text = (rules / "msk_threshold.lp").read_text()
    start = text.rindex("condition(", 0, text.index('"joint.instability", eq, significant'))
    line = text[:start].count("\n") + 1
    [same] = [m for m in mutants(rules) if m.name == f"msk_threshold.lp:{line} eq -> ge"]
    assert verdict(same, rules, examples, tmp_path, original) == "equivalent"
