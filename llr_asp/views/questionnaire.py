"""The questionnaire of `llr-asp ask`: the questions `next` chooses, put one at a time.

Prompts go to a console of their own (stderr in the CLI), so that standard output carries only
the result. Every answer is checked twice before it is kept: `parse_answer` turns the words into
a value, and the patient schema accepts or refuses the record holding it; a refused answer is
asked again with the reason. With `save`, the record is written after every answer, so an
interrupted session loses nothing and can go on with `--from`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from ..core.errors import InputError, printable
from ..core.files import replaced
from ..core.patient import Patient, validate
from ..core.ruleset import Field, Policy, Value
from ..core.sources import Stated
from ..engines.interview import Interviewer, parse_answer
from .terminal import question_text
from .wording import urgent_note

ECHO = 80  # characters of a piped answer echoed back: a runaway line is not shown whole
Reader = Callable[[], str]  # one line of answer; raises EOFError when there are no more
Keeper = Callable[[dict[str, Any], "Field | None", "Value | None"], None]
"""Keeps the session after every answer (`--save`): given the record so far and the answer just
accepted (None, None at the start). `record_keeper` writes the record; a session begun from a
QuestionnaireResponse keeps the form itself, so that every value keeps its source and date."""


class Questionnaire:
    """A questionnaire session: the record so far, and the patient it describes."""

    def __init__(
        self,
        interviewer: Interviewer,
        policies: Sequence[Policy],
        document: dict[str, Any],
        source: str,
        save: Keeper | None = None,
        filled: tuple[Stated, ...] = (),
    ) -> None:
        self.interviewer, self.policies, self.source, self.save = interviewer, policies, source, save
        self.document = document
        # values no one confirmed that the record holds (a QuestionnaireResponse's answers
        # pre-filled from the EHR): to confirm, until the clinician answers them here
        self.filled = filled
        self.patient = dataclasses.replace(validate(document, interviewer.rules, source), filled=filled)
        self.asked = 0
        self.reask: set[str] = set()  # fields recorded as not known, to ask again once
        if save is not None:
            save(document, None, None)

    def run(self, console: Console, read: Reader) -> Patient:
        """Ask until no policy has a question left; the patient it ends with.

        Raises EOFError (or KeyboardInterrupt) when the answers stop first; `document` and
        `patient` then hold every answer accepted so far, and so does the saved record.
        """
        references = ", ".join(p.reference for p in self.policies)
        console.print(
            Text(
                f'Questionnaire: {references}. Answer each question; "unknown" if it is not known.',
                style="bold",
            )
        )
        said: set[str] = set()
        while True:
            steps = self.interviewer.next(self.patient, self.policies, self.reask)
            step = next((s for s in steps if s.question), None)
            if step is None or step.question is None:
                return self.patient
            for s in steps:  # an urgent route, said once before the next question: a walk
                note = urgent_note(s.decision)  # left half-way still said it
                if note and note not in said:
                    said.add(note)
                    console.print(Text(f"\n⚠ {s.decision.policy.reference}: {note}", style="bold yellow"))
            self.reask.discard(step.question.field)
            self.asked += 1
            others = step.pending - 1
            more = f"; {others} more can still change or settle the decision" if others else ""
            console.print(
                Text(f"\nQuestion {self.asked} ({step.decision.policy.reference}{more})", style="dim")
            )
            console.print(question_text(step.question))
            self._answer(self.interviewer.rules.fields[step.question.field], console, read)

    def _answer(self, field: Field, console: Console, read: Reader) -> None:
        """Read answers until one is usable, and keep it."""
        while True:
            try:
                value = parse_answer(read(), field)
                document = with_value(self.document, field.path, value)
                patient = validate(document, self.interviewer.rules, self.source)
            except (ValueError, InputError) as error:
                reason = error.problem if isinstance(error, InputError) else str(error)
                if len(reason) > 4 * ECHO:
                    reason = reason[: 4 * ECHO] + "…"
                console.print(Text(f"  ✘ {printable(reason)}. Please answer again.", style="red"))
                continue
            self.filled = tuple(s for s in self.filled if s.field != field.path)  # the clinician's now
            self.document, self.patient = document, dataclasses.replace(patient, filled=self.filled)
            if self.save is not None:
                self.save(document, field, value)
            return


def with_value(document: dict[str, Any], path: str, value: Value | None) -> dict[str, Any]:
    """A copy of `document` with the field at dotted `path` set (None: asked, unknown). (A pasted
    QuestionnaireResponse gets its answers as items: formats/fhir.with_answer.)"""
    updated = copy.deepcopy(document)
    *groups, name = path.split(".")
    node = updated
    for group in groups:
        if not isinstance(node.get(group), dict):
            node[group] = {}
        node = node[group]
    node[name] = value
    return updated


def without_value(document: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of `document` with the field at dotted `path` left out (not asked), and any group
    it empties with it."""
    updated = copy.deepcopy(document)
    *groups, name = path.split(".")
    trail = [updated]
    for group in groups:
        node = trail[-1].get(group)
        if not isinstance(node, dict):
            return updated
        trail.append(node)
    trail[-1].pop(name, None)
    for group, parent in zip(reversed(groups), reversed(trail[:-1])):
        if parent.get(group) == {}:
            del parent[group]
    return updated


def write_record(path: Path, document: dict[str, Any]) -> None:
    """Write the patient record atomically: a crash leaves the old file or the new one."""
    with replaced(path, "--save") as out:
        json.dump(document, out, indent=2, ensure_ascii=False)
        out.write("\n")


def record_keeper(path: Path) -> Keeper:
    """A Keeper that writes the record so far to `path` after every answer."""
    return lambda document, field, value: write_record(path, document)


def terminal_reader(console: Console) -> Reader:
    """Answers typed at a terminal, after a prompt."""
    return lambda: console.input(Text("> ", style="bold"))


def line_reader(console: Console, lines: Any) -> Reader:
    """Answers read one per line from a pipe or file, echoed after the prompt for the record."""

    def read() -> str:
        console.print(Text("> ", style="bold"), end="")
        line = lines.readline()
        if not line:
            console.print()
            raise EOFError
        shown = line.rstrip("\r\n")
        if len(shown) > ECHO:
            shown = f"{shown[:ECHO]}… ({len(shown):,} characters)"
        console.print(Text(printable(shown)))
        return str(line)

    return read
