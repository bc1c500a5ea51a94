"""Decisions with their justification: plain frozen data, ready for any renderer."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .ruleset import Policy, Test, Value, show
from .sources import Conflict, Stated
from .urgency import doubted, urgent_json

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
    defects: tuple[str, ...] = ()  # what is wrong with the published sentence it encodes

    def walk(self) -> list[Node]:
        """This node and every node below it, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]


class Taken(NamedTuple):
    """A clinical alternative that a reading takes."""

    reading: str  # the contested point's id
    alternative: str  # the alternative's id
    requirement: str  # the requirement whose sentence the point reads
    text: str  # the alternative, in one line


@dataclass(frozen=True)
class Contest:
    """A subset-minimal set of clinical alternatives under which the decision would differ,
    and the decision under them: one alternative, or a combination of several (of different
    points) when no one of them alone reaches that decision."""

    taken: tuple[Taken, ...]
    decision: str  # the decision under them

    @property
    def readings(self) -> tuple[str, ...]:
        """The contested points read otherwise."""
        return tuple(t.reading for t in self.taken)

    @property
    def requirements(self) -> tuple[str, ...]:
        """The requirements whose sentences are read otherwise, each once."""
        return tuple(dict.fromkeys(t.requirement for t in self.taken))

    def label(self) -> str:
        """The points read otherwise, as one id: `C4.cut-off`, or `SFI.connective+C4.instability`."""
        return "+".join(self.readings)

    def described(self) -> str:
        """The alternatives taken, in words, one after another."""
        return " And: ".join(t.text for t in self.taken)

    def to_json(self) -> dict[str, Any]:
        if len(self.taken) == 1:
            [one] = self.taken
            return {
                "reading": one.reading,
                "readings": [one.reading],
                "requirement": one.requirement,
                "alternative": one.text,
                "decision": self.decision,
            }
        return {
            "readings": list(self.readings),
            "requirements": list(self.requirements),
            "alternatives": [t.text for t in self.taken],
            "decision": self.decision,
        }


@dataclass(frozen=True)
class Warning:
    """A domain assumption that the patient record contradicts."""

    assumption: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"assumption": self.assumption, "text": self.text}


def contests(policy: Policy, found: Iterable[tuple[frozenset[tuple[str, str]], str]]) -> tuple[Contest, ...]:
    """The (alternatives taken, decision) pairs of a solve as contests: fewest alternatives
    first, then in the order the rules declare the readings and their alternatives."""
    order = {
        (reading.id, alternative.id): (n, reading, alternative)
        for n, (reading, alternative) in enumerate(
            (r, a) for r in policy.readings.values() for a in r.alternatives
        )
    }
    made = []
    for taken, decision in found:
        chosen = sorted(order[t] for t in taken)
        made.append(
            (
                (len(chosen), [n for n, _, _ in chosen], DECISIONS.index(decision)),
                Contest(tuple(Taken(r.id, a.id, r.requirement, a.text) for _, r, a in chosen), decision),
            )
        )
    return tuple(contest for _, contest in sorted(made, key=lambda item: item[0]))


DECISIONS = ("eligible", "not_eligible", "undetermined")


def reached(decision: str, contested: Iterable[Contest], others: Iterable[str] = ()) -> tuple[str, ...]:
    """The decisions a verdict can reach, in DECISIONS' order: its own, each contested reading's,
    and any `others` (what a disputed field's sources would decide)."""
    found = {decision, *(c.decision for c in contested), *others}
    return tuple(d for d in DECISIONS if d in found)


def plain(decision: str) -> str:
    """A decision in running text: `not eligible`."""
    return decision.replace("_", " ")


"""The decisions, in the order `possible` lists them."""


def steady(
    contested: Sequence[object], disputed: Sequence[object] = (), under_unconfirmed: Sequence[str] = ()
) -> bool:
    """Whether a decision is robust (DESIGN §4): no clinical reading of the text decides otherwise
    (`contested`), no field whose sources disagree could change it (`disputed`), and it does not
    rest on a value no one confirmed for this referral (`under_unconfirmed`: the decisions reached
    were those values not known, `Reasoner._weigh_unconfirmed`). The one rule every surface
    applies: a Decision, what-if (from its Decision) and a cohort's line."""
    return not contested and not disputed and not under_unconfirmed


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
    contested: tuple[Contest, ...] = ()  # the clinical alternatives under which it would differ
    warnings: tuple[Warning, ...] = ()  # domain assumptions the record contradicts
    to_settle: tuple[str, ...] = ()  # unknown fields, besides missing, that could settle the readings
    conflicts: tuple[Conflict, ...] = ()  # fields whose sources disagree (unknown for the decision)
    filled: tuple[Stated, ...] = ()  # values the clinical system's record gave, no one answered
    under_conflicts: tuple[str, ...] = ()  # decisions a disputed field's other values would give
    under_unconfirmed: tuple[str, ...] = ()  # decisions reached were the unconfirmed values unknown
    barred: tuple[str, ...] = ()  # fields the rules bar raising for this patient (bars/4: the guard holds)
    given: str | None = None  # when the form says the answers were given (Patient.given)

    @property
    def robust(self) -> bool:
        """Whether every combination of the clinical readings gives this decision, no field whose
        sources disagree could change it, and it does not rest on a value no one confirmed (the
        EHR's administrative record, an older form's answer)."""
        return steady(self.contested, self.disputed, self.under_unconfirmed)

    @property
    def unconfirmed(self) -> tuple[Stated, ...]:
        """The values no one confirmed that the decision rests on (were they not known, it would
        differ): to confirm first."""
        return self.doubted if self.under_unconfirmed else ()

    @property
    def doubted(self) -> tuple[Stated, ...]:
        """The values of the policy's fields that only a source no one confirmed for this
        referral gave (core.urgency.UNCONFIRMED), whether or not the decision turns on them."""
        return doubted(self.policy, self.filled)

    @property
    def statuses(self) -> dict[str, str]:
        """Every requirement of the tree and its status (what core.urgency reads)."""
        return {n.id: n.status for n in self.tree.walk()}

    @property
    def disputed(self) -> tuple[Conflict, ...]:
        """The conflicts the decision turns on: fields whose sources disagree and whose answer
        can still change it (asked first)."""
        return tuple(c for c in self.conflicts if c.field in self.missing or c.field in self.to_settle)

    @property
    def possible(self) -> tuple[str, ...]:
        """The decisions reached under some combination of the clinical readings, or with a
        disputed field set to one of its sources' values."""
        return reached(self.decision, self.contested, (*self.under_conflicts, *self.under_unconfirmed))

    def failed(self) -> list[str]:
        """Ids of the requirements not met, in tree order, each once."""
        return list(dict.fromkeys(n.id for n in self.tree.walk() if n.status == "not_met"))

    def stopped_by(self) -> list[str]:
        """The requirements that are a reason for a refusal or an undetermined decision: the parts
        of the decision root whose status is the root's (the root itself when it has no parts);
        none when eligible. A cohort's lines carry the same (batch.stopped_by)."""
        root = self.tree
        if root.status == "met":
            return []
        if not root.children:
            return [root.id]
        return [child.id for child in root.children if child.status == root.status]

    def to_json(self, today: datetime.date | None = None) -> dict[str, Any]:
        """The output contract of `llr-asp explain --format json` (DESIGN §6); `review` says
        whether the policy's review date has passed on `today` (default: the date now)."""
        return {
            "patient": self.patient,
            "policy": self.policy.id,
            "reference": self.policy.reference,
            "decision": self.decision,
            "tree": _node_json(self.tree),
            "missing": list(self.missing),
            "robust": self.robust,
            "possible": list(self.possible),
            "contested": [c.to_json() for c in self.contested],
            "to_settle": list(self.to_settle),
            "warnings": [w.to_json() for w in self.warnings],
            "conflicts": [c.to_json() for c in self.conflicts],
            "filled": [{"field": s.field, **s.to_json()} for s in self.filled],
            "urgent": self.urgent_json(),
            "review": self.policy.review_json(today or datetime.date.today()),
            "edition": self.policy.edition_json(self.rules),
            "rules": self.rules,
        }

    def urgent_json(self) -> dict[str, Any] | None:
        """The route the policy says not to wait for that the patient meets or may meet, and the
        action it asks first (core.urgency.urgent_json: a cohort's line says the same); None for
        none. A program that reads only the verdict must not miss it."""
        return urgent_json(self)


def _node_json(node: Node) -> dict[str, Any]:
    rid, status, label, text, interpretation, evidence, children, _, defects = node
    return {
        "id": rid,
        "status": status,
        "label": label,
        "text": text,
        "interpretation": interpretation,
        "defects": list(defects),
        "evidence": [{"field": e[0], "value": e[1], "test": e[2].describe()} for e in evidence]
        if evidence
        else [],
        "children": [_node_json(child) for child in children] if children else [],
    }


def per_policy(objects: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """One policy's answer as an object, several as an array (DESIGN §6): the body of the CLI's
    `--format json` and of the web API alike."""
    return objects[0] if len(objects) == 1 else objects
