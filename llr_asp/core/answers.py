"""One vocabulary for answers written as text: a clinician's typed answer (`ask`, the page) and
a CSV cell (`batch`) mean the same thing.

Choices in any case (`Male`, `SEVERE`), yes/no/true/false (and y/n) for a question of yes or no,
numbers as written (`6`, `5.5`), and "unknown" (or "?", "not known", …) for an answer not
known; spaces around an answer are ignored. `ask` also takes a choice's number from its menu
(`1` for the first), which a CSV cell does not: there "1" for a grade would be a guess.
Every value is checked against the field's declaration here, so that each bad answer or cell is
said at once, in the words of the schema.
"""

from __future__ import annotations

import re

from .patient import field_accepts
from .ruleset import Field, Value, is_date

UNKNOWN_ANSWERS = ("unknown", "?", "u", "don't know", "dont know", "not known")
YES = ("yes", "y", "true")
NO = ("no", "n", "false")
NUMBER = re.compile(r"-?\d{1,9}(\.\d{1,9})?")


def read_answer(text: str, field: Field, numbered: bool = False) -> Value | None:
    """The value `text` gives `field` (None: not known). Raises ValueError naming what the field
    takes (`expected_words`) when it is not one of them. `numbered`: a choice may be given by
    its number in the list (the questionnaire's menu)."""
    answer = text.strip()
    lowered = answer.lower()
    if lowered in UNKNOWN_ANSWERS:
        return None
    value: Value | None = None
    if field.type == "bool":
        value = True if lowered in YES else False if lowered in NO else None
    elif field.values:
        if numbered and answer.isdigit() and 1 <= int(answer) <= len(field.values):
            value = field.values[int(answer) - 1]
        value = next((v for v in field.values if v.lower() == lowered), value)
    elif field.type == "date":
        value = answer if is_date(answer) else None
    elif NUMBER.fullmatch(answer):
        number = float(answer)
        value = int(number) if number.is_integer() else number
    if value is None or not field_accepts(field, value):
        raise ValueError(expected_words(field, numbered))
    return value


def expected_words(field: Field, numbered: bool = False) -> str:
    """What `field` takes, in words: `yes or no (or true or false)`, `one of female, male (in any
    case)`, `a number from 0 to 1200`."""
    if field.type == "bool":
        return "yes or no (or true or false)"
    if field.type == "date":
        return "a date written YYYY-MM-DD, such as 2027-04-01"
    if field.values:  # (a menu takes a choice's number; any case goes without saying there)
        return f"one of {', '.join(field.values)}{' or its number' if numbered else ' (in any case)'}"
    whole = "a whole number" if field.type == "integer" else "a number"
    return f"{whole} from {field.minimum} to {field.maximum}"
