"""Patient documents: the JSON Schema derived from the field declarations, safe reading and
validation, and the validated `Patient` the reasoner works on. The core: it reads the patient
record only; every other format is read into one at the edge (`llr_asp.formats.readers`).

Validation has one authority, jsonschema, run against `json_schema(rules)`. Importing jsonschema
costs more than the whole start-up budget of `llr-asp explain`, so a document is first checked by
`checker`, a direct reading of the few schema keywords `json_schema` emits; only a document that
fails that check is handed to jsonschema, which decides and words the error. The test suite
checks that both agree on arbitrary JSON.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .ruleset import Field, RuleSet, Value, is_date
from .sources import Conflict, Stated

MAX_BYTES = 1 << 20
LONGEST_KEY = 80
"""An unknown key longer than this is shortened where an error names it."""
"""A patient record is a few hundred bytes; anything over 1 MiB is refused unread."""

MAX_ID_LENGTH = 200

DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
"""A date field's value: a day written YYYY-MM-DD (and a real one: the schema's format "date")."""


@dataclass(frozen=True)
class Patient:
    """A validated patient record."""

    id: str
    policy: str | None  # the policy the document names, if any
    values: Mapping[str, Value]  # the known fields; every other field is unknown
    answered: frozenset[str]  # fields present in the document, with a value or null
    conflicts: tuple[Conflict, ...] = ()  # fields two sources give two values (unknown here)
    filled: tuple[Stated, ...] = ()  # values the clinical system's record gave, no one answered
    answers_for: str | None = None  # the policy family whose questionnaire these answers were given for
    shared: bool = False  # the answers were given on the form for every procedure (`all`)
    given: str | None = None  # when the form says they were given (a QuestionnaireResponse's `authored`)


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """A patient document from dotted paths: {"pain.severity": "mild"} -> {"pain": {"severity": "mild"}}."""
    document: dict[str, Any] = {}
    for path, value in values.items():
        *groups, name = path.split(".")
        node = document
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return document


@functools.lru_cache(maxsize=8)
def json_schema(rules: RuleSet) -> dict[str, Any]:
    """The JSON Schema of a patient document under `rules` (shared: do not modify it)."""
    root: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "llr-asp patient record",
        "description": "Every field may be omitted or null (unknown). Free-form notes go under meta.",
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "maxLength": MAX_ID_LENGTH,
                "description": "Names the patient in output.",
            },
            "policy": {
                "enum": sorted({*rules.policies, *rules.families}),
                "description": "The policy to evaluate by default: a family (its edition in force), "
                "or an edition.",
            },
            "meta": {"description": "Free-form; ignored."},
        },
        "additionalProperties": False,
    }
    for field in rules.fields.values():
        node = root
        *groups, name = field.path.split(".")
        for group in groups:
            node = node["properties"].setdefault(
                group, {"type": ["object", "null"], "properties": {}, "additionalProperties": False}
            )
        node["properties"][name] = _field_schema(field)
    return root


def _field_schema(field: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": field.question}
    if field.type == "bool":
        schema["type"] = ["boolean", "null"]
    elif field.type in ("grade", "choice"):
        schema["enum"] = [*field.values, None]
    elif field.type == "date":
        schema["type"] = ["string", "null"]
        schema["format"] = "date"
        schema["pattern"] = DATE_PATTERN
    else:
        schema["type"] = ["number" if field.type == "number" else "integer", "null"]
        schema["minimum"], schema["maximum"] = field.minimum, field.maximum
    return schema


def field_accepts(field: Field, value: Any) -> bool:
    """Whether the schema takes `value` for `field` (its type, choices and range)."""
    return _field_check(field)(value)


@functools.lru_cache(maxsize=256)
def _field_check(field: Field) -> Callable[[Any], bool]:
    return checker(_field_schema(field))


def checker(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A test of whether an instance satisfies `schema`, for the keywords `json_schema` emits,
    each read once here rather than at every instance. It accepts only exact JSON types (what
    `json.loads` gives); anything else is left to jsonschema, so it may refuse a valid instance
    but never accepts an invalid one."""
    declared = schema.get("type", [])
    kinds = [declared] if isinstance(declared, str) else list(declared)
    classes: frozenset[type] = frozenset(c for k in kinds for c in _CLASSES[k])
    if not kinds:
        classes = frozenset(type(v) for v in schema.get("enum", ())) or _ANY
    whole = "integer" in kinds and "number" not in kinds
    enum = frozenset((type(v), v) for v in schema["enum"]) if "enum" in schema else None
    low, high = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
    longest = schema.get("maxLength", math.inf)
    dated = schema.get("format") == "date"
    properties = {k: checker(v) for k, v in schema.get("properties", {}).items()}
    closed = schema.get("additionalProperties") is False

    def check(instance: Any) -> bool:
        kind = type(instance)
        if kind not in classes:
            return False
        if enum is not None and (kind is dict or kind is list or (kind, instance) not in enum):
            return False  # (an object or array is in no enum json_schema emits, and unhashable)
        if kind is int or kind is float:
            if whole and kind is float and not instance.is_integer():
                return False
            return bool(low <= instance <= high)
        if kind is str:
            return bool(len(instance) <= longest) and (not dated or is_date(instance))
        if kind is dict and "properties" in schema:
            if closed and not properties.keys() >= instance.keys():
                return False
            return all(properties[k](v) for k, v in instance.items() if k in properties)
        return True

    return check


_CLASSES = {
    "object": (dict,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int, float),
}
_ANY: frozenset[type] = frozenset({dict, list, str, bool, int, float, type(None)})


def read_text(source: str) -> str:
    try:
        if source == "-":
            if sys.stdin is None:
                raise InputError(source, "", "standard input is closed; give the patient file, or pipe it in")
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(source, "", "file not found; give the path of a patient JSON file") from None
    except IsADirectoryError:
        raise InputError(source, "", "is a directory; give the path of a patient JSON file") from None
    except OSError as error:
        raise InputError(source, "", f"cannot read the file ({error.strerror})") from None
    if len(data) > MAX_BYTES:
        raise InputError(source, "", "file is over 1 MiB, far larger than a patient record")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(source, "", f"not UTF-8 text (byte {error.start}); save the file as UTF-8") from None


def parse(text: str, source: str) -> Any:
    """Parse JSON strictly: no NaN or Infinity, no duplicate keys, no runaway nesting."""
    duplicated: list[_Twice] = []

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        seen: set[str] = set()
        twice = _Twice(result)
        twice.duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        duplicated.append(twice)
        return twice

    try:
        document = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=unique_keys,
        )
        if duplicated:  # where: walked only then (the walk was three quarters of a parse)
            raise _Refused(str(_twice(document, "")), "key appears twice in the same object; keep one")
        # nesting: walked only when the text has more brackets than the bound (a record has a few)
        if text.count("{") + text.count("[") > MAX_DEPTH and _depth(document) > MAX_DEPTH:
            raise _Refused("", f"JSON nested over {MAX_DEPTH} deep, far deeper than a patient record")
        return document
    except _Refused as refused:
        raise InputError(source, refused.path, refused.problem) from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise InputError(source, where, f"invalid JSON: {_json_problem(error.msg)}") from None
    except RecursionError:
        raise InputError(source, "", "JSON nested too deeply for a patient record") from None
    except ValueError as error:  # e.g. an integer with thousands of digits
        raise InputError(source, "", f"invalid JSON: {error}") from None


MAX_DEPTH = 64
"""The deepest nesting of objects and lists read (a FHIR QuestionnaireResponse of nested groups
is a dozen deep): deeper is refused in one line before any other code walks it (a record 945
deep was a 500 where validation recursed past Python's limit)."""


def _depth(document: Any) -> int:
    """How deep `document`'s objects and lists nest, walked without recursion."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_problem(message: str) -> str:
    """The json module's message whole: it ends "… at" or "… starting at" before the position,
    which the error gives apart (`Invalid control character at`), with the likely fix."""
    for tail in (" starting at", " at"):
        message = message.removesuffix(tail)
    if message == "Invalid control character":
        message += " in a string (a line break or a tab? a JSON string is on one line; write \\n or \\t)"
    elif message == "Unterminated string":
        message += " (a quote left open)"
    return message


class _Refused(Exception):
    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem


def _reject_constant(name: str) -> Any:
    raise _Refused("", f"{name} is not a JSON number; write a number, or null if unknown")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("", f"number {text[:20]} is out of range; write a realistic value, or null")
    return value


class _Twice(dict):  # type: ignore[type-arg]
    """An object in which a key appeared twice (`duplicate`): found with its path after parsing,
    since the hook that builds an object does not know where the object sits."""

    duplicate = ""


def _twice(node: Any, path: str) -> str | None:
    """The dotted path of the first key that appeared twice in its object, or None."""
    if isinstance(node, _Twice):
        return f"{path}.{node.duplicate}" if path else node.duplicate
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = _twice(child, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def validate(document: Any, rules: RuleSet, source: str) -> Patient:
    """Check the patient record `document` against the schema of `rules`; return the patient it
    describes. (Other formats, FHIR among them, are read into a record by `llr_asp.formats.readers`.)"""
    check, paths = _reading(rules)
    if not check(document):
        _raise_schema_error(document, json_schema(rules), rules, source)
    values: dict[str, Value] = {}
    answered = set()
    for path, keys in paths:
        node: Any = document
        for key in keys:
            node = node.get(key, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT:
            answered.add(path)
            if node is not None:
                values[path] = node
    name = document.get("id") or ("stdin" if source == "-" else Path(source).stem)
    return Patient(name, document.get("policy"), values, frozenset(answered))


_ABSENT = object()


@functools.lru_cache(maxsize=8)
def _reading(rules: RuleSet) -> tuple[Callable[[Any], bool], list[tuple[str, list[str]]]]:
    """The schema check of `rules` and the keys leading to each field, prepared once."""
    return checker(json_schema(rules)), [(path, path.split(".")) for path in rules.fields]


def _raise_schema_error(document: Any, schema: dict[str, Any], rules: RuleSet, source: str) -> None:
    import jsonschema  # slow to import: only for documents that fail the check above

    validator = jsonschema.Draft202012Validator
    errors = validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(document)
    error = min(errors, key=lambda e: [str(p) for p in e.absolute_path], default=None)
    if error is None:
        nan = _nan(document, "")
        if nan is not None:  # NaN passes every bound of a JSON Schema, yet is no number
            problem = "NaN is not a number; give null (None) if unknown"
            raise InputError(source, nan, problem)
        return  # jsonschema is the authority: the document is valid
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema["properties"]
        key = sorted(k for k in error.instance if k not in known)[0]
        wrong = f"{path}.{key}" if path else key
        problem = _unknown_key(wrong, key, rules)
        if len(key) > LONGEST_KEY:  # named, not echoed whole: it may be a megabyte long
            key = f"{key[: LONGEST_KEY - 20]}… ({len(key):,} characters)"
            wrong = f"{path}.{key}" if path else key
        raise InputError(source, wrong, problem)
    got = json.dumps(error.instance)
    got = got if len(got) <= 40 else got[:37] + "..."
    raise InputError(source, path or "(document)", f"expected {_expectation(error.schema)}, got {got}")


def _nan(node: Any, path: str) -> str | None:
    """The dotted path of a NaN in a document (from Python or Arrow: JSON has none), or None."""
    if isinstance(node, float) and math.isnan(node):
        return path or "(document)"
    for key, child in node.items() if isinstance(node, dict) else ():
        found = _nan(child, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _unknown_key(wrong: str, written: str, rules: RuleSet) -> str:
    """What to say of the unknown key `written`, at dotted path `wrong`."""
    import difflib  # imported only for a document with an unknown key

    if "." in written and wrong in rules.fields:
        *groups, name = written.split(".")
        nest = "".join(f'{{"{g}": ' for g in groups) + f'{{"{name}": …}}' + "}" * len(groups)
        return f"fields nest: write {nest}, not a dotted key"

    valid = ["id", "policy", "meta", *rules.fields]
    valid += sorted({p.rsplit(".", 1)[0] for p in rules.fields if "." in p})
    # a key far longer than any field is close to none; difflib would index it whole (a
    # megabyte-long key: 0.4 s of work for no suggestion)
    suggestible = len(wrong) <= 2 * max(len(v) for v in valid)
    close = difflib.get_close_matches(wrong, valid, n=1, cutoff=0.6) if suggestible else []
    hint = f'did you mean "{close[0]}"?' if close else "see `llr-asp schema` for the valid fields"
    return f'unknown field; {hint} (free-form notes go under "meta")'


def _expectation(schema: Mapping[str, Any]) -> str:
    """Plain words for what a schema node accepts."""
    declared = schema.get("type", [])
    kinds = [declared] if isinstance(declared, str) else list(declared)
    nullable = "null" in kinds or None in schema.get("enum", [])
    tail = " (or null if unknown)" if nullable else ""
    if "enum" in schema:
        names = [json.dumps(v) for v in schema["enum"] if v is not None]
        return f"one of {', '.join(names)}{tail}"
    if "boolean" in kinds:
        return f"true or false{tail}"
    if "number" in kinds or "integer" in kinds:
        kind = "a whole number" if "integer" in kinds else "a number"
        return f"{kind} from {schema['minimum']} to {schema['maximum']}{tail}"
    if schema.get("format") == "date":
        return f"a date written YYYY-MM-DD, such as 2027-04-01{tail}"
    if "string" in kinds:
        return f"a string of at most {schema.get('maxLength')} characters"
    if "object" in kinds:
        fields = ", ".join(schema.get("properties", {}))
        return f"an object with the fields {fields}{tail}"
    return "a different value"
