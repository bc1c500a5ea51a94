"""Policy analysis: findings about the rules, each with a witness patient, all found by clingo.

The whole patient space (analysis.lp: every field one of its candidate values, or unknown) is
grounded once with the rules. Each question about a policy is a set of solver assumptions on
that one program, such as "C5 met and the root met". No model: no patient answers it. A model
is a witness, made as plain as optimisation can: the requirements in focus met where possible,
then as few fields known as possible. Nothing here enumerates patients in Python.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clingo

from ..core.decision import plain
from ..core.errors import DeclarationError, RuleError
from ..core.files import witness_file_name
from ..core.patient import nested
from ..core.ruleset import (
    Policy,
    RuleSet,
    compile_rules,
    default_rules_dir,
    digest,
    engine_file,
    rule_files,
    symbol_value,
)

PROGRAMS = [engine_file("kleene.lp"), engine_file("analysis.lp")]

SEVERITIES = ("error", "warning", "note")

KINDS = {  # kind -> what it means, in the order reports list them
    "inconsistent": "a patient gets two decisions",
    "incomplete": "a fully known patient gets no definite decision",
    "rule_hygiene": "a declaration is wrong or unused",
    "exclusion_outside_criteria": "background text refuses patients who meet every criterion",
    "dead_route": "a requirement can never hold together with the rest of the policy",
    "never_met": "a requirement no patient can meet",
    "always_met": "a requirement no patient can fail",
    "redundant_route": "an alternative that never makes a difference",
    "text_defect": "the published sentence is defective",
    "interpretation": "a reading the encoding makes that the text does not state",
    "contested_reading": "another reasonable reading of the text, and the patients it decides otherwise",
    "contested_combination": "two clinical readings that together decide otherwise patients neither does",
    "review_due": "the policy's review date has passed or falls this year",
}

Witness = dict[str, Any]
Question = list[tuple[clingo.Symbol, bool]]


@dataclass(frozen=True)
class Finding:
    """One thing an analyst should know about the rules, with the patient that shows it."""

    kind: str
    severity: str  # error | warning | note
    policy: str | None
    requirements: tuple[str, ...]
    message: str
    witness: Witness | None = None  # a valid patient document; None when no patient shows it
    quote: str | None = None  # the policy sentence concerned
    file: str | None = None  # where in the rules, for declaration problems
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "policy": self.policy,
            "requirements": list(self.requirements),
            "message": self.message,
            "witness": self.witness,
            "quote": self.quote,
            "file": self.file,
            "line": self.line,
        }

    def file_name(self, number: int) -> str:
        """The name its witness is saved under (`analyze --witnesses DIR`): its number in the
        report, kind, policy and requirements, `01-exclusion_outside_criteria-hip-resurfacing-
        no_contraindication.json`."""
        return witness_file_name(number, self.kind, self.policy or "", "+".join(self.requirements))

    def sort_key(self) -> tuple[int, str, int, tuple[str, ...]]:
        kinds = list(KINDS)
        return (SEVERITIES.index(self.severity), self.policy or "", kinds.index(self.kind), self.requirements)


def analyze(
    directory: Path | None = None, selection: str | None = None, today: datetime.date | None = None
) -> tuple[RuleSet | None, list[Finding]]:
    """Analyse the rule set in `directory` (default: bundled) for the policies in `selection`.

    Rules whose declarations fail the vocabulary checks are reported as hygiene findings (the
    search needs sound declarations, so it does not run); rules that do not parse raise.
    """
    folder = Path(directory) if directory is not None else default_rules_dir()
    day = today or datetime.date.today()
    key = (digest(rule_files(folder), folder), str(folder.resolve()), selection, day, tuple(PROGRAMS))
    if key not in _ANALYSED:  # `check` asks again in each format; the answer is the same
        _ANALYSED[key] = _analyze(folder, selection, day)
        while len(_ANALYSED) > 4:
            del _ANALYSED[next(iter(_ANALYSED))]
    return _ANALYSED[key]


_ANALYSED: dict[tuple[object, ...], tuple[RuleSet | None, list[Finding]]] = {}


def _analyze(
    directory: Path, selection: str | None, today: datetime.date
) -> tuple[RuleSet | None, list[Finding]]:
    try:
        rules, control = compile_rules(directory, PROGRAMS)
    except DeclarationError as error:
        return None, sorted(_problem_findings(error.problems, "error"), key=Finding.sort_key)
    space = _Space(control)
    findings = list(_problem_findings(rules.warnings, "warning"))
    every = selection in (None, "all")  # every edition: an edition not yet in force is analysed too
    for policy in rules.editions() if every else rules.select(selection):
        findings += _PolicyAnalysis(space, rules, policy, today).findings()
        findings += contested_readings(rules, policy)
        findings += contested_combinations(rules, policy)
    return rules, sorted(findings, key=Finding.sort_key)


def contested_readings(rules: RuleSet, policy: Policy) -> Iterator[Finding]:
    """Per alternative reading: how many fully known patient profiles it decides otherwise
    than the adopted reading, in which classes, with the simplest patient of the largest.
    An alternative that decides no patient otherwise is a warning: it reads nothing contested."""
    from .difference import compare_reading

    for reading in policy.readings.values():
        requirement = policy.requirements[reading.requirement]
        for alternative in reading.alternatives:
            comparison = compare_reading(rules, policy.id, reading.id, alternative.id)
            changed = sum(d.profiles for d in comparison.differences)
            scope = (
                "Clinical: clinicians are told of it, and a decision it changes is not robust."
                if alternative.clinical
                else f"Analysis only: the policy's own clinical text refutes it: “{alternative.refuted}”"
            )
            head = (
                f"{reading.requirement} ({requirement.label}), reading {reading.id}. "
                f"Adopted: {reading.adopted} Alternative {alternative.id}: {alternative.text} {scope}"
            )
            if not comparison.differences:
                message = f"{head} It decides every patient as the adopted reading does."
                yield Finding("contested_reading", "warning", policy.id, (reading.requirement,), message)
                continue
            classes = "; ".join(
                f"{d.profiles:,} {plain(d.first)} would be {plain(d.second)}" for d in comparison.differences
            )
            message = (
                f"{head} Under it {changed:,} of {comparison.profiles:,} fully known profiles are decided "
                f"otherwise: {classes}."
            )
            first = comparison.differences[0]  # the class of the witness
            witness = {**first.witness, "id": f"witness {policy.id} {reading.id}"}
            witness["meta"] = {
                "witness": f"decided otherwise under {reading.id}: {alternative.id}",
                "decided": {"adopted": first.first, "under": first.second},
            }
            yield Finding(
                "contested_reading",
                "note",
                policy.id,
                (reading.requirement,),
                message,
                witness,
                policy.sentence(reading.requirement),
            )


COMBINATIONS = [engine_file("kleene.lp"), engine_file("readings.lp"), engine_file("combination.lp")]


COMBINED = (2, 3)
"""The sizes of the sets of clinical alternatives searched for combined effects. Four or more
are not searched: over 10,000 random fully known patients, brute force (every combination of
the readings) found sets of two and three that decide otherwise where no smaller part does, and
none of four. A clinician's verdict weighs every combination whatever its size (contest.lp)."""


def contested_combinations(rules: RuleSet, policy: Policy) -> Iterator[Finding]:
    """Per set of two or three clinical alternatives (of as many points) that together decide
    some fully known patient otherwise while no smaller part of the set does: a finding with
    such a patient. clingo enumerates the sets (combination.lp, projected on the set)."""
    points = sum(1 for r in policy.readings.values() if any(a.clinical for a in r.alternatives))
    for size in COMBINED:
        if points >= size:
            yield from _combinations(rules, policy, size)


def _combinations(rules: RuleSet, policy: Policy, size: int) -> Iterator[Finding]:
    control = rules.ground(COMBINATIONS, constants={"size": size})
    control.assign_external(clingo.Function("studied", [clingo.String(policy.id)]), True)
    control.configuration.solve.project = "project"  # type: ignore[union-attr]
    control.configuration.solve.models = "0"  # type: ignore[union-attr]
    models: list[Sequence[clingo.Symbol]] = []
    control.solve(on_model=lambda m: models.append(m.symbols(shown=True)))
    found = []
    order = {x: n for n, x in enumerate(policy.readings)}
    for symbols in models:
        taken = sorted(
            ((s.arguments[1].string, s.arguments[2].string) for s in symbols if s.name == "take"),
            key=lambda t: order[t[0]],
        )
        values = {s.arguments[0].string: symbol_value(s.arguments[1]) for s in symbols if s.name == "value"}
        adopted = next(
            s.arguments[1].name
            for s in symbols
            if s.name == "decision" and s.arguments[0].string == policy.id
        )
        under = next(s.arguments[1].name for s in symbols if s.name == "reached")
        found.append((taken, values, adopted, under))
    for taken, values, adopted, under in sorted(found, key=lambda f: [order[x] for x, _ in f[0]]):
        readings = [policy.readings[x] for x, _ in taken]
        said = " Together with ".join(
            f"{r.requirement} ({r.id}): {r.alternative(a).text}" for r, (_, a) in zip(readings, taken)
        )
        alone = "each alone decides" if size == 2 else "each alone, and each two of them, decide"
        message = (
            f"{said} Together they decide {plain(adopted)} patients {plain(under)}, while {alone} "
            "them as the adopted reading does: a decision that is robust to each reading "
            "alone may still rest on their combination."
        )
        ids = " + ".join(x for x, _ in taken)
        witness = {"id": f"witness {policy.id} {ids}", "policy": policy.id, **nested(values)}
        witness["meta"] = {
            "witness": f"decided otherwise under {ids} together",
            "decided": {"adopted": adopted, "under": under},
        }
        yield Finding(
            "contested_combination",
            "note",
            policy.id,
            tuple(dict.fromkeys(r.requirement for r in readings)),
            message,
            witness,
            policy.sentence(readings[0].requirement),
        )


def _problem_findings(problems: Iterable[RuleError], severity: str) -> Iterator[Finding]:
    for problem in problems:
        yield Finding(
            "rule_hygiene", severity, None, (), problem.problem, file=problem.file, line=problem.line
        )


class _Space:
    """The grounded patient space, asked one question at a time."""

    def __init__(self, control: clingo.Control) -> None:
        self._control = control
        self._assumptions = [
            atom.symbol for atom in control.symbolic_atoms.by_signature("enforce", 1) if atom.is_external
        ]
        self._enforce(None)

    def ask(
        self, question: Question, focus: Iterable[clingo.Symbol] = (), enforce: Iterable[str] | None = None
    ) -> dict[str, Any] | None:
        """The values of a patient who answers `question`, or None when no patient does.

        `focus`: requirements the witness should meet where it can. `enforce`: the domain
        assumptions the patient must respect (default: all of them).
        """
        control = self._control
        focus = list(focus)
        self._enforce(enforce)
        for atom in focus:
            control.assign_external(atom, True)
        found: list[Sequence[clingo.Symbol]] = []
        control.configuration.solve.opt_mode = "opt"  # type: ignore[union-attr]
        result = control.solve(assumptions=question, on_model=lambda m: found.append(m.symbols(shown=True)))
        for atom in focus:
            control.assign_external(atom, False)
        if not result.satisfiable:
            return None
        return {f.string: symbol_value(v) for f, v in (s.arguments for s in found[-1])}

    def exists(self, question: Question, enforce: Iterable[str] | None = None) -> bool:
        """Whether some patient answers `question` (no witness needed: no optimisation)."""
        control = self._control
        self._enforce(enforce)
        control.configuration.solve.opt_mode = "ignore"  # type: ignore[union-attr]
        return bool(control.solve(assumptions=question).satisfiable)

    def _enforce(self, enforce: Iterable[str] | None) -> None:
        """Respect the domain assumptions named in `enforce` (None: all of them)."""
        names = None if enforce is None else set(enforce)
        for assumption in self._assumptions:
            respected = names is None or assumption.arguments[0].string in names
            self._control.assign_external(assumption, respected)

    @property
    def assumptions(self) -> list[str]:
        return [a.arguments[0].string for a in self._assumptions]


class _PolicyAnalysis:
    """The questions asked of one policy, and the findings they give."""

    def __init__(self, space: _Space, rules: RuleSet, policy: Policy, today: datetime.date) -> None:
        self.space = space
        self.rules = rules
        self.policy = policy
        self.today = today
        self.parents: dict[str, list[str]] = {}
        for rid, requirement in policy.requirements.items():
            for part in requirement.parts:
                self.parents.setdefault(part, []).append(rid)

    # -- atoms -------------------------------------------------------------------------------

    def _status(self, rid: str, status: str) -> clingo.Symbol:
        return clingo.Function(
            "status",
            [
                clingo.Function("w"),
                clingo.String(self.policy.id),
                clingo.String(rid),
                clingo.Function(status),
            ],
        )

    def met(self, rid: str, truth: bool = True) -> tuple[clingo.Symbol, bool]:
        return self._status(rid, "met"), truth

    def not_met(self, rid: str) -> tuple[clingo.Symbol, bool]:
        return self._status(rid, "not_met"), True

    def focus(self, rids: Iterable[str]) -> list[clingo.Symbol]:
        return [clingo.Function("focus", [clingo.String(self.policy.id), clingo.String(r)]) for r in rids]

    def about(self, name: str) -> tuple[clingo.Symbol, bool]:
        return clingo.Function(name, [clingo.String(self.policy.id)]), True

    # -- the tree ----------------------------------------------------------------------------

    def paths(self, rid: str) -> list[list[str]]:
        """Every path from the root down to `rid`."""
        if rid == self.policy.root:
            return [[rid]]
        return [[*path, rid] for parent in self.parents.get(rid, []) for path in self.paths(parent)]

    def context(self, rid: str) -> list[str]:
        """The requirements that must hold alongside `rid` for the policy to fund: the other parts
        of every all-of requirement above it."""
        context: list[str] = []
        for path in self.paths(rid):
            for above, below in itertools.pairwise(path):
                if self.policy.requirements[above].form == "all_of":
                    context += [
                        p for p in self.policy.requirements[above].parts if p != below and p not in context
                    ]
        return context

    def name(self, rid: str) -> str:
        return f"{rid} ({self.policy.requirements[rid].label})"

    def witness(self, values: dict[str, Any] | None, kind: str, rids: Sequence[str]) -> Witness | None:
        if values is None:
            return None
        return {
            "id": f"witness {self.policy.id} {kind} {' '.join(rids)}",
            "policy": self.policy.id,
            **nested(values),
            "meta": {"witness": f"{kind} of {', '.join(rids)}"},
        }

    def finding(
        self, kind: str, severity: str, rids: Sequence[str], message: str, values: dict[str, Any] | None
    ) -> Finding:
        return Finding(
            kind,
            severity,
            self.policy.id,
            tuple(rids),
            message,
            self.witness(values, kind, rids),
            self.policy.sentence(rids[0]),
        )

    def blamed(self, question: Question) -> list[str]:
        """The domain assumptions without which some patient would answer `question`."""
        everything = self.space.assumptions
        return [a for a in everything if self.space.exists(question, [b for b in everything if b != a])]

    def given(self, question: Question) -> str:
        blamed = self.blamed(question)
        if not blamed:
            return ""
        said = " and ".join(f'"{self.rules.assumptions[a].rstrip(".")}"' for a in blamed)
        return f", given the domain assumption {said}"

    # -- the findings ------------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        requirements = self.policy.requirements
        never = {r for r in requirements if not self.space.exists([self.met(r)])}
        always = {r for r in requirements if not self.space.exists([self.not_met(r)])}
        findings = [*self.consistency(), *self.exclusions()]
        findings += self.never_met(never)
        findings += self.always_met(always)
        if self.policy.root not in never:
            findings += self.dead_routes(never)
        findings += self.redundant_routes(never)
        findings += self.recorded()
        due = self.policy.review_due(self.today)
        if due:
            message = (
                f"{self.policy.reference} {self.policy.title}: {due} (review date {self.policy.review})."
            )
            severity = "warning" if self.policy.review < self.today.year else "note"
            findings.append(Finding("review_due", severity, self.policy.id, (), message))
        return findings

    def consistency(self) -> Iterator[Finding]:
        root = [self.policy.root]
        values = self.space.ask([self.about("ambiguous")], enforce=())
        if values is not None:
            yield self.finding("inconsistent", "error", root, "A patient gets two decisions at once.", values)
        values = self.space.ask([self.about("indefinite")], enforce=())
        if values is not None:
            message = "A patient with every field the policy tests known gets no definite decision."
            yield self.finding("incomplete", "error", root, message, values)

    def exclusions(self) -> Iterator[Finding]:
        root = self.policy.requirements[self.policy.root]
        listed = [p for p in root.parts if not self.policy.requirements[p].background]
        for rid, requirement in self.policy.requirements.items():
            if not requirement.background:
                continue
            values = self.space.ask([*(self.met(p) for p in listed), self.not_met(rid)])
            if values is not None:
                message = (
                    f"{self.name(rid)} refuses patients who meet every listed criterion "
                    f"({', '.join(listed)}): it comes from the policy's background text, "
                    "not its criteria list."
                )
                yield self.finding("exclusion_outside_criteria", "warning", [rid], message, values)

    def never_met(self, never: set[str]) -> Iterator[Finding]:
        for rid, requirement in self.policy.requirements.items():
            if rid in never and not never.intersection(requirement.parts):
                values = self.space.ask([], focus=self.focus(requirement.parts or [rid]))
                given = self.given([self.met(rid)])
                message = f"{self.name(rid)} can never be met: no patient meets all it asks{given}."
                yield self.finding("never_met", "warning", [rid], message, values)

    def always_met(self, always: set[str]) -> Iterator[Finding]:
        for rid, requirement in self.policy.requirements.items():
            if rid in always and not always.intersection(requirement.parts):
                values = self.space.ask([self.met(rid)])
                message = (
                    f"{self.name(rid)} is met by every patient for whom it is known: it never refuses anyone."
                )
                yield self.finding("always_met", "warning", [rid], message, values)

    def dead_routes(self, never: set[str]) -> Iterator[Finding]:
        root = self.policy.root
        dead = {
            r
            for r in self.policy.requirements
            if r != root and r not in never and not self.space.exists([self.met(r), self.met(root)])
        }
        for rid in self.policy.requirements:
            if rid not in dead or any(p in dead for p in self.parents.get(rid, [])):
                continue
            context = self.context(rid)
            conflicts = [
                self.deepest_conflict(rid, other)
                for other in context
                if not self.space.exists([self.met(rid), self.met(other)])
            ]
            shown = [self.met(rid), *(self.not_met(c) for c in conflicts[:1])]  # the conflict, known
            values = self.space.ask(shown, focus=self.focus(context))
            if conflicts:
                given = self.given([self.met(rid), self.met(conflicts[0])])
                against = " or ".join(self.name(c) for c in conflicts)
                message = (
                    f"{self.name(rid)} can never lead to funding: "
                    f"every patient who meets it fails {against}{given}."
                )
            else:
                message = (
                    f"{self.name(rid)} can never lead to funding: "
                    "no patient meets it and the rest of the policy."
                )
            yield self.finding("dead_route", "warning", [rid, *conflicts], message, values)

    def deepest_conflict(self, rid: str, other: str) -> str:
        """The innermost part of `other` that already cannot be met together with `rid`."""
        requirement = self.policy.requirements[other]
        if requirement.form == "all_of":
            for part in requirement.parts:
                if not self.space.exists([self.met(rid), self.met(part)]):
                    return self.deepest_conflict(rid, part)
        return other

    def redundant_routes(self, never: set[str]) -> Iterator[Finding]:
        for rid, requirement in self.policy.requirements.items():
            if requirement.form != "any_of":
                continue
            for part in requirement.parts:
                others = [p for p in requirement.parts if p != part]
                if part in never or self.space.exists(
                    [self.met(part), *(self.met(o, False) for o in others)]
                ):
                    continue
                covers = [o for o in others if not self.space.exists([self.met(part), self.met(o, False)])]
                siblings = " or ".join(self.name(o) for o in (covers or others))
                message = (
                    f"{self.name(part)} never makes a difference to {rid}: every patient who meets it "
                    f"also meets {siblings}."
                )
                values = self.space.ask([self.met(part)])
                yield self.finding("redundant_route", "note", [part, *(covers or others)], message, values)

    def recorded(self) -> Iterator[Finding]:
        """The text defects and interpretations the rules record, each with a patient it decides."""
        for rid, requirement in self.policy.requirements.items():
            notes = [("text_defect", "warning", d) for d in requirement.defects]
            notes += [("interpretation", "note", i) for i in requirement.interpretations]
            if notes:
                values = self.decisive(rid)
                for kind, severity, note in notes:
                    yield self.finding(kind, severity, [rid], f"{rid}: {note}", values)

    def decisive(self, rid: str) -> dict[str, Any] | None:
        """A patient funded through `rid` alone (no other alternative above it is met), else one
        who meets it, else none."""
        path = self.paths(rid)[0]
        alone = [self.met(rid), self.met(self.policy.root)]
        for above, below in itertools.pairwise(path):
            if self.policy.requirements[above].form == "any_of":
                alone += [self.met(p, False) for p in self.policy.requirements[above].parts if p != below]
        return self.space.ask(alone) or self.space.ask([self.met(rid)])
