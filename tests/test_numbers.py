"""Numbers that are not whole, under every comparison (issue "Tests that bite"): the shipped
rules only test `>= 6`, but a policy written as rule files may use any operator. A synthetic
rule set (tests/numbers) has one policy per operator on a number field, and one whose two tests
are complementary; explain and batch must agree with the Python oracle at T - 0.5, T, T + 0.5
(and the whole numbers around), and `missing` with brute force."""

from __future__ import annotations

from pathlib import Path

import helpers
import pytest

from llr_asp import Reasoner, validate
from llr_asp.engines.batch import iterate_decisions

RULES_DIR = Path(__file__).parent / "numbers"
REASONER = Reasoner.load(RULES_DIR)
RULES = REASONER.rules
VALUES = [0, 5, 5.5, 6, 6.0, 6.5, 7, 99.9, 100]


@pytest.mark.parametrize("value", VALUES)
def test_explain_and_batch_agree_with_the_oracle_on_every_operator(value: float) -> None:
    patient = validate({"n": value}, RULES, "n")
    decided = {d.policy.id: d.decision for d in REASONER.decide(patient)}
    expected = {p.id: helpers.decision(RULES, p, {"n": value}) for p in RULES.policies.values()}
    assert decided == expected
    screened = {r.policy: r.decision for r in iterate_decisions([{"n": value}], rules=RULES_DIR)}
    assert screened == expected
    assert expected["both"] == "eligible"  # complementary tests: every known value meets one


def test_the_operators_decide_as_their_names_say() -> None:
    def decided(value: float) -> dict[str, str]:
        return {d.policy.id: d.decision for d in REASONER.decide(validate({"n": value}, RULES, "n"))}

    yes = "eligible"
    assert {p for p, d in decided(6.5).items() if d == yes} == {"ne", "ge", "gt", "both"}
    assert {p for p, d in decided(6).items() if d == yes} == {"eq", "ge", "le", "both"}
    assert {p for p, d in decided(5.5).items() if d == yes} == {"ne", "le", "lt", "both"}


def test_missing_agrees_with_brute_force_even_where_no_answer_matters() -> None:
    patient = validate({}, RULES, "unknown")
    for decision in REASONER.decide(patient):
        assert list(decision.missing) == helpers.brute_missing(RULES, decision.policy, {})
        if decision.policy.id == "both":
            assert decision.decision == "undetermined" and decision.missing == ()  # every answer funds
        else:
            assert decision.missing == ("n",)
