"""The next question to ask, and reading a clinician's answer to it.

Only a field that can still change the decision (`missing`) and was not asked before is
asked. Among those, next.lp counts for every possible answer how many questions would still
be pending; the question asked is the one whose answers leave the fewest on average, then at
worst, then the first declared. A document's field present as null was asked and its answer
is unknown: it is never asked again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .decision import Decision
from .patient import Patient
from .reasoner import Reasoner
from .ruleset import Field, Policy, Value, engine_file

UNKNOWN_ANSWERS = ("unknown", "?", "u", "don't know", "dont know", "not known")


@dataclass(frozen=True)
class Question:
    field: str
    text: str
    type: str  # bool | grade | choice | number | integer
    choices: tuple[Value, ...] | None  # None: a number in a range

    @classmethod
    def of(cls, field: Field) -> Question:
        choices: tuple[Value, ...] | None = (True, False) if field.type == "bool" else field.values or None
        return cls(field.path, field.question, field.type, choices)

    def to_json(self) -> dict[str, Any]:
        choices = list(self.choices) if self.choices is not None else None
        return {"field": self.field, "text": self.text, "type": self.type, "choices": choices}


@dataclass(frozen=True)
class Next:
    """A policy's decision so far, and the question to ask next (None: nothing left to ask)."""

    decision: Decision
    question: Question | None
    pending: int  # fields that can still change the decision and were not asked

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.decision.patient,
            "policy": self.decision.policy.id,
            "decision": self.decision.decision,
            "question": self.question.to_json() if self.question else None,
        }


class Interviewer(Reasoner):
    """A reasoner that also weighs the questions still to ask (next.lp). Not thread-safe."""

    programs = (*Reasoner.programs, engine_file("next.lp"))

    def next(self, patient: Patient, policies: Iterable[Policy] | None = None) -> list[Next]:
        """For each policy (default: all), its decision and the best question to ask next."""
        shown = self._solve(patient)
        left: dict[tuple[str, str], list[int]] = {}
        for name, *args in shown:
            if name == "left":
                left.setdefault((args[0], args[1]), []).append(int(args[3]))
        order = list(self.rules.fields)
        result = []
        for decision in self._decisions(patient, policies, shown):
            askable = [f for f in decision.missing if f not in patient.answered]
            if decision.decision != "undetermined" or not askable:
                result.append(Next(decision, None, 0))
                continue

            def cost(field: str, policy: str = decision.policy.id) -> tuple[float, int, int]:
                counts = left[policy, field]
                return (sum(counts) / len(counts), max(counts), order.index(field))

            best = min(askable, key=cost)
            result.append(Next(decision, Question.of(self.rules.fields[best]), len(askable)))
        return result


def parse_answer(text: str, field: Field) -> Value | None:
    """A clinician's typed answer as the JSON value for `field` (None: unknown).

    Raises ValueError with what to type instead. Range checks are the schema's, not this one's.
    """
    answer = text.strip()
    lowered = answer.lower()
    if not answer:
        raise ValueError('no answer; type "unknown" if it is not known')
    if lowered in UNKNOWN_ANSWERS:
        return None
    if field.type == "bool":
        if lowered in ("y", "yes", "true"):
            return True
        if lowered in ("n", "no", "false"):
            return False
        raise ValueError('answer yes or no (or "unknown")')
    if field.values:
        if answer.isdigit() and 1 <= int(answer) <= len(field.values):
            return field.values[int(answer) - 1]
        for value in field.values:
            if value.lower() == lowered:
                return value
        raise ValueError(f'answer one of {", ".join(field.values)} (or its number, or "unknown")')
    if not re.fullmatch(r"-?\d{1,9}(\.\d{1,9})?", answer):
        raise ValueError(f'answer a number from {field.minimum} to {field.maximum} (or "unknown")')
    number = float(answer)
    return int(number) if number.is_integer() else number
