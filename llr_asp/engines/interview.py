"""The next question to ask, and reading a clinician's answer to it.

Only a field that can still change the decision (`missing`), or settle a decision that is not
robust (`to_settle`: its answer changes the decision under some reading of the policy text),
and was not asked before is asked: the questionnaire goes on until the decision holds under
every clinical reading, or no answer can make it so. Among those fields, next.lp counts for
every possible answer how many questions would still be pending under any reading; the
question asked is the one whose answers leave the fewest on average, then at worst, then the
first declared. A document's field present as null was asked and its answer is unknown: it
is never asked again.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import clingo

from ..core.answers import read_answer
from ..core.decision import Decision
from ..core.patient import Patient
from ..core.reasoner import PatientInput, Reasoner, focus_key, focus_parts, forget
from ..core.ruleset import Field, Policy, RuleSet, Value, engine_file, show
from ..core.urgency import route_doubts, unconfirmed_sources, urgent_route

LOOKAHEAD = ("kleene.lp", "patient.lp", "next.lp")


@dataclass(frozen=True)
class Question:
    field: str
    text: str
    type: str  # bool | grade | choice | number | integer
    choices: tuple[Value, ...] | None  # None: a number in a range
    caveats: tuple[str, ...] = ()  # what the policy's text leaves open for the answer (caveat/3)

    @classmethod
    def of(cls, field: Field, caveats: Iterable[str] = ()) -> Question:
        choices: tuple[Value, ...] | None = (True, False) if field.type == "bool" else field.values or None
        return cls(field.path, field.question, field.type, choices, tuple(caveats))

    def to_json(self) -> dict[str, Any]:
        choices = list(self.choices) if self.choices is not None else None
        return {
            "field": self.field,
            "text": self.text,
            "type": self.type,
            "choices": choices,
            "caveats": list(self.caveats),
        }


@dataclass(frozen=True)
class Next:
    """A policy's decision so far, and the question to ask next (None: nothing left to ask)."""

    decision: Decision
    question: Question | None
    pending: int  # fields that can still change the decision or settle it and were not asked

    def to_json(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "patient": decision.patient,
            "policy": decision.policy.id,
            "decision": decision.decision,
            "robust": decision.robust,
            "possible": list(decision.possible),
            "contested": [c.to_json() for c in decision.contested],
            "missing": list(decision.missing),
            "to_settle": list(decision.to_settle),
            "question": self.question.to_json() if self.question else None,
            "urgent": decision.urgent_json(),
        }


class Interviewer(Reasoner):
    """A reasoner that also looks one answer ahead (next.lp, grounded on its own, where each
    model is one possible answer). Not thread-safe."""

    def __init__(self, rules: RuleSet, _control: clingo.Control | None = None) -> None:
        super().__init__(rules, _control)
        # policies -> next.lp grounded for them alone (as the reasoner's groundings: focus_key)
        self._aheads: OrderedDict[frozenset[str], tuple[clingo.Control, PatientInput]] = OrderedDict()

    def _ahead(self, wanted: Iterable[str]) -> tuple[clingo.Control, PatientInput]:
        """next.lp grounded for the policies `wanted` alone, on first need."""
        every = frozenset(self.rules.policies)
        key = focus_key(every, wanted)
        found = self._aheads.get(key)
        if found is not None:
            self._aheads.move_to_end(key)
            return found
        control = self.rules.ground(map(engine_file, LOOKAHEAD), focus_parts(every, key))
        control.configuration.solve.models = "0"  # type: ignore[union-attr]
        given = PatientInput(control)
        given.free()
        found = self._aheads[key] = (control, given)
        forget(self._aheads, every)
        return found

    def next(
        self, patient: Patient, policies: Iterable[Policy] | None = None, reask: Iterable[str] = ()
    ) -> list[Next]:
        """For each policy (default: all), its decision and the best question to ask next.

        `reask`: fields that the record holds as unknown (null) and may be asked again (a
        clinician going on with the questions still needed); any other null is not asked."""
        again = set(reask) - set(patient.values)
        if again & patient.answered:
            patient = dataclasses.replace(patient, answered=patient.answered - again)
        result = []
        left: dict[str, dict[str, list[int]]] | None = None
        order = list(self.rules.fields)
        decisions = self.decide(patient, policies)
        asked = [d.policy.id for d in decisions]
        for decision in decisions:
            disputed = {c.field: c for c in decision.disputed}  # answered, by sources that disagree
            # known only from a source no one confirmed for this referral, and the decision rests
            # on it: asked, to confirm (the clinician's answer then replaces it: Patient.filled)
            doubted = {s.field: s for s in decision.unconfirmed}
            # and a met urgent route's facts that no one confirmed: the urgency rests on them
            # (met, or to find out: refuted only on such a value)
            urgent = urgent_route(decision)
            route = urgent[0].id if urgent is not None else None
            urging = {s.field: s for s in route_doubts(decision, route)} if route else {}
            doubted |= {f: s for f, s in urging.items() if f not in doubted}
            askable = [
                f
                for f in (*decision.missing, *decision.to_settle)
                if f not in patient.answered or f in disputed
            ]
            askable += [f for f in doubted if f not in askable]
            if not askable:
                result.append(Next(decision, None, 0))
                continue
            caveats = self.rules.caveats
            if disputed:  # the question that settles a conflict is asked first, saying what each source says
                best = next(f for f in askable if f in disputed)
                conflict = disputed[best]
                said = "; ".join(
                    f"{s.source}: {_said(s.value)}" for s in conflict.values if s.value is not None
                )
                question = Question.of(
                    self.rules.fields[best],
                    (
                        f"The sources disagree ({said}): which is right for this procedure?",
                        *caveats(best, [decision.policy]),
                    ),
                )
                result.append(Next(decision, question, len(askable)))
                continue
            if doubted:  # then a value the decision rests on that no one confirmed, before any other
                # in the urgent line's order: whether the procedure suits the patient, then what
                # the urgency rests on, then the rest as the form asks them
                suits = {s.field for s in unconfirmed_sources(decision)}
                best = min(doubted, key=lambda f: (f not in suits, f not in urging, order.index(f)))
                stated = doubted[best]
                rests = (
                    "the decision"
                    if any(s.field == best for s in decision.unconfirmed)
                    else "the urgent route"
                )
                given = f"{stated.source}{f' of {stated.date[:10]}' if stated.date else ''}"
                question = Question.of(
                    self.rules.fields[best],
                    (
                        f"Known only from {given} ({_said(stated.value)}), which no one has "
                        f"confirmed for this referral, and {rests} rests on it: confirm it, or "
                        "give the right answer.",
                        *caveats(best, [decision.policy]),
                    ),
                )
                result.append(Next(decision, question, len(askable)))
                continue
            left = left or self._look_ahead(patient, asked)
            counts = left[decision.policy.id]
            best = min(
                askable,
                key=lambda f: (sum(counts[f]) / len(counts[f]), max(counts[f]), order.index(f)),
            )
            question = Question.of(self.rules.fields[best], caveats(best, [decision.policy]))
            result.append(Next(decision, question, len(askable)))
        return result

    def _look_ahead(self, patient: Patient, policies: Iterable[str]) -> dict[str, dict[str, list[int]]]:
        """For each of the `policies` and each unasked unknown field, how many questions each
        answer leaves."""
        left: dict[str, dict[str, list[int]]] = {}
        control, given = self._ahead(policies)
        with control.solve(given.assumed(patient), yield_=True) as models:
            for model in models:
                for atom in model.symbols(shown=True):
                    p, f, _, n = atom.arguments
                    left.setdefault(p.string, {}).setdefault(f.string, []).append(n.number)
        return left


def parse_answer(text: str, field: Field) -> Value | None:
    """A clinician's typed answer as the JSON value for `field` (None: unknown), in the words a
    CSV cell takes too (answers.read_answer), or a choice's number in the list.

    Raises ValueError with what to type instead.
    """
    if not text.strip():
        raise ValueError('no answer; type "unknown" if it is not known')
    try:
        return read_answer(text, field, numbered=True)
    except ValueError as error:
        raise ValueError(f'answer {error}, or "unknown"') from None


def _said(value: Value | None) -> str:
    """A value as a question's note says it: yes or no for a yes/no answer."""
    if value is None:
        return "no value"
    return ("yes" if value else "no") if isinstance(value, bool) else show(value)
