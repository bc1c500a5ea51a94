"""Test helpers: building documents from dotted paths, and an independent oracle.

The oracle evaluates a policy's declared requirement tree in plain Python, straight from
DESIGN §4, so that the clingo encoding can be checked against it and against brute force.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterator, Mapping

import clingo

from llr_asp import Policy, RuleSet
from llr_asp.core.patient import nested as nested
from llr_asp.core.ruleset import Requirement, Test, Value, engine_file, symbol_value


def passes(rules: RuleSet, field: str, op: str, target: Value, value: Value) -> bool:
    spec = rules.fields[field]
    if spec.type == "grade":
        rank = spec.values.index
        a, b = rank(value), rank(target)  # type: ignore[arg-type]
    else:
        a, b = value, target  # type: ignore[assignment]
    return {
        "eq": a == b and type(a) is type(b) if isinstance(a, bool) else a == b,
        "ne": a != b,
        "ge": a >= b,  # type: ignore[operator]
        "gt": a > b,  # type: ignore[operator]
        "le": a <= b,  # type: ignore[operator]
        "lt": a < b,  # type: ignore[operator]
    }[op]


def status(rules: RuleSet, policy: Policy, rid: str, values: Mapping[str, Value]) -> str:
    """Strong Kleene status of requirement `rid` for a partial patient."""
    requirement = policy.requirements[rid]
    if requirement.test is not None:
        test = requirement.test
        if test.field not in values:
            return "unknown"
        passed = passes(rules, test.field, test.op, test.value, values[test.field])
        return "met" if passed else "not_met"
    parts = [status(rules, policy, c, values) for c in requirement.parts]
    decisive, other = ("not_met", "met") if requirement.form == "all_of" else ("met", "not_met")
    if decisive in parts:
        return decisive
    return other if all(p == other for p in parts) else "unknown"


P001 = {
    "id": "p-001",
    "sex": "male",
    "msk": {"assessed": True, "end_stage_oa": True, "suitable_for_surgical_referral": True},
    "conservative": {"months": 4, "documented": True, "failed": True},
    "pain": {"severity": "intense", "persistent": True},
    "function": {"impairment": "moderate"},
}
"""The README's p-001: refused for four months of care, contested by the C6 reading."""

DECISION = {"met": "eligible", "not_met": "not_eligible", "unknown": "undetermined"}


def decision(rules: RuleSet, policy: Policy, values: Mapping[str, Value]) -> str:
    return DECISION[status(rules, policy, policy.root, values)]


def outcome_values(rules: RuleSet, field: str) -> list[Value]:
    """Values of a field that realise every outcome of the policies' tests on it."""
    spec = rules.fields[field]
    if spec.type == "bool":
        return [True, False]
    if spec.type == "date":  # no condition tests a date: it picks the edition in force
        return ["2026-04-01", "2027-04-01"]
    if spec.values:
        return list(spec.values)
    points = {spec.minimum, spec.maximum}
    for policy in rules.policies.values():
        for requirement in policy.requirements.values():
            if requirement.test and requirement.test.field == field:
                t = int(requirement.test.value)  # type: ignore[arg-type]
                points |= {t - 1, t, t + 1}
    return sorted(p for p in points if spec.minimum <= p <= spec.maximum)  # type: ignore[operator]


def completions(
    rules: RuleSet, values: Mapping[str, Value], unknown: list[str]
) -> Iterator[dict[str, Value]]:
    for choice in itertools.product(*(outcome_values(rules, f) for f in unknown)):
        yield {**values, **dict(zip(unknown, choice))}


def brute_missing(rules: RuleSet, policy: Policy, values: Mapping[str, Value]) -> list[str]:
    """DESIGN §4 `missing`, by enumerating every completion of the relevant unknown fields."""
    unknown = [f for f in rules.fields if f not in values and f in policy.fields()]
    missing = []
    for field in unknown:
        others = [f for f in unknown if f != field]
        for completion in completions(rules, values, others):
            outcomes = {
                decision(rules, policy, {**completion, field: v}) for v in outcome_values(rules, field)
            }
            if len(outcomes) > 1:
                missing.append(field)
                break
    return missing


@functools.cache
def variant(rules: RuleSet, policy_id: str, reading: str, alternative: str) -> Policy:
    """`policy` read with an alternative, built in Python as the overlay the vocabulary
    describes: the requirements the alternative declares replace or join the policy's, every
    other requirement stays as it is. (The engine evaluates variants differently, copying only
    the changed path and inheriting the rest, so this is an independent oracle.)"""
    policy = rules.policies[policy_id]
    control = clingo.Control(["--warn=none"])
    for file in [*rules.files, engine_file("vocabulary.lp")]:
        control.load(file)
    control.ground([("base", [])])
    name = clingo.Function(
        "alt", [clingo.String(policy.id), clingo.String(reading), clingo.String(alternative)]
    )

    def declared(predicate: str, arity: int) -> list[list[clingo.Symbol]]:
        atoms = control.symbolic_atoms.by_signature(predicate, arity)
        return [list(a.symbol.arguments[1:]) for a in atoms if a.symbol.arguments[0] == name]

    parts: dict[str, list[tuple[int, str]]] = {}
    for r, n, c in declared("part", 4):
        parts.setdefault(r.string, []).append((n.number, c.string))
    requirements = dict(policy.requirements)
    for form in ("all_of", "any_of"):
        for r, label in declared(form, 3):
            ordered = tuple(c for _, c in sorted(parts[r.string]))
            requirements[r.string] = Requirement(r.string, form, label.string, None, (), ordered, None)
    for r, label, f, op, v in declared("condition", 6):
        test = Test(f.string, op.name, symbol_value(v))
        requirements[r.string] = Requirement(r.string, "condition", label.string, None, (), (), test)
    return dataclasses.replace(policy, requirements=requirements, readings={})


def contested(rules: RuleSet, policy: Policy, values: Mapping[str, Value]) -> list[tuple[str, str]]:
    """DESIGN §6 `contested` by brute force: (reading, decision) for each alternative under
    which the oracle decides the patient otherwise, one alternative at a time."""
    adopted = decision(rules, policy, values)
    found = []
    for reading in policy.readings.values():
        for alternative in reading.alternatives:
            other = decision(rules, variant(rules, policy.id, reading.id, alternative.id), values)
            if other != adopted:
                found.append((reading.id, other))
    return found


def clinical(policy: Policy) -> list[tuple[str, list[str]]]:
    """Each contested point of `policy` with its clinical alternatives (those a reading may take)."""
    points = [(r.id, [a.id for a in r.alternatives if a.clinical]) for r in policy.readings.values()]
    return [(x, alts) for x, alts in points if alts]


@functools.cache
def combined(rules: RuleSet, policy_id: str, taken: frozenset[tuple[str, str]]) -> Policy:
    """`policy` read with several alternatives at once, each (reading, alternative) of `taken`:
    a requirement that one of them declares is theirs; one that several declare has the parts
    of all of them (they declare it alike, each adding its own); every other is the policy's."""
    policy = rules.policies[policy_id]
    requirements = dict(policy.requirements)
    merged: dict[str, Requirement] = {}
    for reading, alternative in sorted(taken):
        for rid, requirement in variant(rules, policy_id, reading, alternative).requirements.items():
            if requirement == policy.requirements.get(rid):
                continue
            if rid in merged and requirement.form != "condition":
                parts = tuple(dict.fromkeys([*merged[rid].parts, *requirement.parts]))
                requirement = dataclasses.replace(requirement, parts=parts)
            merged[rid] = requirement
    requirements.update(merged)
    return dataclasses.replace(policy, requirements=requirements, readings={})


def readings(policy: Policy) -> Iterator[frozenset[tuple[str, str]]]:
    """Every combination of the clinical readings: one alternative, or none, per point."""
    points = clinical(policy)
    for choice in itertools.product(*([None, *alts] for _, alts in points)):
        yield frozenset((x, a) for (x, _), a in zip(points, choice) if a is not None)


def weighed(
    rules: RuleSet, policy: Policy, values: Mapping[str, Value]
) -> tuple[list[str], list[tuple[frozenset[str], str]]]:
    """DESIGN §4 `possible` and `contested` by brute force over every combination of the
    clinical readings: the decisions reached, in DECISIONS order, and for each decision other
    than the adopted one the subset-minimal sets of points (by id) that reach it."""
    adopted = decision(rules, policy, values)
    reached = {
        taken: decision(rules, combined(rules, policy.id, taken), values) for taken in readings(policy)
    }
    found = []
    for taken, other in reached.items():
        if other == adopted:
            continue
        if any(smaller < taken and reached[smaller] == other for smaller in reached):
            continue
        found.append((frozenset(x for x, _ in taken), other))
    order = ["eligible", "not_eligible", "undetermined"]
    possible = [d for d in order if d in set(reached.values())]
    return possible, sorted(found, key=lambda item: (len(item[0]), sorted(item[0]), item[1]))


def settles(rules: RuleSet, policy: Policy, values: Mapping[str, Value]) -> list[str]:
    """DESIGN `to_settle` by brute force: for a decision that is not robust but could become so
    (no two readings decide it differently), the unknown fields besides `missing` whose answer
    changes the decision under some combination of the clinical readings."""
    possible, found = weighed(rules, policy, values)
    if not found or len([d for d in possible if d != "undetermined"]) > 1:
        return []  # robust, or two readings already decide it differently: no answer can settle it
    fields: set[str] = set()
    for taken in readings(policy):
        fields |= set(brute_missing(rules, combined(rules, policy.id, taken), values))
    missing = set(brute_missing(rules, policy, values))
    return [f for f in rules.fields if f in fields - missing]


def unreceipted(value: object) -> object:
    """An answer of the service without its decision receipts (each checked to be one as it
    goes): the API's `"receipt"` members and the FHIR `urn:llr-asp:receipt` extensions; what is
    left is what the CLI prints."""
    from llr_asp.formats.fhir import RECEIPT
    from llr_asp.formats.receipts import Receipt

    if isinstance(value, list):
        kept = []
        for item in value:
            if isinstance(item, dict) and item.get("url") == RECEIPT:
                Receipt.read(item["valueString"])
                continue
            kept.append(unreceipted(item))
        return kept
    if isinstance(value, dict):
        if "receipt" in value:
            Receipt.read(value["receipt"])
        return {k: unreceipted(v) for k, v in value.items() if k != "receipt"}
    return value
