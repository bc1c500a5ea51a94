"""Quality of answers, not only their validity (issue "Tests that bite"): the question `next`
asks is the one brute force says leaves the fewest questions pending, and what-if's change sets
come in the order the documentation gives, with `limit` keeping the first ones."""

from __future__ import annotations

import statistics
from typing import Any

import helpers
from hypothesis import HealthCheck, given, settings
from test_properties import RULES, partial_patients
from tiers import examples

from llr_asp import Policy, validate
from llr_asp.interview import Interviewer
from llr_asp.ruleset import Value
from llr_asp.whatif import WhatIfSearch, whatif

INTERVIEWER = Interviewer(RULES)
SEARCH = WhatIfSearch.load()
ORDER = list(RULES.fields)
SETTINGS = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pending(policy: Policy, values: dict[str, Value], asked: set[str]) -> int:
    """Questions still to ask for `policy` (next.lp's pending/2, by brute force): the unasked
    fields tested by conditions reached from an unknown root through unknown parts, under the
    adopted reading and under each clinical alternative read alone."""
    fields: set[str] = set()

    def walk(tree: Policy, rid: str) -> None:
        requirement = tree.requirements[rid]
        if requirement.test is not None and requirement.test.field not in asked:
            fields.add(requirement.test.field)
        for part in requirement.parts:
            if helpers.status(RULES, tree, part, values) == "unknown":
                walk(tree, part)

    trees = [policy]
    trees += [
        helpers.variant(RULES, policy.id, x, a)
        for x, alternatives in helpers.clinical(policy)
        for a in alternatives
    ]
    for tree in trees:
        if helpers.status(RULES, tree, tree.root, values) == "unknown":
            walk(tree, tree.root)
    return len(fields)


def expected_question(policy: Policy, values: dict[str, Value], answered: set[str]) -> str | None:
    """The field whose answers leave the fewest questions pending: on average, then at worst,
    then the first declared; among the fields that can still change the decision or settle
    the readings it rests on."""
    needed = [*helpers.brute_missing(RULES, policy, values), *helpers.settles(RULES, policy, values)]
    askable = [f for f in needed if f not in answered]
    if not askable:
        return None

    def cost(field: str) -> tuple[float, int, int]:
        counts = [
            pending(policy, {**values, field: v}, answered | {field})
            for v in helpers.outcome_values(RULES, field)
        ]
        return statistics.mean(counts), max(counts), ORDER.index(field)

    return min(askable, key=cost)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partial_patients(max_unknown=6))
def test_next_asks_the_question_brute_force_chooses(values: dict[str, Any]) -> None:
    patient = validate(helpers.nested(values), RULES, "random")
    for step in INTERVIEWER.next(patient):
        question = step.question.field if step.question else None
        assert question == expected_question(step.decision.policy, values, set(values)), (
            step.decision.policy.id
        )


def distance(field: str, before: Value | None, after: Value) -> float:
    """How far a change moves a field: grades by rank, numbers by value, from the bottom of the
    scale when the field was unknown (whatif.lp's distance/2)."""
    spec = RULES.fields[field]

    def level(value: Value) -> float:
        if spec.type == "grade":
            return spec.values.index(value)  # type: ignore[arg-type]
        if spec.type in ("number", "integer"):
            return float(value)  # type: ignore[arg-type]
        return 0.0

    if spec.type in ("bool", "choice"):
        return 0.0
    bottom = 0.0 if spec.type == "grade" else float(spec.minimum or 0)
    return abs(level(after) - (bottom if before is None else level(before)))


@SETTINGS
@given(partial_patients(max_unknown=4))
def test_whatif_orders_answers_and_care_first_then_the_nearest(values: dict[str, Any]) -> None:
    patient = validate(helpers.nested(values), RULES, "random")
    for policy in RULES.policies.values():
        answer = whatif(INTERVIEWER, SEARCH, patient, policy, limit=50)
        keys = [
            (
                sum(c.kind == "finding" for c in changes),
                sum(distance(c.field, c.before, c.after) for c in changes),
                [ORDER.index(c.field) for c in changes],
            )
            for changes in answer.counterfactuals
        ]
        assert keys == sorted(keys)
        for changes in answer.counterfactuals:  # each value the nearest that qualifies
            assert [c.field for c in changes] == sorted((c.field for c in changes), key=ORDER.index)
        if len(answer.counterfactuals) > 1:
            first = whatif(INTERVIEWER, SEARCH, patient, policy, limit=1)
            assert first.counterfactuals == answer.counterfactuals[:1]
