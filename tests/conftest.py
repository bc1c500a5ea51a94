from __future__ import annotations

import pytest

from llr_asp import Reasoner, RuleSet, load_rules


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="session")
def reasoner(rules: RuleSet) -> Reasoner:
    return Reasoner(rules)
