"""Properties over random patients (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import helpers
import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiers import examples

from llr_asp import InputError, Patient, Reasoner, json_schema, load_rules, validate
from llr_asp.core.patient import checker

RULES = load_rules()
REASONER = Reasoner(RULES)
SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def field_value(path: str) -> st.SearchStrategy[Any]:
    field = RULES.fields[path]
    if field.type == "bool":
        return st.booleans()
    if field.values or field.type == "date":
        return st.sampled_from(field.values or helpers.outcome_values(RULES, path))
    if field.type == "integer":
        return st.integers(field.minimum, field.maximum)
    return st.one_of(
        st.sampled_from(helpers.outcome_values(RULES, path)),
        st.floats(field.minimum, field.maximum, allow_nan=False),
    )


@st.composite
def partial_patients(draw: st.DrawFn, max_unknown: int | None = None) -> dict[str, Any]:
    paths = list(RULES.fields)
    if max_unknown is None:
        known = draw(st.lists(st.sampled_from(paths), unique=True))
    else:
        unknown = draw(st.lists(st.sampled_from(paths), unique=True, max_size=max_unknown))
        known = [p for p in paths if p not in unknown]
    return {p: draw(field_value(p)) for p in known}


def decide(values: dict[str, Any]) -> dict[str, Any]:
    patient = validate(helpers.nested(values), RULES, "random")
    return {d.policy.id: d for d in REASONER.decide(patient)}


@SETTINGS
@given(partial_patients())
def test_statuses_agree_with_strong_kleene(values: dict[str, Any]) -> None:
    for policy_id, decision in decide(values).items():
        policy = RULES.policies[policy_id]
        for node in decision.tree.walk():
            assert node.status == helpers.status(RULES, policy, node.id, values), node.id


@SETTINGS
@given(partial_patients())
def test_never_eligible_while_a_required_field_is_unknown(values: dict[str, Any]) -> None:
    """Eligible means every condition the decision rests on has a known value."""
    for decision in decide(values).values():
        if decision.decision == "eligible":
            stack = [decision.tree]
            while stack:
                node = stack.pop()
                assert all(e.value is not None for e in node.evidence), node.id
                stack += [c for c in node.children if c.reason]
            assert decision.missing == ()


@SETTINGS
@given(partial_patients(), st.data())
def test_filling_in_unknowns_never_changes_a_determined_decision(
    values: dict[str, Any], data: st.DataObject
) -> None:
    before = decide(values)
    filled = dict(values)
    for path in RULES.fields:
        if path not in values and data.draw(st.booleans()):
            filled[path] = data.draw(field_value(path))
    after = decide(filled)
    for policy, decision in before.items():
        if decision.decision != "undetermined":
            assert after[policy].decision == decision.decision
            assert decision.missing == ()


@settings(max_examples=examples(60), deadline=None)
@given(partial_patients(max_unknown=5))
def test_missing_agrees_with_brute_force(values: dict[str, Any]) -> None:
    for policy_id, decision in decide(values).items():
        policy = RULES.policies[policy_id]
        assert list(decision.missing) == helpers.brute_missing(RULES, policy, values)


@SETTINGS
@given(partial_patients())
def test_a_policy_alone_is_decided_as_beside_the_others(values: dict[str, Any]) -> None:
    """Asking one policy searches completions for that policy only; nothing it says changes."""
    together = decide(values)
    patient = validate(helpers.nested(values), RULES, "random")
    for policy in RULES.policies.values():
        [alone] = REASONER.decide(patient, [policy])
        assert alone == together[policy.id]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def near_patients() -> st.SearchStrategy[Any]:
    """Documents that look like patient records, with a wrong turn here and there."""
    odd = st.sampled_from(
        ["severe", "Severe", "male", 6, 6.5, -1, 1e6, True, "true", "2027-04-01", "2027-02-30", "2027-4-1"]
    )
    fields = st.dictionaries(st.sampled_from(list(RULES.fields)), json_values | odd, max_size=8)
    extra = st.dictionaries(
        st.sampled_from(["id", "policy", "meta", "pain_severity", "msk"]), json_values, max_size=2
    )
    return st.builds(lambda flat, more: {**helpers.nested(flat), **more}, fields, extra)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(json_values, near_patients()))
def test_arbitrary_json_is_a_patient_or_a_clear_error(document: Any) -> None:
    try:
        patient = validate(document, RULES, "fuzz.json")
    except InputError as error:
        assert str(error).startswith("fuzz.json: ")
        assert "\n" not in str(error)
        return
    assert isinstance(patient, Patient)
    REASONER.decide(patient)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(json_values, near_patients()))
def test_fast_check_agrees_with_jsonschema(document: Any) -> None:
    schema = json_schema(RULES)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert checker(schema)(document) == validator.is_valid(document)


@SETTINGS
@given(partial_patients())
def test_json_output_round_trips(values: dict[str, Any]) -> None:
    for decision in decide(values).values():
        assert json.loads(json.dumps(decision.to_json())) == decision.to_json()
