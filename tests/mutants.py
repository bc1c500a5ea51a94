"""Single mutations of a rule set, and whether `llr-asp check` catches them.

A mutant changes one thing in one rule file: a threshold by ±1, a comparison operator, a grade
for another grade of the same field, a whole rule removed, or a negation dropped. A mutant
matters when it still loads and changes some example's decision or a requirement status; the
gate must fail on it. Used by tests/test_mutation.py (a sample) and
benchmarks/mutation_score.py (all of them, with the survivors).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llr_asp import InputError, Reasoner, RuleError, read_patient
from llr_asp.core.ruletext import parse_rules
from llr_asp.engines.check import run_check

OPERATORS = ("eq", "ne", "ge", "gt", "le", "lt")
NEGATION = re.compile(r"^(?![ \t]*%)[^%\n\"]*?\bnot\s+(?=-?[a-z_]\w*\()", re.M)  # `not p(` in code, not prose
CONDITION = re.compile(r'condition\((?P<head>[^()]*?"(?P<field>[\w.]+)",\s*)(?P<op>\w+),\s*(?P<value>\w+)\)')


@dataclass(frozen=True)
class Mutant:
    name: str  # file:line and what changed
    file: str  # the rule file, relative to the rule set
    text: str  # its mutated content


def mutants(rules_dir: Path) -> Iterator[Mutant]:
    grades: dict[str, list[str]] = {}
    for field in Reasoner.load(rules_dir).rules.fields.values():
        if field.type == "grade":
            grades[field.path] = list(field.values)
    for path in sorted(rules_dir.glob("*.lp")):
        text = path.read_text(encoding="utf-8")
        for match in CONDITION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            op, value, field = match["op"], match["value"], match["field"]

            def replaced(new_op: str, new_value: str, m: re.Match[str] = match, text: str = text) -> str:
                return text[: m.start("op")] + f"{new_op}, {new_value}" + text[m.end("value") :]

            for other in OPERATORS:
                if other != op:
                    yield Mutant(f"{path.name}:{line} {op} -> {other}", path.name, replaced(other, value))
            if value.isdigit():
                for step in (-1, 1):
                    changed = str(int(value) + step)
                    yield Mutant(f"{path.name}:{line} {value} -> {changed}", path.name, replaced(op, changed))
            for grade in grades.get(field, []):
                if grade != value:
                    yield Mutant(f"{path.name}:{line} {value} -> {grade}", path.name, replaced(op, grade))
        lines = text.splitlines(keepends=True)
        for statement in parse_rules([path]):
            begin, end = statement.location.begin.line, statement.location.end.line
            kept = lines[: begin - 1] + lines[end:]
            yield Mutant(f"{path.name}:{begin} rule removed", path.name, "".join(kept))
        for match in NEGATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            cut = text.rindex("not", match.start(), match.end())
            dropped = text[:cut] + text[match.end() :]
            yield Mutant(f"{path.name}:{line} negation dropped", path.name, dropped)


def outcomes(
    rules_dir: Path, examples_dir: Path
) -> dict[tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]]:
    """Every example's decision and requirement statuses under every policy it expects."""
    reasoner = Reasoner.load(rules_dir)
    found = {}
    for path in sorted(examples_dir.glob("*.json")):
        try:
            patient = read_patient(str(path), reasoner.rules)
        except InputError as error:  # the mutant no longer accepts the example
            found[path.name, ""] = (f"invalid: {error}", ())
            continue
        for policy_id in json.loads(path.read_text())["meta"]["expected"]:
            policy = reasoner.rules.policies.get(policy_id)
            if policy is None:
                found[path.name, policy_id] = ("no such policy", ())
                continue
            [decision] = reasoner.decide(patient, [policy])
            statuses = tuple(sorted({(n.id, n.status) for n in decision.tree.walk()}))
            found[path.name, policy_id] = (decision.decision, statuses)
    return found


def verdict(mutant: Mutant, rules_dir: Path, examples_dir: Path, work: Path, original: dict) -> str:  # type: ignore[type-arg]
    """ "killed", "survived", "equivalent" (no example changes) or "broken" (does not load)."""
    target = work / "rules"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(rules_dir, target)
    (target / mutant.file).write_text(mutant.text, encoding="utf-8")
    try:
        changed = outcomes(target, examples_dir) != original
    except RuleError:
        return "broken"
    if not changed:
        return "equivalent"
    report = run_check(target, examples_dir, target / "check-baseline.json")
    return "survived" if report.passed else "killed"
