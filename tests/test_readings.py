"""Contested readings: each alternative is real rules that flip the patients it should and no
others; `robust`, `possible`, `contested` and `to_settle` equal the brute-force answer (the
Python oracle under every combination of the clinical readings); analysis alternatives never
reach a clinician; and what-if never proposes a change the domain assumptions rule out."""

from __future__ import annotations

from typing import Any

import helpers
import pytest
from hypothesis import given, settings
from test_properties import RULES, SETTINGS, partial_patients
from tiers import examples

from llr_asp import Reasoner, validate
from llr_asp.core.decision import Decision
from llr_asp.engines.whatif import WhatIfSearch, whatif

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


def decided(document: dict[str, Any], policy: str) -> Decision:
    [decision] = REASONER.decide(validate(document, RULES, "table"), [RULES.policies[policy]])
    return decision


def contested(document: dict[str, Any], policy: str) -> dict[str, str]:
    """The single alternatives under which the decision differs, and the decision under each."""
    return {c.readings[0]: c.decision for c in decided(document, policy).contested if len(c.readings) == 1}


ANALYSIS = {"contraindication.criterion", "compartments.criterion"}


def test_every_declared_reading_has_a_row() -> None:
    declared = {r for p in RULES.policies.values() for r in p.readings}
    assert declared == set(TABLE)
    for reading, (policies, *_) in TABLE.items():
        assert {p.id for p in RULES.policies.values() if reading in p.readings} == set(policies)


def test_the_background_sentences_are_for_analysts_with_the_sentence_that_refutes_them() -> None:
    scoped = {r.id: a for p in RULES.policies.values() for r in p.readings.values() for a in r.alternatives}
    assert {x for x, a in scoped.items() if not a.clinical} == ANALYSIS
    for reading in ANALYSIS:
        assert scoped[reading].scope == "analysis" and scoped[reading].refuted
    assert all(a.refuted is None for x, a in scoped.items() if x not in ANALYSIS)


@pytest.mark.parametrize("reading", sorted(set(TABLE) - ANALYSIS))
def test_a_reading_flips_its_patient_and_leaves_the_other(reading: str) -> None:
    policies, flipped, under, kept = TABLE[reading]
    for policy in policies:
        assert contested(flipped, policy).get(reading) == under, policy
        assert not decided(flipped, policy).robust
        assert reading not in contested(kept, policy), policy


@pytest.mark.parametrize("reading", sorted(ANALYSIS))
def test_an_analysis_reading_never_makes_a_decision_contested(reading: str) -> None:
    """A woman under ARP 55, three compartments under ARP 60: refused, plainly. The alternative
    that would fund them is the policy's own clinical text refuted, shown to analysts only."""
    policies, flipped, under, _ = TABLE[reading]
    for policy in policies:
        decision = decided(flipped, policy)
        assert decision.decision == "not_eligible" and under == "eligible"
        assert decision.robust and decision.contested == () and decision.possible == ("not_eligible",)


def test_eligible_through_c1_with_everything_known_rests_on_no_reading() -> None:
    for policy in RULES.policies:
        assert contested(patient(), policy) == {}
        assert decided(patient(), policy).robust


def test_a_combination_refuses_where_no_single_reading_does() -> None:
    """The issue's patient: eligible under each alternative alone, refused under SFI-both
    together with C4-significant-instability."""
    document = patient(
        {"pain": {"severity": "intense", "persistent": True}, "function": {"impairment": "mild"}},
        {"radiology": {"severity": "moderate"}, "joint": {"instability": "present"}},
        {"function": {"prevents_domestic_or_carer": True}},
    )
    for policy in RULES.policies:
        decision = decided(document, policy)
        assert decision.decision == "eligible" and not decision.robust
        assert decision.possible == ("eligible", "not_eligible")
        [contest] = decision.contested
        assert contest.readings == ("SFI.connective", "C4.instability")
        assert contest.decision == "not_eligible"
        assert contest.to_json()["readings"] == ["SFI.connective", "C4.instability"]
        assert "reading" not in contest.to_json()


def test_p001_is_contested_by_c6_and_destruction_risk_would_settle_it() -> None:
    decision = decided(helpers.P001, "hip-resurfacing")
    assert decision.decision == "not_eligible" and not decision.robust
    assert decision.missing == () and decision.to_settle == ("joint.destruction_risk",)
    assert decision.possible == ("not_eligible", "undetermined")


def check_against_brute_force(values: dict[str, Any]) -> None:
    document = validate(helpers.nested(values), RULES, "random")
    for decision in REASONER.decide(document):
        possible, found = helpers.weighed(RULES, decision.policy, values)
        assert list(decision.possible) == possible
        assert decision.robust == (len(possible) == 1)
        got = sorted(((frozenset(c.readings), c.decision) for c in decision.contested), key=_order)
        assert got == sorted(found, key=_order)
        assert list(decision.to_settle) == helpers.settles(RULES, decision.policy, values)


def _order(item: tuple[frozenset[str], str]) -> tuple[int, list[str], str]:
    return len(item[0]), sorted(item[0]), item[1]


@SETTINGS
@given(partial_patients(max_unknown=0))
def test_fully_known_patients_are_weighed_as_brute_force_weighs_them(values: dict[str, Any]) -> None:
    check_against_brute_force(values)


@settings(max_examples=examples(60), deadline=None)
@given(partial_patients(max_unknown=4))
def test_partly_known_patients_are_weighed_as_brute_force_weighs_them(values: dict[str, Any]) -> None:
    """Unknowns included: alternatives that change an undetermined decision, and the answers
    that could settle a contested one."""
    check_against_brute_force(values)


SEARCH = WhatIfSearch.load()


@settings(max_examples=examples(40), deadline=None)
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


def test_every_example_is_weighed_as_brute_force_weighs_it() -> None:
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).parent.parent / "examples").glob("*.json")):
        document = validate(json.loads(path.read_text()), RULES, str(path))
        check_against_brute_force(dict(document.values))


# -- issue 28: alternatives that change an undetermined decision ---------------------------------


def unknown(document: dict[str, Any], *paths: str) -> dict[str, Any]:
    """`document` with the fields at `paths` left out (unknown)."""
    document = {key: dict(value) if isinstance(value, dict) else value for key, value in document.items()}
    for path in paths:
        group, _, name = path.partition(".")
        if name:
            document[group].pop(name, None)
        else:
            document.pop(group, None)
    return document


# reading -> an undetermined patient (under the adopted reading) that the alternative alone
# decides otherwise, and the decision under it (found against the Python oracle)
UNDETERMINED: dict[str, tuple[dict[str, Any], str]] = {
    "C3.impairment": (
        unknown(
            patient({"pain": {"severity": "none"}, "function": {"impairment": "severe"}}),
            "radiology.severity",
        ),
        "not_eligible",
    ),
    "C4.cut-off": (
        unknown(
            patient({"pain": {"severity": "mild"}, "radiology": {"severity": "moderate"}}),
            "function.prevents_domestic_or_carer",
        ),
        "not_eligible",
    ),
    "C4.instability": (
        unknown(
            patient({"function": {"impairment": "mild"}, "joint": {"instability": "present"}}),
            "conservative.failed",
            "radiology.severity",
        ),
        "not_eligible",
    ),
    "C4.radiology": (
        unknown(
            patient(
                {"conservative": {"contraindicated": True}, "function": {"impairment": "none"}},
                {"radiology": {"severity": "severe"}},
            ),
            "function.prevents_domestic_or_carer",
        ),
        "not_eligible",
    ),
    "C6.route": (unknown(patient({"joint": {"destruction_risk": True}}), "conservative.months"), "eligible"),
    "SFI.connective": (
        unknown(
            patient({"pain": {"persistent": False}}),
            "function.prevents_work_or_education",
            "joint.instability",
        ),
        "not_eligible",
    ),
}


@pytest.mark.parametrize("reading", sorted(UNDETERMINED))
def test_an_alternative_decides_an_undetermined_patient_otherwise(reading: str) -> None:
    """Every row of TABLE is a fully known patient; these are not: the adopted reading leaves the
    decision open, the alternative alone decides it (bugs: a reading that reaches a decision
    only through an unknown field not reported; `possible` without the adopted undetermined)."""
    document, under = UNDETERMINED[reading]
    for policy in TABLE[reading][0]:
        decision = decided(document, policy)
        assert decision.decision == "undetermined" and not decision.robust, policy
        assert contested(document, policy).get(reading) == under, policy
        assert set(decision.possible) == {"undetermined", under}
        check_against_brute_force(dict(validate(document, RULES, "row").values))


def test_an_alternative_on_an_unknown_field_leaves_the_decision_undetermined() -> None:
    """Joint instability unknown, C4 hangs on it (moderate or worse disease, no SFI, no other
    route): under "significant instability only" C4 is as unknown as under the adopted reading,
    so that alternative decides nothing (bug: its condition read as not met while the field is
    unknown, a refusal the record does not support). The other two readings of C4 refuse."""
    document = unknown(
        patient(
            {"pain": {"severity": "mild"}, "function": {"impairment": "mild"}},
            {"radiology": {"severity": "severe"}, "independence": {"immediate_danger": True}},
        ),
        "joint.instability",
    )
    for policy in RULES.policies:
        decision = decided(document, policy)
        assert decision.decision == "undetermined"
        assert contested(document, policy) == {"C4.radiology": "not_eligible", "C4.cut-off": "not_eligible"}
        assert decision.to_settle == () and decision.missing == ("joint.instability",)
    check_against_brute_force(dict(validate(document, RULES, "row").values))


def test_an_undetermined_decision_one_reading_refuses_still_asks_what_could_settle_it() -> None:
    """Radiology unknown: undetermined; under the C4 cut-off reading (persistent pain; here none)
    refused. One reading decides, so an answer may still bring every reading together: whether
    the symptoms prevent work (SFI read as both bullets) is asked as well as what is missing (bug:
    a contest taken as unsettleable once any reading decides it, so nothing more was asked)."""
    values = {
        **{p: v for p, v in flat(FULL).items() if not p.startswith(("radiology", "independence"))},
        "pain.severity": "none",
        "function.impairment": "mild",
        "function.prevents_domestic_or_carer": True,
        "joint.instability": "present",
        "independence.replacement_would_relieve": False,
    }
    del values["function.prevents_work_or_education"]
    for policy in RULES.policies:
        decision = decided(helpers.nested(values), policy)
        assert decision.decision == "undetermined" and contested(helpers.nested(values), policy) == {
            "C4.cut-off": "not_eligible"
        }
        assert decision.to_settle == ("function.prevents_work_or_education",)
        assert decision.missing == ("radiology.severity",)
    check_against_brute_force(values)


def flat(document: dict[str, Any]) -> dict[str, Any]:
    """A nested record as dotted paths."""
    return {
        f"{key}.{name}" if isinstance(value, dict) else key: inner
        for key, value in document.items()
        for name, inner in (value.items() if isinstance(value, dict) else [(None, value)])
    }
