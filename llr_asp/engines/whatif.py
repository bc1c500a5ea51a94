"""What would have to change: the smallest sets of field changes that make a patient eligible.

whatif.lp does the search by clingo optimisation: fewest changes first, then the nearest
values. Three kinds of solve on one grounding: the optimum (how many changes are needed),
every set of fields of that size (projected enumeration), and the nearest values for each set.
The changed patient, and the change, respect every domain assumption, so more of the care that
the record says is contra-indicated now is never proposed. Sets that answer unknowns and act on
care come before those that need a clinical finding or an outcome to be otherwise, which are
worded as conditions. A change toward a requirement that a met urgent route says not to wait
for (caution/3: conservative care for a patient who meets C6) carries that route's sentence, and
a set in which the patient, so changed, meets such a route (meets/1) and that waits for that
requirement is never offered: only what the route asks first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clingo

from ..core.decision import Contest, Decision, reached, steady
from ..core.errors import LlrError
from ..core.patient import Patient
from ..core.reasoner import PatientInput, Reasoner
from ..core.ruleset import Policy, RuleSet, Value, compile_rules, engine_file, symbol_value
from ..core.sources import Stated
from ..core.urgency import UNCONFIRMED, as_confirmed, care_steps, possible_routes, urgent_route

PROGRAMS = [engine_file("kleene.lp"), engine_file("patient.lp"), engine_file("whatif.lp")]

Model = tuple[Sequence[clingo.Symbol], Sequence[int]]  # shown atoms, and costs by priority


@dataclass(frozen=True)
class Change:
    field: str
    before: Value | None  # None: the field was unknown
    after: Value
    kind: str  # answer (an unknown answered) | care | finding | outcome (see kind/2)
    caution: Caution | None = None  # a route the policy says not to wait for, met or maybe met
    unless: tuple[
        tuple[str, Value], ...
    ] = ()  # (field, value): only once the field, unknown, is known not so
    doubted: tuple[Stated, ...] = ()  # of those fields, the ones recorded only by a source no one confirmed

    @property
    def condition(self) -> bool:
        """Whether the change is worded as a condition, never as a step to take."""
        return self.kind in ("finding", "outcome")

    def to_json(self) -> dict[str, Any]:
        said: dict[str, Any] = {"field": self.field, "from": self.before, "to": self.after, "kind": self.kind}
        if self.caution is not None:
            said["caution"] = self.caution.to_json()
        if self.unless:
            recorded = {s.field: s for s in self.doubted}
            said["unless"] = [
                {"field": f, "is": v}
                | ({"recorded": recorded[f].value, "source": recorded[f].source} if f in recorded else {})
                for f, v in self.unless
            ]
        return said


@dataclass(frozen=True)
class Caution:
    """Why a change toward a requirement may harm the patient: a route of the policy that the
    patient meets says not to wait (C6: delay makes surgery harder), in the policy's words."""

    route: str
    text: str  # the route's policy sentence
    met: bool = True  # met as the record stands; else not yet known (it may be)

    def to_json(self) -> dict[str, Any]:
        return {"route": self.route, "text": self.text, "met": self.met}


@dataclass(frozen=True)
class Blocker:
    """The requirement no change can meet, the fixed fields that stop it, and those that would
    stop it but that no one confirmed for this referral (only the EHR's record, an older form or
    a form filler's pre-fill gave them): never a fixed fact, to confirm first."""

    requirement: str
    label: str
    fixed: tuple[tuple[str, Value], ...]  # immutable fields whose known values stand in the way
    assumptions: tuple[tuple[str, str], ...] = ()  # (id, statement): domain assumptions in the way
    to_confirm: tuple[Stated, ...] = ()  # values in the way that no one confirmed (Decision.doubted)

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement,
            "label": self.label,
            "fixed": dict(self.fixed),
            "to_confirm": {s.field: s.value for s in self.to_confirm},
            "assumptions": [{"assumption": a, "text": t} for a, t in self.assumptions],
        }

    def confirming(self, doubted: tuple[Stated, ...]) -> Blocker:
        """The blocker with the values no one confirmed (`doubted`) moved from `fixed` to
        `to_confirm`: what a form filler pre-filled from the EHR is not a fact that cannot change."""
        of = {s.field: s for s in doubted}
        return dataclasses.replace(
            self,
            fixed=tuple((f, v) for f, v in self.fixed if f not in of),
            to_confirm=tuple(of[f] for f, _ in self.fixed if f in of),
        )


@dataclass(frozen=True)
class WhatIf:
    patient: str
    policy: Policy
    decision: str
    counterfactuals: tuple[tuple[Change, ...], ...]
    blocker: Blocker | None  # set when no change can make the patient eligible
    contested: tuple[Contest, ...] = ()  # clinical alternatives under which the decision differs
    withheld: str | None = None  # an urgent route met, now or in a set: sets that wait for care withheld
    advice: str | None = None  # what that route asks first (core.urgency: confirm, assess, ask, ...;
    # met only once changed: `find out` what it rests on, or `if met`, refuted now)
    steps: tuple[Change, ...] = ()  # care a clinician can act on meanwhile (no full set, or none safe)
    urgent: Mapping[str, str] | None = None  # the decision's urgency (Decision.urgent_json)
    to_settle: tuple[str, ...] = ()  # the answers that could settle the readings (Decision.to_settle)
    decided: Decision | None = None  # the decision explain gives, whose robustness this is (`weighed`)

    @property
    def robust(self) -> bool:
        """Explain's robustness for the same record (Decision.robust: readings, sources that
        disagree, values no one confirmed); a bare search, of the adopted reading, its readings'."""
        return self.decided.robust if self.decided is not None else steady(self.contested)

    @property
    def possible(self) -> tuple[str, ...]:
        return self.decided.possible if self.decided is not None else reached(self.decision, self.contested)

    @property
    def unconfirmed(self) -> tuple[Stated, ...]:
        """The values no one confirmed that the decision rests on (Decision.unconfirmed)."""
        return self.decided.unconfirmed if self.decided is not None else ()

    @property
    def disputed(self) -> tuple[Any, ...]:
        """The conflicts the decision turns on (Decision.disputed)."""
        return self.decided.disputed if self.decided is not None else ()

    @property
    def eligible_now(self) -> tuple[Contest, ...]:
        """The readings under which the patient is eligible as the record stands (what-if says
        so first: no change is needed under them, only the ICB's confirmation)."""
        if self.decision == "eligible":
            return ()
        return tuple(c for c in self.contested if c.decision == "eligible")

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "patient": self.patient,
            "policy": self.policy.id,
            "decision": self.decision,
            "robust": self.robust,
            "possible": list(self.possible),
            "counterfactuals": [[c.to_json() for c in changes] for changes in self.counterfactuals],
            "contested": [c.to_json() for c in self.contested],
            "to_settle": list(self.to_settle),
        }
        if self.blocker is not None:
            result["cannot"] = self.blocker.to_json()
        if self.withheld is not None:
            result["withheld"] = {
                "route": self.withheld,
                "text": self.policy.sentence(self.withheld),
                "action": self.advice,
            }
        if self.steps:
            result["steps"] = [c.to_json() for c in self.steps]
        result["urgent"] = self.urgent
        return result


class WhatIfTimeout(LlrError):
    """A what-if search that ran past its time limit."""


class WhatIfSearch:
    """Counterfactual search under one rule set, grounded once. Not thread-safe."""

    def __init__(self, rules: RuleSet, control: clingo.Control) -> None:
        self.rules = rules
        self._control = control
        self._input = PatientInput(control)
        atoms = control.symbolic_atoms
        self._bounds = {a.symbol.arguments[0].number: a.symbol for a in atoms.by_signature("bound", 1)}
        self._most = max(self._bounds)
        self._enforce = {a.symbol.arguments[0].string: a.symbol for a in atoms.by_signature("enforce", 1)}
        self._deadline: float | None = None
        self._respect(self._enforce)

    @classmethod
    def load(cls, directory: Path | None = None) -> WhatIfSearch:
        return cls(*compile_rules(directory, PROGRAMS))

    def whatif(
        self,
        patient: Patient,
        policy: Policy,
        decision: str,
        limit: int = 5,
        seconds: float | None = None,
        met: frozenset[str] = frozenset(),
        maybe: frozenset[str] = frozenset(),
    ) -> WhatIf:
        """Every smallest set of changes (up to `limit`) that makes `patient` eligible under `policy`.

        `seconds`: a time limit for the whole search (the service sets one per request); past it
        the search stops with a WhatIfTimeout. `met`, `maybe`: the requirements the patient meets
        as the record stands, and those still unknown (an urgent route met, or maybe met,
        cautions against changes that wait for another).

        A set in which the changed patient meets an urgent route (meets/1: C5, C6) and that
        changes what the route says not to wait for (B's care) is withheld, before the limit:
        `withheld` names the route, one met now first, then one that may be."""
        self._deadline = None if seconds is None else time.monotonic() + seconds
        if decision == "eligible":
            return WhatIf(patient.id, policy, decision, (), None)
        with self._input.entered(patient):
            size = self._fewest(policy, policy.root)
            if size is None:
                return WhatIf(patient.id, policy, decision, (), self._blocker(patient, policy))
            sets = self._sets(policy, size)
            found = [self._nearest(patient, policy, fields, met, maybe) for fields in sets]
        # a set that waits for care a route the changed patient meets says not to wait for
        waiting = [_waits(policy, changes, meets) for _, changes, meets in found]
        safe = [(cost, changes) for (cost, changes, _), routes in zip(found, waiting) if not routes]
        # the route named: one met now first, then one that may be, then one refuted now
        named = {route for routes in waiting for route in routes}
        withheld = min(named, key=lambda r: (r not in met, r not in maybe, r), default=None)
        order = list(self.rules.fields)
        safe.sort(
            key=lambda item: (
                sum(c.condition for c in item[1]),  # answers and care first
                item[0],  # then the nearest values
                [order.index(c.field) for c in item[1]],
            )
        )
        return WhatIf(
            patient.id, policy, decision, tuple(c for _, c in safe[:limit]), None, withheld=withheld
        )

    def _respect(self, assumptions: Iterable[str]) -> None:
        """Hold the changed patient to the domain `assumptions` (by id), and to no other."""
        respected = set(assumptions)
        for name, atom in self._enforce.items():
            self._control.assign_external(atom, name in respected)

    @contextmanager
    def _wanting(self, policy: Policy, rid: str, bound: int) -> Iterator[None]:
        want = clingo.Function("want", [clingo.String(policy.id), clingo.String(rid)])
        self._control.assign_external(want, True)
        self._control.assign_external(self._bounds[bound], True)
        try:
            yield
        finally:
            self._control.assign_external(want, False)
            self._control.assign_external(self._bounds[bound], False)

    def _solve(self, mode: str, assumptions: Sequence[tuple[clingo.Symbol, bool]] = ()) -> list[Model]:
        """The models of one solve: the optimum's improving models ("opt"), or every projected
        model ("enumerate")."""
        configuration = self._control.configuration.solve
        configuration.opt_mode = "opt" if mode == "opt" else "ignore"  # type: ignore[union-attr]
        configuration.project = "no" if mode == "opt" else "project"  # type: ignore[union-attr]
        configuration.models = "0"  # type: ignore[union-attr]
        models: list[Model] = []

        def on_model(model: clingo.Model) -> None:
            models.append((model.symbols(shown=True), model.cost))

        if self._deadline is None:
            self._control.solve(assumptions=list(assumptions), on_model=on_model)
            return models
        late = WhatIfTimeout("what-if took too long and was stopped; ask for fewer changes (limit)")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise late
        with self._control.solve(assumptions=list(assumptions), on_model=on_model, async_=True) as handle:
            if not handle.wait(left):
                handle.cancel()
                raise late
        return models

    def _fewest(self, policy: Policy, rid: str) -> int | None:
        """How few changes meet `rid`, or None when none do."""
        with self._wanting(policy, rid, self._most):
            models = self._solve("opt")
        if not models:
            return None
        return sum(1 for s in models[-1][0] if s.name == "change")

    def _sets(self, policy: Policy, size: int) -> list[frozenset[str]]:
        with self._wanting(policy, policy.root, size):
            models = self._solve("enumerate")
        return sorted(
            {frozenset(s.arguments[0].string for s in m if s.name == "change") for m, _ in models}, key=sorted
        )

    def _nearest(
        self,
        patient: Patient,
        policy: Policy,
        fields: frozenset[str],
        met: frozenset[str] = frozenset(),
        maybe: frozenset[str] = frozenset(),
    ) -> tuple[int, tuple[Change, ...], frozenset[str]]:
        """The nearest values for the set `fields`, their distance, and the urgent routes the
        changed patient meets (meets/1)."""
        assumptions = [(clingo.Function("change", [clingo.String(f)]), True) for f in fields]
        with self._wanting(policy, policy.root, len(fields)):
            models = self._solve("opt", assumptions)
        best, cost = models[-1]  # cost: [changes, distance], whatif.lp's two priorities
        values = {s.arguments[0].string: symbol_value(s.arguments[1]) for s in best if s.name == "value"}
        order = list(self.rules.fields)
        cautions = _cautions(policy, met, maybe)
        changes = tuple(
            Change(
                f,
                patient.values.get(f),
                values[f],
                self._kind(patient, f),
                cautions.get(f),
                unless := self._unless(patient, f, values[f]),
                tuple(s for s in patient.filled if s.kind in UNCONFIRMED and s.field in dict(unless)),
            )
            for f in sorted(fields, key=order.index)
        )
        meets = frozenset(s.arguments[0].string for s in best if s.name == "meets")
        return cost[-1], changes, meets

    def _unless(self, patient: Patient, field: str, after: Value) -> tuple[tuple[str, Value], ...]:
        """The fields on which a change of `field` hangs: a domain assumption (bars/4) forbids
        raising it while one of them has a value the record does not rule out: not known, or
        ruled out only by a value no one confirmed (a 'no' pre-filled from the EHR)."""
        before = patient.values.get(field)
        raised = before is not None and isinstance(after, (int, float)) and after > before  # type: ignore[operator]
        doubted = {s.field for s in patient.filled if s.kind in UNCONFIRMED}
        return tuple(
            (guard, value)
            for _, raised_field, guard, value in self.rules.bars
            if raised and raised_field == field and (guard not in patient.values or guard in doubted)
        )

    def _kind(self, patient: Patient, field: str) -> str:
        return "answer" if field not in patient.values else self.rules.fields[field].kind

    def _blocker(self, patient: Patient, policy: Policy) -> Blocker:
        """The innermost requirement on the way to the root that no change can meet."""
        rid = policy.root
        while True:
            requirement = policy.requirements[rid]
            if requirement.form != "all_of":
                break
            stuck = [p for p in requirement.parts if self._fewest(policy, p) is None]
            if not stuck:
                break
            rid = stuck[0]
        known = [f for f, spec in self.rules.fields.items() if spec.immutable and f in patient.values]
        fixed = tuple((f, patient.values[f]) for f in known if self._freed(policy, rid, f))
        return Blocker(rid, policy.requirements[rid].label, fixed, self._blamed(policy, rid))

    def _freed(self, policy: Policy, rid: str, field: str) -> bool:
        """Whether some change would meet `rid` if the known immutable `field` could change."""
        free = clingo.Function("free", [clingo.String(field)])
        self._control.assign_external(free, True)
        try:
            return self._fewest(policy, rid) is not None
        finally:
            self._control.assign_external(free, False)

    def _blamed(self, policy: Policy, rid: str) -> tuple[tuple[str, str], ...]:
        """The domain assumptions without which some change would meet `rid`."""
        everything = list(self._enforce)
        blamed = []
        for assumption in everything:
            self._respect(a for a in everything if a != assumption)
            if self._fewest(policy, rid) is not None:
                blamed.append((assumption, self.rules.assumptions[assumption]))
        self._respect(everything)
        return tuple(blamed)


def _waits(policy: Policy, changes: Sequence[Change], meets: frozenset[str]) -> list[str]:
    """The routes the changed patient meets (`meets`) that say not to wait for a requirement
    (caution/3: C5, C6 for B) under which a change of the set is tested: more conservative care
    for a patient who, so changed, meets C6. Such a set is never offered."""
    fields = {c.field for c in changes}
    return [
        route
        for rid, routes in policy.cautions.items()
        for route in routes
        if route in meets and fields & set(policy.tested_below(rid))
    ]


def _cautions(policy: Policy, met: frozenset[str], maybe: frozenset[str] = frozenset()) -> dict[str, Caution]:
    """Per field, the caution a change of it carries: it is tested under a requirement that a
    route the patient meets, or may meet (not yet known), says not to wait for."""
    cautions: dict[str, Caution] = {}
    for rid, routes in policy.cautions.items():
        for route in sorted(routes, key=lambda r: r not in met):  # a met route said first
            if route in met or route in maybe:
                sentence = policy.sentence(route) or policy.requirements[route].label
                caution = Caution(route, sentence, route in met)
                for requirement in policy.below(rid):
                    if requirement.test is not None:
                        cautions.setdefault(requirement.test.field, caution)
    return cautions


def whatif(
    reasoner: Reasoner,
    search: WhatIfSearch,
    patient: Patient,
    policy: Policy,
    limit: int = 5,
    seconds: float | None = None,
) -> WhatIf:
    """The what-if answer for one patient and policy, with the decision `explain` gives."""
    [decision] = reasoner.decide(patient, [policy])
    return weighed(search, patient, decision, limit, seconds)


def weighed(
    search: WhatIfSearch, patient: Patient, decision: Decision, limit: int = 5, seconds: float | None = None
) -> WhatIf:
    """The what-if answer for `decision` (the patient's, as explain gives it): the nearest changes,
    each set with the cautions of the routes the patient meets, and the readings it rests on.

    Safe whatever the reading: a procedure that does not suit the patient (unsuitable/3 not met:
    the contra-indication, the knee's compartments) is named first and no change is offered
    toward it; a patient who meets an urgent route, now or once changed, is never offered more
    conservative care (the sets that wait for it are withheld, the route named, with its step:
    the urgent line's; for a route met only once changed, what to find out first); where no
    safe set is left, the care
    a clinician can act on meanwhile (an MSK assessment not yet made) is named as the step."""
    policy = decision.policy
    status = {n.id: n.status for n in decision.tree.walk()}
    met = frozenset(r for r, s in status.items() if s == "met")
    # (an urgent route refuted only on a value no one confirmed may be met: a set that waits for
    # care carries its caution, as one of a route not known does)
    maybe = frozenset(r for r, s in status.items() if s == "unknown") | possible_routes(decision)
    unsuitable = [rid for rid in policy.unsuitable if status.get(rid) == "not_met"]
    if unsuitable and decision.decision != "eligible":
        rid = unsuitable[0]
        tested = policy.tested_below(rid)
        fixed = tuple((f, patient.values[f]) for f in tested if f in patient.values)
        blocker = Blocker(rid, policy.requirements[rid].label, fixed).confirming(decision.doubted)
        return WhatIf(
            patient.id,
            policy,
            decision.decision,
            (),
            blocker,
            decision.contested,
            urgent=decision.urgent_json(),
            to_settle=decision.to_settle,
            decided=decision,
        )
    answer = search.whatif(patient, policy, decision.decision, limit, seconds, met, maybe)
    urgent = urgent_route(decision)
    if urgent is not None and urgent[0].status == "met" and decision.decision != "eligible":
        answer = dataclasses.replace(answer, withheld=urgent[0].id, advice=urgent[1])
    elif answer.withheld is not None:  # met only in a set withheld: the route's own step, first
        later = "find out" if as_confirmed(decision, answer.withheld) == "unknown" else "if met"
        answer = dataclasses.replace(answer, advice=later)
    if not answer.counterfactuals and decision.decision != "eligible":
        answer = dataclasses.replace(answer, steps=_steps(search.rules, patient, decision))
    if answer.blocker is not None:  # a value no one confirmed is never a fact that cannot change
        answer = dataclasses.replace(answer, blocker=answer.blocker.confirming(decision.doubted))
    return dataclasses.replace(
        answer,
        contested=decision.contested,
        urgent=decision.urgent_json(),
        to_settle=decision.to_settle,
        decided=decision,
    )


def _steps(rules: RuleSet, patient: Patient, decision: Decision) -> tuple[Change, ...]:
    """The care a clinician can give now (core.urgency.care_steps: an MSK assessment not yet
    made, never care the rules bar for the patient), as changes of their fields; one that a
    domain assumption would bar were an unknown answer so (bars/4: documentation while it is
    not known whether care is contra-indicated) holds only once it is known not to be."""
    tests = [decision.policy.requirements[n.id].test for n in care_steps(decision)]
    return tuple(
        Change(
            t.field,
            patient.values.get(t.field),
            t.value,
            "care",
            unless=tuple((g, v) for _, x, g, v in rules.bars if x == t.field and g not in patient.values),
        )
        for t in tests
        if t is not None
    )
