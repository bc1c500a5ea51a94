"""Rule tests as data: for each requirement, patients (as dotted fields) and the statuses expected.

Each row: policy, the known fields, and the expected status of some requirements. Fields not
given are unknown.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import nested

from llr_asp import Reasoner, RuleSet, validate

HIP, KNEE = "hip-resurfacing", "knee-resurfacing"
A_MET = {"msk.assessed": True, "msk.end_stage_oa": True, "msk.suitable_for_surgical_referral": True}

TABLE: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    # A: all of assessed, end-stage OA, suitable for referral
    (HIP, A_MET, {"A": "met"}),
    (HIP, {**A_MET, "msk.end_stage_oa": False}, {"A": "not_met", "A.end_stage_oa": "not_met"}),
    (HIP, {"msk.assessed": True, "msk.end_stage_oa": True}, {"A": "unknown", "A.referral": "unknown"}),
    (HIP, {"msk.assessed": False}, {"A": "not_met"}),  # one refusal settles an all-of
    # B: at least six months, documented, failed
    (
        HIP,
        {"conservative.months": 6, "conservative.documented": True, "conservative.failed": True},
        {"B": "met"},
    ),
    (
        HIP,
        {"conservative.months": 5.9, "conservative.documented": True, "conservative.failed": True},
        {"B": "not_met", "B.months": "not_met"},
    ),
    (HIP, {"conservative.months": 6.5}, {"B.months": "met", "B": "unknown"}),
    (HIP, {"conservative.months": 1200}, {"B.months": "met"}),
    (HIP, {"conservative.months": 0}, {"B.months": "not_met", "B": "not_met"}),
    (HIP, {"conservative.documented": False}, {"B": "not_met"}),
    # C1: pain >= intense, persistent, impairment >= moderate
    (
        HIP,
        {"pain.severity": "intense", "pain.persistent": True, "function.impairment": "moderate"},
        {"C1": "met", "C": "met"},
    ),
    (
        HIP,
        {"pain.severity": "severe", "pain.persistent": True, "function.impairment": "severe"},
        {"C1": "met"},
    ),
    (
        HIP,
        {"pain.severity": "moderate", "pain.persistent": True, "function.impairment": "severe"},
        {"C1": "not_met"},
    ),
    (
        HIP,
        {"pain.severity": "severe", "pain.persistent": False, "function.impairment": "severe"},
        {"C1": "not_met"},
    ),
    (
        HIP,
        {"pain.severity": "severe", "pain.persistent": True, "function.impairment": "mild"},
        {"C1": "not_met"},
    ),
    (HIP, {"pain.severity": "severe", "function.impairment": "mild"}, {"C1": "not_met"}),
    (HIP, {"pain.severity": "severe", "function.impairment": "severe"}, {"C1": "unknown", "C": "unknown"}),
    # SFI: work or domestic
    (HIP, {"function.prevents_work_or_education": True}, {"SFI": "met"}),
    (HIP, {"function.prevents_domestic_or_carer": True}, {"SFI": "met"}),
    (HIP, {"function.prevents_work_or_education": False}, {"SFI": "unknown"}),
    (
        HIP,
        {"function.prevents_work_or_education": False, "function.prevents_domestic_or_carer": False},
        {"SFI": "not_met"},
    ),
    # C2: instability significant and SFI
    (HIP, {"joint.instability": "significant", "function.prevents_domestic_or_carer": True}, {"C2": "met"}),
    (HIP, {"joint.instability": "present", "function.prevents_domestic_or_carer": True}, {"C2": "not_met"}),
    (HIP, {"joint.instability": "significant"}, {"C2": "unknown"}),
    # C3: radiology severe and impairment >= moderate
    (HIP, {"radiology.severity": "severe", "function.impairment": "moderate"}, {"C3": "met"}),
    (HIP, {"radiology.severity": "severe", "function.impairment": "severe"}, {"C3": "met"}),
    (HIP, {"radiology.severity": "moderate", "function.impairment": "severe"}, {"C3": "not_met"}),
    (HIP, {"radiology.severity": "severe", "function.impairment": "mild"}, {"C3": "not_met"}),
    # C4: radiology >= moderate and (SFI or any instability)
    (HIP, {"radiology.severity": "moderate", "joint.instability": "present"}, {"C4": "met"}),
    (HIP, {"radiology.severity": "severe", "function.prevents_work_or_education": True}, {"C4": "met"}),
    (HIP, {"radiology.severity": "mild", "joint.instability": "significant"}, {"C4": "not_met"}),
    (HIP, {"radiology.severity": "moderate", "joint.instability": "none"}, {"C4": "unknown"}),
    (
        HIP,
        {
            "radiology.severity": "moderate",
            "joint.instability": "none",
            "function.prevents_work_or_education": False,
            "function.prevents_domestic_or_carer": False,
        },
        {"C4": "not_met"},
    ),
    # C5: severe persistent pain, severe impairment, danger, relief, conservative contra-indicated
    (
        HIP,
        {
            "pain.severity": "severe",
            "pain.persistent": True,
            "function.impairment": "severe",
            "independence.immediate_danger": True,
            "independence.replacement_would_relieve": True,
            "conservative.contraindicated": True,
        },
        {"C5": "met", "C1": "met"},
    ),
    (
        HIP,
        {
            "pain.severity": "intense",
            "pain.persistent": True,
            "function.impairment": "severe",
            "independence.immediate_danger": True,
            "independence.replacement_would_relieve": True,
            "conservative.contraindicated": True,
        },
        {"C5": "not_met", "C1": "met"},
    ),
    (HIP, {"conservative.contraindicated": False}, {"C5": "not_met"}),
    # C6: risk of joint destruction
    (HIP, {"joint.destruction_risk": True}, {"C6": "met", "C": "met"}),
    (HIP, {"joint.destruction_risk": False}, {"C6": "not_met", "C": "unknown"}),
    # no_contraindication (hip) and compartments (knee)
    (HIP, {"sex": "female"}, {"no_contraindication": "not_met", "eligibility": "not_met"}),
    (HIP, {"sex": "male"}, {"no_contraindication": "met", "eligibility": "unknown"}),
    (HIP, {}, {"no_contraindication": "unknown"}),
    (KNEE, {"knee.compartments_affected": 1}, {"compartments": "met"}),
    (KNEE, {"knee.compartments_affected": 2}, {"compartments": "met"}),
    (KNEE, {"knee.compartments_affected": 3}, {"compartments": "not_met", "eligibility": "not_met"}),
    (KNEE, {"sex": "female"}, {"eligibility": "unknown"}),
    # C: any of C1-C6
    (KNEE, {"joint.destruction_risk": True}, {"C": "met"}),
    (
        KNEE,
        {
            "joint.destruction_risk": False,
            "conservative.contraindicated": False,
            "pain.severity": "mild",
            "radiology.severity": "none",
            "joint.instability": "none",
        },
        {"C": "not_met"},
    ),
]


@pytest.mark.parametrize(("policy", "fields", "expected"), TABLE)
def test_requirement_status(
    policy: str, fields: dict[str, Any], expected: dict[str, str], rules: RuleSet, reasoner: Reasoner
) -> None:
    patient = validate(nested(fields), rules, "table")
    [decision] = reasoner.decide(patient, [rules.policies[policy]])
    statuses = {node.id: node.status for node in decision.tree.walk()}
    assert {rid: statuses[rid] for rid in expected} == expected


def test_reasons_are_the_parts_that_share_the_status(rules: RuleSet, reasoner: Reasoner) -> None:
    """ "Why": the met route of a met any-of; "why not": the failing parts of an all-of."""
    fields = {
        **A_MET,
        "conservative.months": 4,
        "conservative.documented": True,
        "conservative.failed": True,
        "joint.destruction_risk": True,
        "sex": "male",
    }
    [decision] = reasoner.decide(validate(nested(fields), rules, "t"), [rules.policies[HIP]])
    nodes = {n.id: n for n in decision.tree.walk()}
    assert [c.id for c in decision.tree.children if c.reason] == ["B"]
    assert [c.id for c in nodes["B"].children if c.reason] == ["B.months"]
    assert [c.id for c in nodes["C"].children if c.reason] == ["C6"]


def test_a_requirement_without_a_sentence_of_its_own_carries_its_parents(
    rules: RuleSet, reasoner: Reasoner
) -> None:
    """B.months encodes part of B's sentence and declares none of its own: its node carries B's,
    as every node the rules give no text carries the nearest ancestor's (bug: an empty text for
    the conditions, so a letter or a card quoted nothing for them)."""
    patient = validate({"sex": "male"}, rules, "p")
    for decision in reasoner.decide(patient):
        policy = decision.policy
        stack = [(decision.tree, decision.tree.text)]
        while stack:
            node, above = stack.pop()
            own = policy.requirements[node.id].text
            assert node.text == (own or above) and node.text, node.id
            stack += [(child, node.text) for child in node.children]
        b = {n.id: n for n in decision.tree.walk()}
        assert b["B.months"].text == b["B"].text and not policy.requirements["B.months"].text
