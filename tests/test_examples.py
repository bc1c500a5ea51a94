"""Every bundled example gives the outcome it declares under meta.expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llr_asp import Reasoner, RuleSet, read_patient

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
CASES = [(path, policy) for path in EXAMPLES for policy in json.loads(path.read_text())["meta"]["expected"]]


def test_examples_cover_every_route_and_refusal(rules: RuleSet) -> None:
    """Per policy: an eligible example per route that can lead to funding, a refusal per
    top-level requirement, and the C5 patient: refused under the adopted reading (C5 needs the
    conservative care contra-indicated that B needs six months of), eligible under C5.route."""
    for policy in rules.policies.values():
        met: set[str] = set()
        refused: set[str] = set()
        c5 = []
        for path in EXAMPLES:
            expected = json.loads(path.read_text())["meta"]["expected"].get(policy.id, {})
            if expected.get("decision") == "eligible":
                met |= set(expected.get("met", []))
            if expected.get("decision") == "not_eligible":
                refused |= set(expected.get("not_met", []))
                if "C5" in expected.get("met", []):
                    c5.append(expected["contested"])
        top = set(policy.requirements[policy.root].parts)
        assert {"C1", "C2", "C3", "C4", "C6"} <= met, policy.id
        assert top <= refused, policy.id
        assert any("C5.route=eligible" in contested for contested in c5), policy.id


@pytest.mark.parametrize(("path", "policy"), CASES, ids=[f"{p.stem}:{q}" for p, q in CASES])
def test_example(path: Path, policy: str, rules: RuleSet, reasoner: Reasoner) -> None:
    expected = json.loads(path.read_text())["meta"]["expected"][policy]
    patient = read_patient(str(path), rules)
    [decision] = reasoner.decide(patient, [rules.policies[policy]])
    statuses = {node.id: node.status for node in decision.tree.walk()}
    assert decision.decision == expected["decision"]
    for status in ("met", "not_met", "unknown"):
        for rid in expected.get(status, []):
            assert statuses[rid] == status, rid
    if "missing" in expected:
        assert sorted(decision.missing) == sorted(expected["missing"])
    assert sorted(f"{c.label()}={c.decision}" for c in decision.contested) == expected["contested"]
    assert decision.robust is expected["robust"]
    assert list(decision.to_settle) == expected.get("to_settle", [])
