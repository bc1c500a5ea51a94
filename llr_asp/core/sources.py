"""Facts and their sources (DESIGN §4): where several sources give one field, which value
holds, which fields are in conflict, and which the clinical system filled.

Each value a source gives is a `Stated`; `settle` hands them to clingo as facts (built with
the symbol API, so no text from a record ever becomes program text) and reads what
`asp/sources.lp` derives: a field two sources give two values is in conflict (unknown for the
decision, named in every output, asked first); an administrative value (FHIR's Patient.gender)
is heard only where the record gives no sex for clinical use, and never overrides a
clinician's answer; a value only the clinical system or an older form gave is `filled`, and
named as such.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import clingo

from .ruleset import Value, engine_file


def _declared() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The kinds of source asp/sources.lp declares (source_kind/1), and those that never confirm
    a value for this referral (unconfirmed/1), in the order declared."""
    control = clingo.Control(["--warn=none"])
    control.load(engine_file("sources.lp"))
    control.ground([("base", [])])
    kinds: list[str] = []
    unconfirmed: list[str] = []
    with control.solve(yield_=True) as models:
        for model in models:
            for atom in model.symbols(shown=True):
                if atom.name == "source_kind":
                    kinds.append(atom.arguments[0].name)
                elif atom.name == "unconfirmed":
                    unconfirmed.append(atom.arguments[0].name)
    return tuple(kinds), tuple(unconfirmed)


KINDS, UNCONFIRMED = _declared()
"""The kinds of source (asp/sources.lp source_kind/1): the clinician's answer (a record, a
form, a QuestionnaireResponse); an answer given on an older form that the newest leaves blank
(a fact: it still counts, but no answer for this referral confirms it); an answer a form filler
prefilled from the EHR and no one changed; the clinical system's record for clinical use; its
administrative record; an answer about a joint on the form for every procedure (`shared`).
UNCONFIRMED (unconfirmed/1): the kinds whose values no one confirmed for this referral (the
administrative record, an older form's, a prefilled answer, the form for every procedure's)."""


@dataclass(frozen=True)
class Stated:
    """One source's value for one field."""

    field: str
    value: Value | None  # None: the source gives the field, as no value a rule can use
    source: str  # where it came from, in words a clinician knows ("the ARP 55 form", "the EHR")
    kind: str  # one of KINDS
    date: str | None = None  # when it was given (a QuestionnaireResponse's `authored`), if known

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "date": self.date}


@dataclass(frozen=True)
class Conflict:
    """A field that two sources give two values: unknown for the decision until settled."""

    field: str
    values: tuple[Stated, ...]  # every value heard, in the order the sources were given

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "values": [s.to_json() for s in self.values]}


@dataclass(frozen=True)
class Settled:
    values: dict[str, Value]  # the fields every source heard agrees on
    conflicts: tuple[Conflict, ...]
    filled: tuple[Stated, ...]  # values the clinical system gave that no clinician answered


def settle(statements: Sequence[Stated]) -> Settled:
    """What the sources together say (asp/sources.lp)."""
    if not statements:
        return Settled({}, (), ())
    control = clingo.Control(["--warn=none"])
    control.load(engine_file("sources.lp"))
    texts = {_text(s.value): s.value for s in statements if s.value is not None}
    with control.backend() as backend:
        for index, stated in enumerate(statements):
            source, field = clingo.Number(index), clingo.String(stated.field)
            said = (
                clingo.Function("silent", [field, source])
                if stated.value is None
                else clingo.Function("stated", [field, clingo.String(_text(stated.value)), source])
            )
            for atom in (
                said,
                clingo.Function("kind", [source, clingo.Function(stated.kind)]),
            ):
                backend.add_rule([backend.add_atom(atom)])
    control.ground([("base", [])])
    unknown = sorted({s.kind for s in statements} - set(KINDS))
    if unknown:
        raise ValueError(f"no source kind {', '.join(unknown)} in asp/sources.lp (source_kind/1)")
    values: dict[str, Value] = {}
    disputed: dict[str, list[int]] = {}
    filled: list[int] = []
    with control.solve(yield_=True) as models:
        for model in models:
            for atom in model.symbols(shown=True):
                if atom.name in ("source_kind", "unconfirmed"):  # the kinds themselves
                    continue
                field = atom.arguments[0].string
                if atom.name == "settled":
                    values[field] = texts[atom.arguments[1].string]
                elif atom.name == "disputed":
                    disputed.setdefault(field, []).append(atom.arguments[1].number)
                else:
                    filled.append(atom.arguments[1].number)
    conflicts = tuple(
        Conflict(field, tuple(statements[i] for i in sorted(sources))) for field, sources in disputed.items()
    )
    return Settled(values, conflicts, tuple(statements[i] for i in sorted(filled)))


def _text(value: Value) -> str:
    """A value as canonical text: 6 and 6.0 are one value, true is not 1."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value)


def answers(
    record: Mapping[str, Value], source: str, date: str | None = None, kind: str = "answer"
) -> list[Stated]:
    """The clinician's answers of a record (dotted field paths -> values; unknowns left out),
    given now (`answer`) or on an older form (`earlier`)."""
    return [Stated(field, value, source, kind, date) for field, value in record.items() if value is not None]
