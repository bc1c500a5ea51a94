from __future__ import annotations

import collections
import datetime
import os
import shutil
import signal
import tempfile

import pytest
import tiers
from hypothesis import settings

from llr_asp import Reasoner, RuleSet, load_rules

TIERS = ("browser", "mutation", "exhaustive", "whole", "processes", "spark", "conformance", "postgres")
"""The slow tiers: each marks tests `slow` too, which the quick run (`python -m pytest`, whose
addopts say -m "not slow") leaves out and `.ci/run` runs (-m "slow or not slow")."""

# benchmarks/mutation_code.py runs the suite once per mutant: every property then draws the same
# examples (derandomized) and remembers none between runs (no database), so that a mutant's
# verdict depends neither on the draw nor on the mutants tried before it
settings.register_profile("mutation", derandomize=True, database=None)
if os.environ.get("LLR_ASP_HYPOTHESIS"):
    settings.load_profile(os.environ["LLR_ASP_HYPOTHESIS"])


def pytest_configure(config: pytest.Config) -> None:
    tiers.THOROUGH = config.getoption("markexpr") != "not slow"
    # the service's default state directory (used token ids, the receipt log and its signing
    # key) is a per-user cache directory: each test process gets one of its own, never the
    # user's own, removed when the process ends
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="llr-asp-test-cache-")
    # The Ctrl-C tests press Ctrl-C (SIGINT) in llr-asp processes they start. A shell starts a
    # background job (`bash .ci/run &`, nohup) with SIGINT ignored; the processes would inherit
    # that, and Python leaves an ignored SIGINT ignored (as llr-asp should: so does every Unix
    # program), so they would never stop. Handled here instead, SIGINT is back at its default
    # in every process a test starts, as in a terminal's foreground job (exec resets a handler).
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)


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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many documentation examples ran and how many were skipped, and why (each block's
    test records them: tests/test_docs_examples.py); said only when that test ran."""
    ran, skipped = 0, collections.Counter[str]()
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "docs_examples" and getattr(report, "when", "") == "call":
                    ran += len(value["ran"])
                    skipped.update(reason for _, reason in value["skipped"])
    if ran or skipped:
        terminalreporter.write_line(
            f"documentation examples: {ran} ran, {sum(skipped.values())} skipped"
            + "".join(f"\n  {count} {reason}" for reason, count in sorted(skipped.items()))
        )


TODAY = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
"""The tests' time now (core/clock.py): the dates their forms are written with are weighed
against it, whatever the year they are run in (a form's age, a date still to come)."""


@pytest.fixture(autouse=True)
def _the_tests_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from llr_asp.core import clock

    monkeypatch.setattr(clock, "now", lambda: TODAY)


@pytest.fixture(autouse=True)
def _log_bound_afresh() -> None:
    """Each test starts with the service log's flood bound unspent (web/logbound.py): a test that
    reads a log line must not find it dropped because earlier tests in the process logged."""
    import logging

    for bound in logging.getLogger("uvicorn.error").filters:
        if hasattr(bound, "dropped") and hasattr(bound, "passed"):
            bound.began, bound.passed, bound.dropped = bound.clock(), 0, 0
