from __future__ import annotations

import pytest
import tiers

from llr_asp import Reasoner, RuleSet, load_rules

TIERS = ("browser", "mutation", "exhaustive", "processes", "spark")
"""The slow tiers: each marks tests `slow` too, which the quick run (`python -m pytest`, whose
addopts say -m "not slow") leaves out and `.ci/run` runs (-m "slow or not slow")."""


def pytest_configure(config: pytest.Config) -> None:
    tiers.THOROUGH = config.getoption("markexpr") != "not slow"


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="session")
def reasoner(rules: RuleSet) -> Reasoner:
    return Reasoner(rules)
