"""FHIR R4: the Questionnaire derived from the field declarations, and a QuestionnaireResponse
read as a patient record (DESIGN §8). Plain dicts in FHIR's JSON form; no FHIR library at run
time (the tests validate every resource against the R4B models of fhir.resources).

An item's `linkId` is the field's dotted path. Grades are `choice` items whose options carry
their rank (the ordinalValue extension); numbers are `decimal` or `integer` items with the
declared range and, where the rules declare one, a UCUM unit.
"""

from __future__ import annotations

from typing import Any

from .errors import InputError
from .patient import nested
from .ruleset import Field, Policy, RuleSet, Value

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
UCUM = "http://unitsofmeasure.org"
ITEM_TYPE = {
    "bool": "boolean",
    "grade": "choice",
    "choice": "choice",
    "number": "decimal",
    "integer": "integer",
}


def questionnaire_url(policy: str) -> str:
    return f"urn:llr-asp:questionnaire:{policy}"


def value_system(field: str) -> str:
    """The code system of a field's values (a URN: llr-asp mints no web address)."""
    return f"urn:llr-asp:values:{field}"


def questionnaire(rules: RuleSet, policy: Policy | None = None) -> dict[str, Any]:
    """The Questionnaire of `policy` (its fields, in declaration order), or of every field."""
    used = policy.fields() if policy is not None else frozenset(rules.fields)
    name = policy.id if policy is not None else "all"
    title = f"{policy.title} ({policy.reference})" if policy is not None else "LLR ICB commissioning policies"
    return {
        "resourceType": "Questionnaire",
        "id": name,
        "meta": {"profile": [SDC]},
        "url": questionnaire_url(name),
        "version": rules.digest[:16],
        "name": "".join(part.capitalize() for part in name.replace("_", "-").split("-")),
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        **({"publisher": policy.commissioner} if policy is not None else {}),
        "description": "The questions llr-asp asks to decide funding; any may be left unanswered (unknown).",
        "item": [item(field) for path, field in rules.fields.items() if path in used],
    }


def item(field: Field) -> dict[str, Any]:
    """The Questionnaire item that asks `field`."""
    entry: dict[str, Any] = {
        "linkId": field.path,
        "definition": f"urn:llr-asp:field:{field.path}",
        "text": field.question,
        "type": ITEM_TYPE[field.type],
        "required": False,
    }
    if field.type in ("grade", "choice"):
        entry["answerOption"] = [
            {
                "valueCoding": {"system": value_system(field.path), "code": value, "display": value},
                **({"extension": [{"url": ORDINAL, "valueDecimal": rank}]} if field.type == "grade" else {}),
            }
            for rank, value in enumerate(field.values)
        ]
    elif field.type in ("number", "integer"):
        kind = "valueDecimal" if field.type == "number" else "valueInteger"
        entry["extension"] = [
            {"url": MIN_VALUE, kind: field.minimum},
            {"url": MAX_VALUE, kind: field.maximum},
        ]
        if field.unit is not None:
            entry["extension"].append({"url": UNIT, "valueCoding": {"system": UCUM, "code": field.unit}})
    return entry


def is_response(document: Any) -> bool:
    return isinstance(document, dict) and document.get("resourceType") == "QuestionnaireResponse"


def patient_document(response: dict[str, Any], rules: RuleSet, source: str) -> dict[str, Any]:
    """The patient record a QuestionnaireResponse gives: each item's answer by its linkId (an
    item without an answer is unknown). A linkId that is not a field, or an answer of the wrong
    type, is refused naming the item."""
    values: dict[str, Value | None] = {}
    items = response.get("item", [])
    if not isinstance(items, list):
        raise InputError(source, "item", "expected a list of QuestionnaireResponse items")
    for entry in _flattened(items, "item"):
        where, answers = entry
        link = where[1].get("linkId") if isinstance(where[1], dict) else None
        path = f"{where[0]} (linkId {link})" if isinstance(link, str) else where[0]
        field = rules.fields.get(link) if isinstance(link, str) else None
        if field is None:
            raise InputError(
                source, path, "not a field of the questionnaire (see `llr-asp fhir questionnaire`)"
            )
        if len(answers) > 1:
            raise InputError(source, path, "more than one answer; a field takes one")
        values[field.path] = _answer(answers[0], field, source, path) if answers else None
    document: dict[str, Any] = nested(values)
    subject = response.get("id")
    if isinstance(subject, str):
        document["id"] = subject
    return document


def _flattened(items: list[Any], where: str) -> list[tuple[tuple[str, Any], list[Any]]]:
    """Every answerable item with its place, groups opened (item.item)."""
    found = []
    for index, entry in enumerate(items):
        place = f"{where}[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("item"), list) and "answer" not in entry:
            found += _flattened(entry["item"], f"{place}.item")
            continue
        answers = entry.get("answer", []) if isinstance(entry, dict) else []
        found.append(((place, entry), answers if isinstance(answers, list) else [answers]))
    return found


def _answer(answer: Any, field: Field, source: str, path: str) -> Value:
    if not isinstance(answer, dict):
        raise InputError(source, path, 'an answer is an object such as {"valueBoolean": true}')
    if field.type == "bool" and isinstance(answer.get("valueBoolean"), bool):
        return bool(answer["valueBoolean"])
    if field.type in ("grade", "choice"):
        coding = answer.get("valueCoding")
        code = coding.get("code") if isinstance(coding, dict) else answer.get("valueString")
        if isinstance(code, str) and code in field.values:
            return code
        raise InputError(source, path, f"expected a valueCoding with a code of {', '.join(field.values)}")
    if field.type in ("number", "integer"):
        number = answer.get("valueDecimal", answer.get("valueInteger"))
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return number
        if isinstance(answer.get("valueQuantity"), dict) and isinstance(
            answer["valueQuantity"].get("value"), (int, float)
        ):
            return answer["valueQuantity"]["value"]  # type: ignore[no-any-return]
    kinds = {"bool": "valueBoolean", "number": "valueDecimal", "integer": "valueInteger"}
    raise InputError(
        source, path, f"expected {kinds.get(field.type, 'a value')} for this {field.type} question"
    )
