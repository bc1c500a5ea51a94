"""Decisions with their justification: plain frozen data, ready for any renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ruleset import Policy, Test, Value, show

NEEDS = {"eq": "", "ne": "not ", "ge": "≥ ", "gt": "> ", "le": "≤ ", "lt": "< "}


@dataclass(frozen=True)
class Evidence:
    """A patient value a condition used: `conservative.months = 4`, tested `>= 6`."""

    field: str
    value: Value | None  # None: unknown
    test: Test

    def needs(self) -> str:
        """What the condition needs, in words: `needs ≥ 6`, `needs not female`."""
        return f"needs {NEEDS[self.test.op]}{show(self.test.value)}"


@dataclass(frozen=True)
class Node:
    """A requirement as evaluated for one patient."""

    id: str
    status: str  # met | not_met | unknown
    label: str
    text: str  # the policy sentence: the requirement's own, else its parent's
    interpretation: str | None
    evidence: tuple[Evidence, ...]
    children: tuple[Node, ...]
    reason: bool  # this node's status is a reason for its parent's ("why" / "why not")

    def walk(self) -> list[Node]:
        """This node and every node below it, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]


@dataclass(frozen=True)
class Decision:
    """What one policy decides for one patient, and why."""

    patient: str
    policy: Policy
    decision: str  # eligible | not_eligible | undetermined
    tree: Node
    missing: tuple[str, ...]  # unknown fields whose answer can still change the decision
    rules: str  # sha256 of the rule set

    def failed(self) -> list[str]:
        """Ids of the requirements not met, in tree order, each once."""
        return list(dict.fromkeys(n.id for n in self.tree.walk() if n.status == "not_met"))

    def to_json(self) -> dict[str, Any]:
        """The output contract of `llr-asp explain --format json` (DESIGN §6)."""
        return {
            "patient": self.patient,
            "policy": self.policy.id,
            "reference": self.policy.reference,
            "decision": self.decision,
            "tree": _node_json(self.tree),
            "missing": list(self.missing),
            "rules": self.rules,
        }


def _node_json(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "status": node.status,
        "label": node.label,
        "text": node.text,
        "interpretation": node.interpretation,
        "evidence": [{"field": e.field, "value": e.value, "test": e.test.describe()} for e in node.evidence],
        "children": [_node_json(child) for child in node.children],
    }
