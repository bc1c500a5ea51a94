"""Contested readings: each alternative is real rules that flip the patients it should and no
others; `contested` equals the brute-force answer (the Python oracle under each alternative,
one at a time); and what-if never proposes a change the domain assumptions rule out."""

from __future__ import annotations

from typing import Any

import helpers
import pytest
from hypothesis import given, settings
from test_properties import RULES, SETTINGS, partial_patients

from llr_asp import Reasoner, validate
from llr_asp.whatif import WhatIfSearch, whatif

REASONER = Reasoner(RULES)

FULL = {  # eligible for both policies through C1 alone; every field known
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 8, "documented": True, "failed": True, "contraindicated": False},
    "pain": {"severity": "intense", "persistent": True},
    "function": {
        "impairment": "moderate",
        "prevents_work_or_education": False,
        "prevents_domestic_or_carer": False,
    },
    "joint": {"instability": "none", "destruction_risk": False},
    "radiology": {"severity": "mild"},
    "independence": {"immediate_danger": False, "replacement_would_relieve": False},
    "knee": {"compartments_affected": 2},
}
NO_C1 = {"pain": {"severity": "moderate", "persistent": True}}  # C1 fails: another route must hold


def patient(*changes: dict[str, Any]) -> dict[str, Any]:
    """FULL with nested changes applied in turn."""
    document = {key: dict(value) if isinstance(value, dict) else value for key, value in FULL.items()}
    for change in changes:
        for key, value in change.items():
            document[key] = {**document[key], **value} if isinstance(value, dict) else value
    return document


C4_SFI = (NO_C1, {"radiology": {"severity": "moderate"}, "function": {"prevents_domestic_or_carer": True}})

# reading -> (policies, a patient it flips and the decision under the alternative, a patient it leaves)
TABLE: dict[str, tuple[tuple[str, ...], dict[str, Any], str, dict[str, Any]]] = {
    "SFI.connective": (("hip-resurfacing", "knee-resurfacing"), patient(*C4_SFI), "not_eligible", patient()),
    "C3.impairment": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient(NO_C1, {"radiology": {"severity": "severe"}, "function": {"impairment": "severe"}}),
        "not_eligible",
        patient(NO_C1, {"radiology": {"severity": "severe"}}),  # moderate impairment: both readings agree
    ),
    "C4.radiology": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient(
            NO_C1,
            {"radiology": {"severity": "severe"}, "function": {"impairment": "mild"}},
            {"function": {"prevents_work_or_education": True}},
        ),
        "not_eligible",
        patient(*C4_SFI),  # moderate disease: both readings agree
    ),
    "C4.instability": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient(NO_C1, {"radiology": {"severity": "moderate"}, "joint": {"instability": "present"}}),
        "not_eligible",
        patient(NO_C1, {"radiology": {"severity": "moderate"}, "joint": {"instability": "significant"}}),
    ),
    "C4.cut-off": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient(*C4_SFI, {"pain": {"severity": "severe", "persistent": False}}),  # pain, not persistent
        "not_eligible",
        patient(*C4_SFI, {"pain": {"severity": "severe"}}),  # eligible through C1 too
    ),
    "C5.route": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient(
            {"conservative": {"months": 0, "contraindicated": True}},
            {"pain": {"severity": "severe"}, "function": {"impairment": "severe"}},
            {"independence": {"immediate_danger": True, "replacement_would_relieve": True}},
        ),
        "eligible",
        patient({"conservative": {"months": 0}}),  # refused for B, and no urgent route
    ),
    "C6.route": (
        ("hip-resurfacing", "knee-resurfacing"),
        patient({"conservative": {"months": 2}, "joint": {"destruction_risk": True}}),
        "eligible",
        patient({"conservative": {"months": 2}}),
    ),
    "contraindication.criterion": (("hip-resurfacing",), patient({"sex": "female"}), "eligible", patient()),
    "compartments.criterion": (
        ("knee-resurfacing",),
        patient({"knee": {"compartments_affected": 3}}),
        "eligible",
        patient(),
    ),
    "C.structure": (
        ("knee-resurfacing",),
        patient({"conservative": {"months": 2}, "joint": {"destruction_risk": True}}),
        "eligible",
        patient(
            {"conservative": {"months": 2}, "msk": {"assessed": False}, "joint": {"destruction_risk": True}}
        ),
    ),
}


def contested(document: dict[str, Any], policy: str) -> dict[str, str]:
    [decision] = REASONER.decide(validate(document, RULES, "table"), [RULES.policies[policy]])
    return {c.reading: c.decision for c in decision.contested}


def test_every_declared_reading_has_a_row() -> None:
    declared = {r for p in RULES.policies.values() for r in p.readings}
    assert declared == set(TABLE)
    for reading, (policies, *_) in TABLE.items():
        assert {p.id for p in RULES.policies.values() if reading in p.readings} == set(policies)


@pytest.mark.parametrize("reading", sorted(TABLE))
def test_a_reading_flips_its_patient_and_leaves_the_other(reading: str) -> None:
    policies, flipped, under, kept = TABLE[reading]
    for policy in policies:
        assert contested(flipped, policy).get(reading) == under, policy
        assert reading not in contested(kept, policy), policy


def test_eligible_through_c1_with_everything_known_rests_on_no_reading() -> None:
    for policy in RULES.policies:
        assert contested(patient(), policy) == {}


@SETTINGS
@given(partial_patients())
def test_contested_equals_brute_force(values: dict[str, Any]) -> None:
    document = validate(helpers.nested(values), RULES, "random")
    for decision in REASONER.decide(document):
        expected = helpers.contested(RULES, decision.policy, values)
        assert [(c.reading, c.decision) for c in decision.contested] == expected


SEARCH = WhatIfSearch.load()


@settings(max_examples=40, deadline=None)
@given(partial_patients(max_unknown=6))
def test_whatif_never_proposes_what_a_domain_assumption_rules_out(values: dict[str, Any]) -> None:
    document = validate(helpers.nested(values), RULES, "random")
    for policy in RULES.policies.values():
        answer = whatif(REASONER, SEARCH, document, policy, limit=3)
        for changes in answer.counterfactuals:
            changed = {**values, **{c.field: c.after for c in changes}}
            [after] = REASONER.decide(validate(helpers.nested(changed), RULES, "changed"), [policy])
            assert after.warnings == (), changes
            assert after.decision == "eligible"
            assert all(c.before is None or not RULES.fields[c.field].immutable for c in changes)
