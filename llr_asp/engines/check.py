"""`llr-asp check`: the gate every rule change passes in CI.

Six steps, each a list of cases that pass or fail: the rules load (clingo warnings are
errors), their declarations are sound and used, every example keeps its expected outcome, no
patient gets two decisions or none and no new dead, never-met or redundant requirement
appears, the examples still cover every requirement both ways, and every finding of the
analysis is acknowledged in the baseline with a reason. The report is plain data; render.py
and report.py turn it into text, JSON, JUnit XML or SARIF.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clingo

from ..core.documents import read_patient
from ..core.errors import DeclarationError, InputError, LlrError, NotInForce, RuleError, UsageError
from ..core.files import replaced
from ..core.reasoner import Reasoner
from ..core.ruleset import Policy, RuleSet
from ..core.ruletext import locate_head, parse_rules
from .analysis import Finding, analyze

STEPS = {
    "load": "every rule file parses and grounds without a clingo warning",
    "hygiene": "declarations are complete and every declared field is used",
    "examples": "every example keeps its expected decision, statuses, missing answers and readings",
    "invariants": "no patient gets two decisions or none; no new dead, never-met or redundant requirement",
    "coverage": "every requirement is met by one example and not met by another",
    "baseline": "every finding of the analysis is acknowledged with a reason",
}
BASELINE = "check-baseline.json"
"""The baseline's file name, beside the rules it acknowledges."""

INVARIANT_KINDS = ("inconsistent", "incomplete")  # never acceptable, whatever the baseline says
NEVER_ACKNOWLEDGED = ("rule_hygiene", *INVARIANT_KINDS)  # fix these; the baseline cannot hold them
STRUCTURAL_KINDS = ("dead_route", "never_met", "always_met", "redundant_route")

RECORDED_KINDS = ("text_defect", "interpretation")  # several may concern one requirement

Key = tuple[str, str, tuple[str, ...], str]  # a finding's identity: kind, policy, requirements, note


@dataclass(frozen=True)
class Failure:
    """Something the change must fix, where to fix it, and the rule it broke."""

    rule: str  # the step, or the finding kind
    message: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Case:
    """One checked item: a JUnit test case, a row of the report."""

    step: str
    name: str
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True)
class Report:
    rules: str
    cases: tuple[Case, ...]
    coverage: float | None  # share of (requirement, met / not met) pairs the examples show
    uncovered: tuple[str, ...]
    notices: tuple[str, ...]  # worth knowing, not failing: stale baseline entries
    findings: tuple[Finding, ...] = field(default=(), compare=False)

    @property
    def passed(self) -> bool:
        return not any(case.failures for case in self.cases)

    def failures(self) -> list[tuple[Case, Failure]]:
        return [(case, failure) for case in self.cases for failure in case.failures]

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rules": self.rules,
            "steps": {
                step: {
                    "checked": sum(1 for c in self.cases if c.step == step),
                    "failed": sum(1 for c in self.cases if c.step == step and c.failures),
                }
                for step in STEPS
            },
            "failures": [
                {
                    "step": case.step,
                    "case": case.name,
                    "rule": f.rule,
                    "message": f.message,
                    "file": f.file,
                    "line": f.line,
                }
                for case, f in self.failures()
            ],
            "coverage": self.coverage,
            "uncovered": list(self.uncovered),
            "notices": list(self.notices),
        }


@dataclass(frozen=True)
class Baseline:
    """Acknowledged findings with the reason each is accepted, and the coverage to keep."""

    coverage: float
    reasons: dict[Key, str]

    @staticmethod
    def key(finding: Finding) -> Key:
        """What identifies a finding across runs: not its wording, save for recorded notes."""
        return _key(finding.kind, finding.policy, finding.requirements, finding.message)


def _key(kind: str, policy: str | None, requirements: tuple[str, ...], message: str) -> Key:
    """What identifies a finding across runs: not its wording, save for recorded notes."""
    return kind, policy or "", requirements, message if kind in RECORDED_KINDS else ""


def read_baseline(path: Path) -> Baseline:
    """The baseline at `path`; none yet is an empty one (every finding is then new)."""
    if not path.exists():
        return Baseline(0.0, {})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        reasons = {}
        for e in data["findings"]:
            key = _key(e["kind"], e["policy"], tuple(e["requirements"]), e.get("message", ""))
            reasons[key] = str(e.get("reason") or "")
        return Baseline(float(data.get("coverage", 0.0)), reasons)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(str(path), "", f"not a baseline written by --update-baseline ({error})") from None


def write_baseline(
    path: Path, findings: Iterable[Finding], coverage: float | None, old: Baseline
) -> list[Key]:
    """Acknowledge every current finding, keeping the reasons already given; return the new keys."""
    entries, new = [], []
    for finding in findings:
        if finding.kind in NEVER_ACKNOWLEDGED:
            continue
        key = Baseline.key(finding)
        if key not in old.reasons:
            new.append(key)
        entries.append(
            {
                "kind": finding.kind,
                "policy": finding.policy,
                "requirements": list(finding.requirements),
                "message": finding.message,
                "reason": old.reasons.get(key, ""),
            }
        )
    data = {"coverage": round(coverage or 0.0, 4), "findings": entries}
    with replaced(path, "--baseline") as out:
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return new


def run_check(rules_dir: Path, examples_dir: Path, baseline_path: Path) -> Report:
    """Run every step of the gate on the rule set in `rules_dir`."""
    if not rules_dir.is_dir():
        raise UsageError(f"{rules_dir}: rules directory not found (give --rules DIR)")
    try:  # the rules first: their errors are reported whatever else is missing
        reasoner = Reasoner.load(rules_dir)
    except DeclarationError as error:
        failures = tuple(Failure("hygiene", e.problem, e.file, e.line) for e in error.problems)
        return Report(
            str(rules_dir), (Case("load", "rules"), Case("hygiene", "declarations", failures)), None, (), ()
        )
    except RuleError as error:
        failure = Failure("load", error.problem, error.file, error.line)
        return Report(str(rules_dir), (Case("load", "rules", (failure,)),), None, (), ())
    if not examples_dir.is_dir():
        raise UsageError(
            f"{examples_dir}: examples directory not found; give --examples DIR (the default is "
            "examples/ beside the rules directory)"
        )
    baseline = read_baseline(baseline_path)
    rules = reasoner.rules
    cases = [Case("load", "rules")]
    cases.append(
        Case(
            "hygiene",
            "declarations",
            tuple(Failure("hygiene", w.problem, w.file, w.line) for w in rules.warnings),
        )
    )
    seen: dict[tuple[str, str], set[str]] = {}  # (policy, requirement) -> statuses the examples show
    cases += _examples(reasoner, examples_dir, seen)
    _, findings = analyze(rules_dir)
    where = _Locator(rules)
    cases += _invariants(rules, findings, baseline, where)
    coverage, uncovered, coverage_cases = _coverage(rules, seen, baseline)
    cases += coverage_cases
    baseline_cases, notices = _baseline(findings, baseline, where)
    cases += baseline_cases
    return Report(str(rules_dir), tuple(cases), coverage, tuple(uncovered), tuple(notices), tuple(findings))


def _examples(reasoner: Reasoner, directory: Path, seen: dict[tuple[str, str], set[str]]) -> Iterator[Case]:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        yield Case(
            "examples", str(directory), (Failure("examples", "no example files (*.json)", str(directory)),)
        )
    for path in paths:
        source = str(path)
        try:
            patient = read_patient(source, reasoner.rules)
            expected = json.loads(path.read_text(encoding="utf-8-sig"))["meta"]["expected"]
            if not isinstance(expected, dict) or not expected:
                raise KeyError("expected")
        except LlrError as error:
            yield Case("examples", path.name, (Failure("examples", str(error), source),))
            continue
        except (KeyError, TypeError):
            message = 'no expected outcome: add meta.expected {"<policy>": {"decision": ...}}'
            yield Case("examples", path.name, (Failure("examples", message, source),))
            continue
        rules = reasoner.rules
        day = rules.date_of(patient.values)
        for policy_id, outcome in expected.items():
            name = f"{path.name} [{policy_id}]"
            known = policy_id in rules.families or policy_id in rules.policies
            if not known or not isinstance(outcome, dict):
                yield Case(
                    "examples",
                    name,
                    (Failure("examples", f'meta.expected names no policy "{policy_id}"', source),),
                )
                continue
            policy, wrong = _edition(rules, policy_id, day)
            if wrong is not None:
                yield Case("examples", name, (Failure("examples", wrong, source),))
                continue
            if policy.id != policy_id:
                name = f"{path.name} [{policy_id}: {policy.id}]"
            shape = _shape_problem(outcome)
            if shape is not None:
                where = f"meta.expected.{policy_id}.{shape[0]}"
                yield Case("examples", name, (Failure("examples", f"{where}: {shape[1]}", source),))
                continue
            [decision] = reasoner.decide(patient, [policy])
            statuses = {node.id: node.status for node in decision.tree.walk()}
            for rid, status in statuses.items():
                seen.setdefault((policy.family, rid), set()).add(status)
            problems = []
            if decision.decision != outcome.get("decision"):
                problems.append(f"decision is {decision.decision}, expected {outcome.get('decision')}")
            for status in ("met", "not_met", "unknown"):
                for rid in outcome.get(status, []):
                    if statuses.get(rid) != status:
                        problems.append(
                            f"{rid} is {statuses.get(rid, 'not a requirement')}, expected {status}"
                        )
            if "missing" in outcome and sorted(decision.missing) != sorted(outcome["missing"]):
                problems.append(
                    f"missing is {sorted(decision.missing)}, expected {sorted(outcome['missing'])}"
                )
            contested = sorted(f"{c.label()}={c.decision}" for c in decision.contested)
            if "contested" in outcome and contested != sorted(outcome["contested"]):
                problems.append(f"contested is {contested}, expected {sorted(outcome['contested'])}")
            if "robust" in outcome and decision.robust != outcome["robust"]:
                problems.append(
                    f"robust is {json.dumps(decision.robust)}, expected {json.dumps(outcome['robust'])}"
                )
            if "to_settle" in outcome and sorted(decision.to_settle) != sorted(outcome["to_settle"]):
                problems.append(
                    f"to_settle is {sorted(decision.to_settle)}, expected {sorted(outcome['to_settle'])}"
                )
            yield Case("examples", name, tuple(Failure("examples", p, source) for p in problems))


def _edition(rules: RuleSet, named: str, day: datetime.date | None) -> tuple[Policy, str | None]:
    """The edition an example's expectation for `named` gates, and what is wrong if none: of a
    family, the edition in force on the example's date (referral.date, decided_on/1), or without
    one the family's first edition (the examples written before any later edition); an
    edition's own id, that edition, when the example's date falls in its period."""
    if named in rules.families:
        if day is None:
            return rules.families[named][0], None
        try:
            return rules.in_force(named, day), None
        except NotInForce as error:
            return rules.families[named][0], str(error)
    policy = rules.policies[named]
    if day is not None and not policy.in_force(day):
        return policy, f"dated {day.isoformat()}, outside the period of the {policy.edition_words()}"
    return policy, None


def _shape_problem(outcome: dict[str, Any]) -> tuple[str, str] | None:
    """(key, what is wrong) for an expected outcome that is not of the documented shape."""
    if not isinstance(outcome.get("decision"), str):
        return "decision", 'expected "eligible", "not_eligible" or "undetermined"'
    for key in ("met", "not_met", "unknown", "missing", "contested", "to_settle"):
        value = outcome.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            got = json.dumps(value)[:40]
            return key, f"expected a list of strings, got {got}"
    if not isinstance(outcome.get("robust", True), bool):
        return "robust", f"expected true or false, got {json.dumps(outcome['robust'])[:40]}"
    unknown = sorted(set(outcome) - {"decision", *EXPECTATIONS})
    if unknown:
        return unknown[0], f"not an expectation (decision, {', '.join(EXPECTATIONS)})"
    return None


EXPECTATIONS = ("met", "not_met", "unknown", "missing", "robust", "contested", "to_settle")
"""What an example's meta.expected may state of each policy, besides its decision."""


def _invariants(
    rules: RuleSet, findings: list[Finding], baseline: Baseline, where: _Locator
) -> Iterator[Case]:
    for policy in rules.policies:
        failures = []
        for finding in findings:
            if finding.policy != policy:
                continue
            acknowledged = baseline.reasons.get(Baseline.key(finding), "").strip()
            if finding.kind in INVARIANT_KINDS or (finding.kind in STRUCTURAL_KINDS and not acknowledged):
                failures.append(where.failure(finding))
        yield Case("invariants", policy, tuple(failures))


def _coverage(
    rules: RuleSet, seen: dict[tuple[str, str], set[str]], baseline: Baseline
) -> tuple[float, list[str], list[Case]]:
    """Coverage of each family's requirements (those of every edition of it, each once) by the
    examples that gate its editions: an edition that keeps a requirement keeps its examples."""
    total = covered = 0
    uncovered = []
    for family, editions in rules.families.items():
        for rid in dict.fromkeys(r for p in editions for r in p.requirements):
            for status in ("met", "not_met"):
                total += 1
                if status in seen.get((family, rid), set()):
                    covered += 1
                else:
                    uncovered.append(f"{family} {rid}: no example where it is {status.replace('_', ' ')}")
    coverage = covered / total if total else 1.0
    failures: tuple[Failure, ...] = ()
    if coverage + 1e-9 < baseline.coverage:
        message = (
            f"coverage fell to {coverage:.1%} from {baseline.coverage:.1%}; uncovered: {'; '.join(uncovered)}"
        )
        failures = (Failure("coverage", message),)
    return coverage, uncovered, [Case("coverage", "requirements", failures)]


def _baseline(findings: list[Finding], baseline: Baseline, where: _Locator) -> tuple[list[Case], list[str]]:
    cases = []
    current = {Baseline.key(f) for f in findings}
    for finding in findings:
        if finding.kind in NEVER_ACKNOWLEDGED + STRUCTURAL_KINDS:
            continue  # their own steps
        key = Baseline.key(finding)
        name = f"{finding.kind} {finding.policy} {' '.join(finding.requirements)}".strip()
        if key not in baseline.reasons:
            failure = where.failure(finding, prefix="new finding, not in the baseline: ")
            cases.append(Case("baseline", name, (failure,)))
        elif not baseline.reasons[key].strip():
            failure = where.failure(
                finding, prefix="acknowledged without a reason: give one in the baseline: "
            )
            cases.append(Case("baseline", name, (failure,)))
        else:
            cases.append(Case("baseline", name))
    notices = [
        f"baseline entry no longer found (remove it with --update-baseline): {kind} {policy} {' '.join(rids)}"
        for kind, policy, rids, note in baseline.reasons
        if (kind, policy, rids, note) not in current
    ]
    return cases, notices


class _Locator:
    """File and line of the declaration a finding is about: its first requirement, or for a
    review the policy's review date."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._statements: list[Any] | None = None

    def failure(self, finding: Finding, prefix: str = "") -> Failure:
        file, line = self.locate(finding)
        return Failure(finding.kind, prefix + finding.message, file, line)

    def locate(self, finding: Finding) -> tuple[str | None, int | None]:
        if finding.policy is None:
            return finding.file, finding.line
        if self._statements is None:
            self._statements = parse_rules([Path(f) for f in self.rules.files])
        policy = clingo.String(finding.policy)
        names: tuple[str, ...]
        if finding.requirements:
            names, prefix = (
                ("all_of", "any_of", "condition"),
                [policy, clingo.String(finding.requirements[0])],
            )
        else:
            names, prefix = ("review",), [policy]
        file, line = locate_head(self._statements, names, prefix)
        return (file, line) if line else (None, None)
