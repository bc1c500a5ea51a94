"""The reasoner: clingo decides every policy for a patient, with reasons, missing answers and
the readings the decision rests on.

The rules are grounded once for each set of policies asked about (focus/1 of kleene.lp: the
other policies keep their declarations but are never evaluated; a question about one policy of
two costs 0.48 -> 0.32 ms in process), and what a solve finds is kept in a bounded verdict
cache (core/verdicts.py) by what clingo saw of the patient. A patient enters a solve as
assumptions on the external atoms value(0,F,V) and fractional(0,F) (patient.lp): its text
never becomes program text. One solve
of explain.lp yields the statuses and the reasons under the adopted reading. A second, of
contest.lp (Contests), finds every subset-minimal set of clinical alternatives under which a
decision differs: none, and the decision is robust. Only a decision left undetermined or not
robust has answers to ask for: then a third grounding, the completions of missing.lp, is
solved in brave mode for them (grounded on first need). Kept apart, a determined patient's
solve skips the completions' two copies of every policy: 0.33 -> 0.19 ms (its cost is mostly
clingo's set-up of a solve, which grows with the program).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import math
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import TypeVar

import clingo

from .decision import Contest, Decision, Evidence, Node, contests, warnings
from .documents import for_procedure
from .patient import Patient
from .ruleset import Policy, RuleSet, Test, Value, compile_rules, engine_file, symbol_value
from .shown import ShownAtoms
from .verdicts import VerdictCache

_R = TypeVar("_R", bound="Reasoner")


class Reasoner:
    """Decides patients under one rule set. Not thread-safe: use one per thread."""

    programs: tuple[str, ...] = tuple(
        map(engine_file, ("kleene.lp", "patient.lp", "readings.lp", "contest.lp", "explain.lp"))
    )

    def __init__(self, rules: RuleSet, _control: clingo.Control | None = None) -> None:
        self.rules = rules
        self._every = frozenset(rules.policies)
        self._lanes: OrderedDict[frozenset[str], _Lane] = OrderedDict()  # policies -> grounding
        self._needs: dict[frozenset[str], int] = {}  # policies -> decisions asked of them so far
        if _control is not None:  # grounded for every policy (compile_rules)
            self._lanes[self._every] = _Lane(rules, _control)
        self._read = ShownAtoms(_meaning)
        self._shapes: dict[str, _Shape] = {}  # policy -> the shape of its tree
        self.verdicts: VerdictCache[Solved] = VerdictCache()  # (policies, places) -> solved

    def _lane(self, wanted: Iterable[str]) -> _Lane:
        """The grounding for the policies `wanted` alone (none: every policy), grounded on first
        need; at most FOCUSED of them kept besides every policy's."""
        key = focus_key(self._every, wanted)
        lane = self._lanes.get(key)
        if lane is not None:
            self._lanes.move_to_end(key)
            return lane
        full = self._lanes.get(self._every)
        self._needs[key] = needs = self._needs.get(key, 0) + 1
        if full is not None and needs < GROUND_AFTER:
            return full  # decides the same: a process that asks once grounds nothing more
        parts = focus_parts(self._every, key)
        lane = self._lanes[key] = _Lane(self.rules, self.rules.ground(self.programs, parts), parts)
        forget(self._lanes, self._every)
        return lane

    @classmethod
    def load(cls: type[_R], directory: Path | None = None) -> _R:
        """The reasoner for the rule set in `directory` (default: bundled), grounded once."""
        return cls(*compile_rules(directory, cls.programs))

    def policies(self, selection: str | None, on: datetime.date | None = None) -> list[Policy]:
        """The policies named by `selection` (a family or edition id, `all`, or None for all),
        as in force on the day `on` (default: today)."""
        return self.rules.select(selection, on)

    def chosen(
        self, patient: Patient, selection: str | None, as_of: datetime.date | None = None
    ) -> list[Policy]:
        """The policies a question about `patient` is about: `selection` (a family or edition
        id, or "all"), else the policy the record names, else every policy; of a family, the
        edition in force on `as_of`, else on the record's date (decided_on/1), else today.
        Answers given for one policy's questionnaire are for that policy alone
        (`documents.for_procedure`)."""
        chosen = self.rules.select(selection or patient.policy, as_of or self.rules.date_of(patient.values))
        return for_procedure(patient, chosen, every=selection in (None, "all"))

    def decide(self, patient: Patient, policies: Iterable[Policy] | None = None) -> list[Decision]:
        """Decide `patient` under each policy (default: every policy in force on the record's
        date, else today: one edition of each family)."""
        every = policies is None
        chosen = (
            list(policies)
            if policies is not None
            else self.rules.select(None, self.rules.date_of(patient.values))
        )
        chosen = for_procedure(patient, chosen, every)
        decisions = self._decisions(patient, chosen, self._solve(patient, {p.id for p in chosen}))
        decisions = [self._weigh_conflicts(patient, d) if d.disputed else d for d in decisions]
        return [self._weigh_unconfirmed(patient, d) for d in decisions]

    def _weigh_unconfirmed(self, patient: Patient, decision: Decision) -> Decision:
        """A decision that rests on values no one confirmed for this referral (the EHR's
        administrative record, an older form: core.urgency.UNCONFIRMED), with the decisions it
        would reach were they not known: then `possible` holds them and it is not robust."""
        doubted = {s.field for s in decision.doubted}
        if not doubted:
            return decision
        values = {f: v for f, v in patient.values.items() if f not in doubted}
        [under] = self.decide(dataclasses.replace(patient, values=values, filled=()), [decision.policy])
        # it rests on them if, not known, the adopted reading decides otherwise or the readings
        # reach other decisions (one more, or one fewer: 'another reading would fund' resting on a
        # pre-filled C6); a decision contested by the readings whose decisions stay the same does
        # not rest on every value no one confirmed
        changed = set(under.possible) != set(decision.possible) or under.decision != decision.decision
        others = tuple(sorted(set(under.possible) - {decision.decision})) if changed else ()
        return dataclasses.replace(decision, under_unconfirmed=others) if others else decision

    def _weigh_conflicts(self, patient: Patient, decision: Decision) -> Decision:
        """A decision that turns on sources that disagree, with the decisions each source's
        value would give (so `possible` holds them, and the decision is not robust)."""
        reached: set[str] = set()
        for conflict in decision.disputed:
            for stated in conflict.values:
                if stated.value is None:  # (a source without a usable value is never in conflict)
                    continue
                values = {**patient.values, conflict.field: stated.value}
                settled = dataclasses.replace(patient, values=values, conflicts=())
                [under] = self.decide(settled, [decision.policy])
                reached |= set(under.possible)
        return dataclasses.replace(decision, under_conflicts=tuple(sorted(reached - {decision.decision})))

    def _decisions(self, patient: Patient, policies: list[Policy], solved: Solved) -> list[Decision]:
        shown, contested = solved
        status: dict[tuple[str, ...], str] = {}
        reasons: dict[tuple[str, ...], set[str]] = {}
        verdict: dict[str, str] = {}
        missing: dict[str, set[str]] = {}
        settles: dict[str, set[str]] = {}
        violated: list[str] = []
        for name, key, value in shown:
            if name == "status":
                status[key] = value
            elif name == "reason":
                reasons.setdefault(key, set()).add(value)
            elif name == "decision":
                verdict[key[0]] = value
            elif name == "missing":
                missing.setdefault(key[0], set()).add(value)
            elif name == "settles":
                settles.setdefault(key[0], set()).add(value)
            elif name == "violates":
                violated.append(value)
        warned = warnings(self.rules.assumptions, violated)
        fields = self.rules.fields
        decisions = []
        for policy in policies:
            tree = self._shape(policy).node(policy.id, patient, status, reasons)
            needed = missing.get(policy.id, set())
            settling = settles.get(policy.id, set()) - needed
            decisions.append(
                Decision(
                    patient.id,
                    policy,
                    verdict[policy.id],
                    tree,
                    tuple(f for f in fields if f in needed),
                    self.rules.digest,
                    contested.get(policy.id, ()),
                    warned,
                    tuple(f for f in fields if f in settling),
                    patient.conflicts,
                    patient.filled,
                    barred=barred(self.rules, patient, policy.fields()),
                    given=patient.given,
                )
            )
        return decisions

    def _shape(self, policy: Policy) -> _Shape:
        shape = self._shapes.get(policy.id)
        if shape is None:
            shape = self._shapes[policy.id] = _Shape.of(policy, policy.root)
        return shape

    def _solve(self, patient: Patient, wanted: set[str]) -> Solved:
        """The shown atoms for `patient`, each as (predicate, key, value), and the contests of
        each policy; with the missing answers of those `wanted` policies that it leaves
        undetermined, and the answers that could settle those it leaves not robust.

        One solve: its plain model holds the decisions, each other model a set of
        alternatives under which one differs (contest.lp)."""
        lane = self._lane(wanted)
        key = (frozenset(wanted), tuple(sorted(lane.input.places(patient))))
        found = self.verdicts.get(key)
        if found is not None:
            return found
        models: list[list[Shown]] = []
        lane.control.solve(
            lane.input.assumed(patient), on_model=lambda m: models.append(self._read(m.symbols(shown=True)))
        )
        atoms = next(m for m in models if m[0][0] not in ("take", "aim"))
        contested = gathered(self.rules, models)
        undetermined = {a[1][0] for a in atoms if a[0] == "decision" and a[2] == "undetermined"} & wanted
        solved = atoms + lane.answers.find(patient, undetermined, contested, wanted), contested
        self.verdicts.put(key, solved)
        return solved


class _Lane:
    """The grounding of explain.lp for some policies (`parts`: their focus; none: every
    policy), with its patient input and the answers still to ask under the same focus."""

    def __init__(self, rules: RuleSet, control: clingo.Control, parts: Parts = ()) -> None:
        self.control = control
        minimal(control)
        self.input = PatientInput(control)
        self.input.free()
        self.answers = Answers(rules, parts)


Parts = Sequence[tuple[str, list[clingo.Symbol]]]
"""Program parts grounded besides base: the focus of a grounding (focus_parts)."""

GROUND_AFTER = 2
"""A set of policies gets a grounding of its own at its second decision; until then the grounding
for every policy, when there is one, decides it (alike). Grounding one policy takes about 20 ms,
some forty decisions' worth of what it saves: `explain`, a process that decides once, grounds
once, as it did before groundings were focused."""

FOCUSED = 16
"""Groundings kept per reasoner for sets of policies other than every policy (a question about
one policy, one edition, the policies of a date): a few hundred KB each."""


def focus_key(every: frozenset[str], wanted: Iterable[str]) -> frozenset[str]:
    """The policies a grounding is for: `wanted`, or every policy when it names none."""
    key = frozenset(wanted)
    return key if key and key < every else every


def focus_parts(every: frozenset[str], key: frozenset[str]) -> list[tuple[str, list[clingo.Symbol]]]:
    """The program parts that ground the engine for the policies `key` alone (kleene.lp's
    focus/1): none for every policy."""
    if key == every:
        return []
    return [("focus", [clingo.String(p)]) for p in sorted(key)]


_V = TypeVar("_V")


def forget(kept: OrderedDict[frozenset[str], _V], every: frozenset[str]) -> None:
    """Drop the least recently used groundings past FOCUSED (every policy's is kept)."""
    while len(kept) > FOCUSED + 1:
        oldest = next(k for k in kept if k != every)
        del kept[oldest]


Solved = tuple[list["Shown"], dict[str, tuple[Contest, ...]]]
"""A patient's shown atoms, and the contests of each policy whose decision is not robust."""


def minimal(control: clingo.Control) -> None:
    """Configure `control` to enumerate the plain model and the subset-minimal models of
    contest.lp."""
    control.configuration.solver.heuristic = "Domain"  # type: ignore[union-attr]
    control.configuration.solve.enum_mode = "domRec"  # type: ignore[union-attr]
    control.configuration.solve.models = "0"  # type: ignore[union-attr]


def gathered(rules: RuleSet, models: Iterable[Sequence[Shown]]) -> dict[str, tuple[Contest, ...]]:
    """Contests by policy from the models of contest.lp about one world (the plain model,
    which takes nothing, adds none)."""
    return gathered_by_world(rules, models).get("0", {})


def gathered_by_world(
    rules: RuleSet, models: Iterable[Sequence[Shown]]
) -> dict[str, dict[str, tuple[Contest, ...]]]:
    """Contests by world and policy from the models of contest.lp: each model that takes
    alternatives is about one world and one policy."""
    found: dict[str, dict[str, list[tuple[frozenset[tuple[str, str]], str]]]] = {}
    for atoms in models:
        taken: set[tuple[str, str]] = set()
        world = policy = aimed = ""
        for name, key, value in atoms:
            if name == "take":
                world, policy = key[0], key[1]
                taken.add((key[2], value))
            elif name == "aim":
                world, policy, aimed = key[0], key[1], value
        if aimed:
            found.setdefault(world, {}).setdefault(policy, []).append((frozenset(taken), aimed))
    return {
        world: {p: contests(rules.policies[p], pairs) for p, pairs in per.items()}
        for world, per in found.items()
    }


COMPLETIONS = ("kleene.lp", "patient.lp", "missing.lp", "show_missing.lp")
"""The engine programs of the completions that find an undetermined patient's missing answers."""

SETTLEMENTS = (*COMPLETIONS, "readings.lp", "settle.lp")
"""The completions read under a choice of the clinical readings: the missing answers, and those
that could settle a decision that is not robust. Kept apart from the completions, which
they slow by a third even where no reading is chosen."""

HEURISTIC = "Vmtf"
"""clasp's decision heuristic here. Most of a solve is its set-up over the whole program, and
VMTF's is cheaper than the default VSIDS's (which scores every variable); VMTF also finds the
completions sooner: 3.5 -> 3.0 ms for a patient with 15 unknown answers."""


class Answers:
    """The answers still to ask about one patient: the missing answers of an undetermined
    decision (the completions), and those that could settle one that is not robust (the
    settlements). Each grounded on first need. Not thread-safe."""

    def __init__(self, rules: RuleSet, parts: Parts = ()) -> None:
        self.rules = rules
        self._parts = parts  # the focus of the groundings (Parts)
        self._completions: Completions | None = None
        self._settlements: Completions | None = None

    def find(
        self,
        patient: Patient,
        undetermined: set[str],
        contested: Mapping[str, Sequence[Contest]],
        wanted: Iterable[str],
    ) -> list[Shown]:
        """missing(P,F) for each `undetermined` policy, and settles(P,F) for each `wanted` one
        that is not robust while an answer could still make it so (`_settleable`). (Kleene
        evaluation is monotone: a decision that a reading reaches with the unknowns unknown
        stays whatever they turn out to be, so only a reading that leaves the decision
        undetermined has answers that could change it.)"""
        weigh = {p for p in wanted if p in contested and _settleable(p in undetermined, contested[p])}
        if weigh:
            if self._settlements is None:
                self._settlements = Completions(self.rules, SETTLEMENTS, self._parts)
            return self._settlements.answers(patient, undetermined, weigh)
        if undetermined:
            if self._completions is None:
                self._completions = Completions(self.rules, COMPLETIONS, self._parts)
            return self._completions.answers(patient, undetermined, ())
        return []


def _settleable(undetermined: bool, contests: Sequence[Contest]) -> bool:
    """Whether some answer could still make a contested decision robust: some reading leaves it
    undetermined (an answer may decide it), and the readings that do decide it agree (two that
    decide it differently always will: Kleene evaluation is monotone, so no answer can bring
    them together, and asking would only delay the ICB's word)."""
    decided = {c.decision for c in contests if c.decision != "undetermined"}
    if not undetermined:  # the adopted reading decides it: so must every other, alike
        return all(c.decision == "undetermined" for c in contests)
    return len(decided) <= 1


class Completions:
    """The completions of missing.lp, which find the missing answers of one undetermined
    patient at a time (explain and batch alike); with SETTLEMENTS as its programs, also the
    answers that could settle a decision that is not robust. Not thread-safe."""

    def __init__(self, rules: RuleSet, programs: Sequence[str] = COMPLETIONS, parts: Parts = ()) -> None:
        self._control = control = rules.ground(map(engine_file, programs), parts)
        control.configuration.solve.enum_mode = "brave"  # type: ignore[union-attr]
        control.configuration.solve.models = "0"  # type: ignore[union-attr]
        control.configuration.solver.heuristic = HEURISTIC  # type: ignore[union-attr]
        self._input = PatientInput(control)
        self._input.free()
        self._switches = {  # (external, policy) -> its literal: wanted/1 and weigh/1
            (a.symbol.name, a.symbol.arguments[0].string): a.literal
            for name in ("wanted", "weigh")  # weigh/1: only in SETTLEMENTS
            for a in control.symbolic_atoms.by_signature(name, 1)
            if a.is_external
        }
        for literal in self._switches.values():
            control.assign_external(literal, None)  # assumed by each solve
        self._read = ShownAtoms(_meaning)

    def missing(self, patient: Patient, wanted: Iterable[str]) -> list[tuple[str, str]]:
        """The (policy, field) pairs of missing/2 for `patient` and the `wanted` policies."""
        return [
            (key[0], field) for name, key, field in self.answers(patient, wanted, ()) if name == "missing"
        ]

    def answers(self, patient: Patient, wanted: Iterable[str], weigh: Iterable[str]) -> list[Shown]:
        """The atoms missing(P,F) for `patient` and the `wanted` policies, and settles(P,F) for
        the policies to `weigh` (the search looks for no other). In brave mode each model
        holds the consequences found so far: the last holds them all."""
        on = {("wanted", p) for p in wanted} | {("weigh", p) for p in weigh}
        assumptions = self._input.assumed(patient)
        assumptions += (literal if key in on else -literal for key, literal in self._switches.items())
        shown: list[Shown] = []
        self._control.solve(
            assumptions, on_last=lambda model: shown.extend(self._read(model.symbols(shown=True)))
        )
        return shown


class PatientInput:
    """How patients enter a grounded program: the truth values of the external atoms
    value(W,F,V) and fractional(W,F) of each patient world W (world 0 in patient.lp, one slot
    world per patient of a group in screen.lp), and asked(F) where the program declares it
    (next.lp). The control then solves patient after patient, so it forgets what it learnt
    (its lemmas) after each solve: lemmas from one patient do not help the next, and kept,
    they slowed each brave solve of missing.lp from 0.65 to 1.3 ms over 100,000 patients.

    A patient is first read as its places: which of a world's externals are true for it.
    Every world has the same externals in the same places, so places are a patient's
    fingerprint whatever world it enters.
    """

    def __init__(self, control: clingo.Control) -> None:
        self._control = control
        control.configuration.solver.forget_on_step = "lemmas"  # type: ignore[union-attr]
        atoms = control.symbolic_atoms
        self._value: dict[tuple[str, Value], int] = {}  # (field, value) -> place
        self._fractional: dict[str, int] = {}  # number field -> place of its fractional part
        steps: dict[str, set[int]] = {}
        worlds: dict[clingo.Symbol, dict[int, int]] = {}  # world -> place -> literal
        for atom in atoms.by_signature("value", 3):
            if atom.is_external:
                world, field, value = atom.symbol.arguments
                place = self._value.setdefault((field.string, _key(symbol_value(value))), len(self._value))
                worlds.setdefault(world, {})[place] = atom.literal
                if value.type == clingo.SymbolType.Number:
                    steps.setdefault(field.string, set()).add(value.number)
        self._steps = {field: sorted(values) for field, values in steps.items()}  # ascending
        self._fields = {field for field, _ in self._value}  # the fields the program reads
        for atom in atoms.by_signature("fractional", 2):
            if atom.is_external:
                world, field = atom.symbol.arguments
                place = self._fractional.setdefault(field.string, len(self._value) + len(self._fractional))
                worlds[world][place] = atom.literal
        self.worlds = sorted(worlds)  # the patient worlds, in the order of `assumptions`
        every = range(len(self._value) + len(self._fractional))  # every world has every place
        self._worlds = [[worlds[w][place] for place in every] for w in self.worlds]
        self._asked = {a.symbol.arguments[0].string: a.literal for a in atoms.by_signature("asked", 1)}

    def free(self) -> None:
        """Leave the externals of the worlds, and asked/1, to the assumptions of each solve
        (`assumptions`, `assumed`). Assigning an external after a solve costs clingo a
        program update: entering and leaving a patient by assignment took a quarter of a
        decision (0.43 -> 0.32 ms a determined patient by assumptions)."""
        for world in self._worlds:
            for literal in world:
                self._control.assign_external(literal, None)
        for literal in self._asked.values():
            self._control.assign_external(literal, None)

    def assumptions(self, group: Sequence[Sequence[int]]) -> list[int]:
        """Solver assumptions (after `free`) that hold a group of patients, given by their
        places: the i-th world holds the i-th patient; worlds beyond the group hold a
        patient with every field unknown."""
        assumptions: list[int] = []
        for world, places in zip_longest(self._worlds, group, fillvalue=()):
            held = [-literal for literal in world]
            for place in places:
                held[place] = world[place]
            assumptions += held
        return assumptions

    def assumed(self, patient: Patient) -> list[int]:
        """Solver assumptions (after `free`) that hold `patient` in the program's only world,
        for one solve; a field it answered as unknown (null) is asked."""
        asked = self._asked
        held = self.assumptions([self.places(patient)])
        held += (
            literal if field in patient.answered and field not in patient.values else -literal
            for field, literal in asked.items()
        )
        return held

    @contextmanager
    def entered(self, patient: Patient) -> Iterator[None]:
        """The program (with one world) holds `patient` until the block ends: for a series
        of solves about one patient, which may assign further externals between them."""
        (world,) = self._worlds
        literals = [world[place] for place in self.places(patient)]
        literals += (self._asked[f] for f in patient.answered if f not in patient.values and f in self._asked)
        for literal in literals:
            self._control.assign_external(literal, True)
        try:
            yield
        finally:
            for literal in literals:
                self._control.assign_external(literal, False)

    def places(self, patient: Patient) -> list[int]:
        """The places of the externals that are true for `patient`."""
        places = []
        for path, value in patient.values.items():
            if path not in self._fields:  # a date: it picks the edition, no condition tests it
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                places.append(self._value[path, _key(value)])
                continue
            steps = self._steps[path]
            places.append(self._value[path, steps[bisect.bisect_right(steps, math.floor(value)) - 1]])
            if not float(value).is_integer():
                places.append(self._fractional[path])
        return places


@dataclass(frozen=True)
class _Shape:
    """What a policy's tree holds for every patient: a requirement with its sentence (its
    own, else the nearest ancestor's), the interpretations and adopted readings of it, its
    test, and the shapes of its parts. Built once per policy; a patient adds the statuses."""

    id: str
    label: str
    text: str
    interpretation: str | None
    test: Test | None
    parts: tuple[_Shape, ...]
    defects: tuple[str, ...]

    @classmethod
    def of(cls, policy: Policy, rid: str, inherited: str = "") -> _Shape:
        requirement = policy.requirements[rid]
        text = requirement.text or inherited
        readings = [r.adopted for r in policy.readings_of(rid)]
        return cls(
            rid,
            requirement.label,
            text,
            " ".join([*requirement.interpretations, *readings]) or None,
            requirement.test,
            tuple(cls.of(policy, c, text) for c in requirement.parts),
            requirement.defects,
        )

    def node(
        self,
        policy: str,
        patient: Patient,
        status: dict[tuple[str, ...], str],
        reasons: dict[tuple[str, ...], set[str]],
        reason: bool = True,
    ) -> Node:
        """The requirement as evaluated for `patient`, from the statuses and reasons of a solve."""
        test = self.test
        parts = reasons.get((policy, self.id), ())  # the parts that are reasons for its status
        return Node(
            self.id,
            status[policy, self.id],
            self.label,
            self.text,
            self.interpretation,
            (Evidence(test.field, patient.values.get(test.field), test),) if test else (),
            tuple(  # from a list: faster than from a generator for a few parts
                [part.node(policy, patient, status, reasons, part.id in parts) for part in self.parts]
            ),
            reason,
            self.defects,
        )


Shown = tuple[str, tuple[str, ...], str]
"""A shown atom read: its predicate, every argument but the last (the key), and the last (the
value). `status("hip","A",met)` is ("status", ("hip", "A"), "met")."""


def _meaning(symbol: clingo.Symbol) -> Shown:
    *key, value = map(_text_of, symbol.arguments)
    return symbol.name, tuple(key), value


def _text_of(symbol: clingo.Symbol) -> str:
    if symbol.type == clingo.SymbolType.String:
        return symbol.string
    return str(symbol.number) if symbol.type == clingo.SymbolType.Number else symbol.name


def _key(value: Value) -> Value:
    """A dictionary key that keeps true apart from 1."""
    return ("bool", value) if isinstance(value, bool) else value  # type: ignore[return-value]


def barred(rules: RuleSet, patient: Patient, fields: Collection[str]) -> tuple[str, ...]:
    """The fields of a policy (`fields`: those it tests) that the rules bar raising for
    `patient` (bars/4: the guard holds, as conservative care contra-indicated now bars more
    months of it), in the rules' order (Decision.barred; a cohort's line reads the same)."""
    held = {x for _, x, guard, value in rules.bars if holds(patient.values.get(guard), value)}
    if not held:
        return ()
    return tuple(f for f in rules.fields if f in held and f in fields)


def holds(value: Value | None, wanted: Value) -> bool:
    """Whether a patient's value is `wanted` (a guard of bars/4): known, and the same value of the
    same kind (true is not 1; 6 and 6.0 are one value)."""
    return value is not None and isinstance(value, bool) == isinstance(wanted, bool) and value == wanted
