"""Decisions with their justification: plain frozen data, ready for any renderer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .ruleset import Policy, Test, Value, show

NEEDS = {"eq": "", "ne": "not ", "ge": "≥ ", "gt": "> ", "le": "≤ ", "lt": "< "}


class Evidence(NamedTuple):
    """A patient value a condition used: `conservative.months = 4`, tested `>= 6`."""

    field: str
    value: Value | None  # None: unknown
    test: Test

    def needs(self) -> str:
        """What the condition needs, in words: `needs ≥ 6`, `needs not female`."""
        return f"needs {NEEDS[self.test.op]}{show(self.test.value)}"


class Node(NamedTuple):
    """A requirement as evaluated for one patient. (A named tuple, as Evidence: a decision of
    both policies builds some 80 of them, and as frozen dataclasses they took 0.26 ms, not
    0.16.)"""

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
class Contest:
    """An alternative reading of the policy text under which the decision would differ."""

    reading: str  # the contested point's id
    requirement: str  # the requirement whose sentence it reads
    alternative: str  # the alternative, in one line
    decision: str  # the decision under the alternative

    def to_json(self) -> dict[str, str]:
        return {
            "reading": self.reading,
            "requirement": self.requirement,
            "alternative": self.alternative,
            "decision": self.decision,
        }


@dataclass(frozen=True)
class Warning:
    """A domain assumption that the patient record contradicts."""

    assumption: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"assumption": self.assumption, "text": self.text}


def contests(policy: Policy, otherwise: Iterable[tuple[str, str, str]]) -> tuple[Contest, ...]:
    """The (reading, alternative, decision) triples of a solve as contests, in the order the
    rules declare the readings and their alternatives."""
    found = {(x, a): d for x, a, d in otherwise}
    return tuple(
        Contest(reading.id, reading.requirement, alternative.text, found[reading.id, alternative.id])
        for reading in policy.readings.values()
        for alternative in reading.alternatives
        if (reading.id, alternative.id) in found
    )


def warnings(assumptions: Mapping[str, str], violated: Iterable[str]) -> tuple[Warning, ...]:
    """The violated domain assumptions, in the order the rules declare them."""
    violated = set(violated)
    return tuple(Warning(a, text) for a, text in assumptions.items() if a in violated)


@dataclass(frozen=True)
class Decision:
    """What one policy decides for one patient, and why."""

    patient: str
    policy: Policy
    decision: str  # eligible | not_eligible | undetermined
    tree: Node
    missing: tuple[str, ...]  # unknown fields whose answer can still change the decision
    rules: str  # sha256 of the rule set
    contested: tuple[Contest, ...] = ()  # the alternative readings under which it would differ
    warnings: tuple[Warning, ...] = ()  # domain assumptions the record contradicts

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
            "contested": [c.to_json() for c in self.contested],
            "warnings": [w.to_json() for w in self.warnings],
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


def per_policy(objects: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """One policy's answer as an object, several as an array (DESIGN §6): the body of the CLI's
    `--format json` and of the web API alike."""
    return objects[0] if len(objects) == 1 else objects
