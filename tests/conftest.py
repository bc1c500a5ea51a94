from __future__ import annotations

import os

import pytest
from hypothesis import settings

from llr_asp import Reasoner, RuleSet, load_rules

# benchmarks/mutation_code.py runs the suite once per mutant: every property then draws the same
# examples (derandomized) and remembers none between runs (no database), so that a mutant's
# verdict depends neither on the draw nor on the mutants tried before it
settings.register_profile("mutation", derandomize=True, database=None)
if os.environ.get("LLR_ASP_HYPOTHESIS"):
    settings.load_profile(os.environ["LLR_ASP_HYPOTHESIS"])


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="session")
def reasoner(rules: RuleSet) -> Reasoner:
    return Reasoner(rules)
