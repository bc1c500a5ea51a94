"""The requirement tree and a patient's decision as pictures, drawn from the rules: complete
(every requirement, every part), marks for contested readings and text defects, status by a
symbol and a word as well as by colour; and the same tree as Graphviz source."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_rules import SHOULDER, copy_rules

from llr_asp import Reasoner, RuleSet, load_rules, validate
from llr_asp.core.decision import Node
from llr_asp.views.pictures import PURPLE, decision_tree, policy_dot, policy_rows, policy_tree
from llr_asp.views.wording import headline

NS = "{http://www.w3.org/2000/svg}"
EXAMPLES = Path(__file__).parent.parent / "examples"


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{NS}text")]


@pytest.mark.parametrize("policy", ["hip-resurfacing", "knee-resurfacing"])
def test_the_tree_holds_every_requirement_and_every_part(rules: RuleSet, policy: str) -> None:
    declared = rules.policies[policy]
    svg = policy_tree(declared)
    root = ET.fromstring(svg)
    words = texts(svg)
    assert set(declared.requirements) <= set(words)  # each id is a <text> of its own
    joined = " ".join(words)  # a label wrapped over lines is consecutive <text>s
    assert all(r.label in joined for r in declared.requirements.values())
    rows = policy_rows(declared)
    edges = sum(len(r.parts) for r in declared.requirements.values())
    assert len(rows) == edges + 1  # one row per place in the tree: the root, then one per part
    assert len(list(root.iter(f"{NS}path"))) == edges  # one connector per part
    assert "style" not in svg and root.get("role") == "img"
    assert declared.reference in root[0].text  # type: ignore[operator]


def test_contested_points_are_outlined_and_flagged_and_defects_marked(rules: RuleSet) -> None:
    hip = rules.policies["hip-resurfacing"]
    svg = policy_tree(hip)
    words = texts(svg)
    for reading in hip.readings.values():
        assert any(w.startswith("⚑ contested:") and reading.id in w for w in words), reading.id
    outlined = [r for r in ET.fromstring(svg).iter(f"{NS}rect") if r.get("stroke") == PURPLE]
    contested = {r.requirement for r in hip.readings.values()}
    places = [r for r in policy_rows(hip) if r.id in contested]
    assert len(outlined) == len(places) and all(r.get("stroke-dasharray") for r in outlined)
    defective = [r for r in hip.requirements.values() if r.defects]
    assert sum(w.startswith("⚠ text defect") for w in words) == len(defective)
    assert "from the background text" in words  # the sex criterion


def test_a_new_policy_is_drawn_with_no_code_change(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    (rules_dir / "shoulder_test.lp").write_text(SHOULDER)
    shoulder = load_rules(rules_dir).policies["shoulder-test"]
    words = texts(policy_tree(shoulder))
    assert {"eligibility", "pain", "months", "pain.severity = severe", "conservative.months ≥ 6"} <= set(
        words
    )


def drawn(node: Node, seen: set[str]) -> list[str]:
    """The statuses of the places a decision's picture draws: a part under two parents at both,
    its own parts only at the first."""
    if node.id in seen:
        return [node.status]
    seen.add(node.id)
    return [node.status, *(s for child in node.children for s in drawn(child, seen))]


@pytest.mark.parametrize("example", ["route-c4-sfi", "undetermined-pain-unknown", "refused-hip-female"])
def test_a_decision_shows_each_status_by_symbol_and_word(reasoner: Reasoner, example: str) -> None:
    document = json.loads((EXAMPLES / f"{example}.json").read_text())
    patient = validate(document, reasoner.rules, example)
    for decision in reasoner.decide(patient, list(reasoner.rules.policies.values())):
        svg = decision_tree(decision)
        words = texts(svg)
        places = drawn(decision.tree, set())
        said = {"met": "✔ met", "not_met": "✘ not met", "unknown": "? unknown"}
        root = [] if decision.robust else [decision.tree.status]  # the root: qualified, never a plain tick
        for status, word in said.items():
            assert words.count(word) == places.count(status) - root.count(status), (example, status)
        if not decision.robust:
            assert f"⚑ {said[decision.tree.status][2:]} on the adopted reading" in words
        for contest in decision.contested:
            for reading in contest.readings:
                assert any(w.startswith("⚑ contested:") and reading in w for w in words)
        for node in decision.tree.walk():
            for evidence in node.evidence:
                assert any(w.startswith(f"patient: {evidence.field}") for w in words)
        title = ET.fromstring(svg)[0].text or ""
        assert title.endswith(
            ": " + headline(decision)
        )  # qualified as everywhere: never a plain contested verdict


def test_graphviz_source_has_every_node_and_edge(rules: RuleSet) -> None:
    knee = rules.policies["knee-resurfacing"]
    dot = policy_dot(knee)
    assert dot.startswith('digraph "knee-resurfacing" {') and dot.rstrip().endswith("}")
    nodes = set(re.findall(r'^  "([^"]+)" \[label=', dot, re.M))
    assert nodes == set(knee.requirements)
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"', dot, re.M)
    assert sorted(edges) == sorted((r.id, p) for r in knee.requirements.values() for p in r.parts)
    assert '"C" -> "C1" [style=dashed, label="or"]' in dot  # any-of
    assert 'color="#330072"' in dot and "⚑ contested: C.structure" in dot
