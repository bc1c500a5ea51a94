"""A patient document, whatever it came as, becomes the validated `Patient`: the one way in.

Every reader at the edge (`formats.readers` for JSON Lines and CSV, `formats.arrow` for Arrow
and Parquet, the service's JSON bodies) gives `Document`s: JSON text, a parsed patient record,
or a FHIR QuestionnaireResponse, whose answers are read here by their items' linkIds (the
answers a clinician gave are the core's business; building FHIR resources is
`formats.fhir`'s). `to_patient` turns any of them into a `Patient`; a document that cannot be
one is an `InputError` naming the source, the JSON path and the fix.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import json
import re
from collections.abc import Collection, Mapping
from typing import Any, TypeGuard, Union

from . import clock
from .errors import InputError, printable
from .patient import Patient, nested, parse, read_text
from .patient import validate as validate_record
from .ruleset import Field, Policy, RuleSet, Value, is_date
from .sources import Stated

RETRACTED = ("entered-in-error", "stopped")
"""QuestionnaireResponse statuses never decided from: retracted by the EHR, or abandoned."""

DRAFT = "in-progress"
"""The status of a QuestionnaireResponse still being filled in: not yet an answer, so never
decided from (a CDS card sets it aside; explain, the API, the page and batch refuse it), except
by the adaptive form whose working state it is (`$next-question`: `validate(..., drafts=True)`)."""

FINAL = ("completed", "amended")
"""The statuses of a finished form: any other (a draft, none, one FHIR does not know) is not yet
an answer, on every surface (a CDS card sets it aside: web/hookcall.py)."""

PREFIX = "urn:llr-asp:questionnaire:"
"""The canonical of llr-asp's Questionnaires: PREFIX + a policy id, or "all" (the full form),
and that + ADAPTIVE (the item-less adaptive form SDC's adaptive search finds)."""

ADAPTIVE = "-adaptive"
"""What names a policy's adaptive Questionnaire after its own name (id and canonical)."""

TAG = "urn:llr-asp:questionnaire"
"""The system of the tag (`meta.tag`) naming the policy whose questionnaire a response answers
(the code: the policy id, or "all"), as $next-question writes it."""

UCUM = "http://unitsofmeasure.org"
"""The one code system a Quantity's unit is read in (a field's unit/2 is a UCUM code)."""

UNIT_NAMES = {
    "mo": ("month", "months"),
    "wk": ("week", "weeks"),
    "d": ("day", "days"),
    "a": ("year", "years"),
}
"""The words a Quantity's `unit` (its display) may say for a UCUM code besides the code itself:
any other word beside a code is a unit at odds with it (10 "weeks" coded "mo")."""


def value_system(field: str) -> str:
    """The code system of a field's values (a URN: llr-asp mints no web address)."""
    return f"urn:llr-asp:values:{field}"


Document = Union[str, Mapping[str, Any], InputError]
"""One input record as a reader gives it: JSON text, a parsed document (a patient record or a
FHIR QuestionnaireResponse), or why the record cannot be a patient."""

Numbered = tuple[int, Document]
"""A document with its line (or row) number in the input, counted from 1."""


def to_patient(document: Document, rules: RuleSet, source: str) -> Patient:
    """The validated patient of any reader's document; an InputError names `source`, the
    field path and the fix."""
    if isinstance(document, InputError):
        raise InputError(source, document.path, document.problem)
    if isinstance(document, str):
        document = parse(document, source)
    return validate(document, rules, source)


def validate(document: Any, rules: RuleSet, source: str, drafts: bool = False) -> Patient:
    """The patient a parsed document describes: a patient record, or a FHIR
    QuestionnaireResponse read as one (`record`). A response to one policy's questionnaire
    gives answers about one joint: they are for that policy alone, in any of its editions
    (`answers_for`: its family). A response still in progress is refused (not yet an answer:
    finish it first) unless `drafts` (the adaptive form reading its own working state)."""
    if is_response(document) and document.get("status") in RETRACTED:
        raise InputError(
            source,
            "status",
            f"this QuestionnaireResponse is {document['status']}: the EHR retracted or abandoned it, "
            "so it is never decided from; send the patient's current answers",
        )
    patient = validate_record(record(document, rules, source), rules, source)
    # (after its answers are read: an answer that cannot be read is named first)
    status = document.get("status") if is_response(document) else "completed"
    if status not in FINAL and not (drafts and status == DRAFT):
        said = (
            "still in progress (in-progress)"
            if status == DRAFT
            else f"not a finished form (status {status!r})"
            if isinstance(status, str)
            else "not said to be finished (it has no status)"
        )
        raise InputError(
            source,
            "status",
            f"this QuestionnaireResponse is {said}: only a finished form (completed or amended) is an "
            "answer, so it is never decided from; finish it (status completed), then decide",
        )
    if is_response(document):
        # an answer the form filler pre-populated from the EHR and no one changed is the EHR's
        # value, not a clinician's: named, to confirm (as a CDS card names it: web/hookcall.py)
        auto = sorted(prefilled(document, rules) & patient.values.keys())
        if auto:
            filled = [
                Stated(f, patient.values[f], "the answers pre-filled from the EHR", "prefilled") for f in auto
            ]
            patient = dataclasses.replace(patient, filled=(*patient.filled, *filled))
        named = procedure_of(document, source)
        if named is None:  # whose questionnaire, and so which joint, cannot be told: never decided
            canonical = document.get("questionnaire")
            which = (
                f"names the questionnaire {printable(canonical)!r}, not"
                if isinstance(canonical, str)
                else "names no"
            )
            raise InputError(
                source,
                "questionnaire",
                f"this QuestionnaireResponse {which} one of llr-asp's (urn:llr-asp:questionnaire:"
                "<policy>, or a contained form derived from one): its answers may be about another "
                "joint, so it is never decided from; answer llr-asp's questionnaire for the procedure",
            )
        # a policy, or a family (its editions share one questionnaire: an edition retired, the
        # family's id is no policy's but its forms are still its answers)
        policy = rules.policies.get(named) or next(iter(rules.families.get(named, ())), None)
        if policy is None and named != "all":  # llr-asp's name for a procedure these rules lack
            raise InputError(
                source,
                "questionnaire",
                f'this QuestionnaireResponse answers the questionnaire of "{printable(named)}", which '
                f"these rules do not hold (their policies: {', '.join(rules.policies)}): which joint "
                "its answers are about cannot be told, so it is never decided from; answer the "
                "questionnaire of the procedure these rules decide",
            )
        # answers older than the ICB allows: to confirm, with their date; an answer's own date
        # (ANSWERED, readable and not ahead) is when it was given, else the form's
        since = {f: w for f, w in answered_on(document, rules).items() if date_time(w)}
        form = f"the {policy.reference} answers" if policy is not None else "the answers"
        given = {s.field for s in patient.filled}
        old = [
            Stated(f, v, form, "earlier", since.get(f) or str(document.get("authored")))
            for f, v in patient.values.items()
            if v is not None
            and f not in given
            and stale(date_time(since[f]) if f in since else authored_at(document), rules)
        ]
        if old:
            patient = dataclasses.replace(patient, filled=(*patient.filled, *old))
        authored = document.get("authored")
        if isinstance(authored, str):  # when the form says they were given: the letter says it
            own = any(v is not None and f not in since for f, v in patient.values.items())
            patient = dataclasses.replace(patient, given=given_span(authored, list(since.values()), own))
        if policy is not None:
            return dataclasses.replace(patient, answers_for=policy.family)
        if named == "all":  # written out again, still the form for every procedure's answers
            return dataclasses.replace(patient, shared=True)
    return patient


def given_span(authored: str, dated: list[str], own: bool) -> str:
    """When a form's answers were given (`Patient.given`): its `authored`, or, where answers say
    their own day (ANSWERED: confirmed later), the span `first/last` in time order, each day once
    (a year or a month alone as it is), the form's own date counting where an answer has none
    (`own`). A form whose date cannot be theirs keeps it, so that it is said so."""
    if date_time(authored) is None:
        return authored
    moments = {
        text if PARTIAL_DATE.fullmatch(text) else when.date().isoformat(): when
        for text in [*dated, *([authored] * own)]
        if (when := date_time(text)) is not None
    }
    days = sorted(moments, key=lambda day: moments[day])
    if len(days) > 1:
        return f"{days[0]}/{days[-1]}"
    return days[0] if days and not own else authored


def for_procedure(patient: Patient, policies: list[Policy], every: bool) -> list[Policy]:
    """The policies among `policies` that `patient`'s answers may decide. Answers given for one
    policy's questionnaire decide that policy alone, in any of its editions (the questions are
    about the same joint): asked for `every` policy, that one; asked for another by name, an
    InputError (pain, function and radiology are about another joint)."""
    own = patient.answers_for
    if own is None:
        return policies
    kept = [p for p in policies if p.family == own]
    others = [p for p in policies if p.family != own]
    if others and not (every and kept):
        asked = others[0]
        raise InputError(
            patient.id,
            "questionnaire",
            f"these answers were given for the {own} questionnaire; they are never used for "
            f"{asked.family} ({asked.reference}): answer its own questions",
        )
    return kept


def record(document: Any, rules: RuleSet, source: str) -> Any:
    """The patient record a document gives: a FHIR QuestionnaireResponse (by its resourceType)
    read by its items' linkIds, anything else as it is (validation judges it)."""
    if isinstance(document, Mapping) and document.get("resourceType") == "QuestionnaireResponse":
        return patient_document(dict(document), rules, source)
    if isinstance(document, Mapping) and "resourceType" in document:  # another FHIR resource
        kind = document["resourceType"]
        named = f"a {kind}" if isinstance(kind, str) else f"a resourceType of {json.dumps(kind)}"
        within = f" taken out of the {kind}" if kind in ("Bundle", "Parameters") else ""
        raise InputError(
            source,
            "resourceType",
            f"{named} is not one patient's answers: send one patient record (see `llr-asp schema`) "
            f"or a FHIR QuestionnaireResponse{within}",
        )
    return document


def read_patient(source: str, rules: RuleSet) -> Patient:
    """Read, parse and validate the patient document at `source` (`-` for standard input): a
    patient record or a FHIR QuestionnaireResponse."""
    return validate(parse(read_text(source), source), rules, source)


def policy_of(reference: Any) -> str | None:
    """The policy id (or "all") a canonical of llr-asp's names, its version set aside, whether
    it names the full form or the adaptive one (answers to either are answers for the policy);
    None for anything else."""
    named = form_of(reference)
    return named[0] if named is not None else None


def form_of(reference: Any) -> tuple[str, bool] | None:
    """The policy id (or "all") a canonical of llr-asp's names and whether it names that
    policy's adaptive Questionnaire (`…:<policy>-adaptive`), its version set aside; None for
    anything else."""
    if not isinstance(reference, str) or not reference.startswith(PREFIX):
        return None
    name = reference[len(PREFIX) :].split("|", 1)[0]
    adaptive = name.endswith(ADAPTIVE) and len(name) > len(ADAPTIVE)
    name = name[: -len(ADAPTIVE)] if adaptive else name
    return (name, adaptive) if name else None


def shaped(value: Any, kind: type, source: str, where: str, what: str) -> Any:
    """`value` if it has the shape a FHIR element must have (`kind`), else refused naming where
    it is: a list where an object belongs is a clean 422, never a TypeError further on."""
    if isinstance(value, kind):
        return value
    raise InputError(source, where, f"expected {what}")


def is_response(document: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(document, dict) and document.get("resourceType") == "QuestionnaireResponse"


def patient_document(response: dict[str, Any], rules: RuleSet, source: str) -> dict[str, Any]:
    """The patient record a QuestionnaireResponse gives: each item's answer by its linkId (an
    item without an answer is unknown). A linkId that is not a field, or an answer of the wrong
    type, is refused naming the item."""
    values: dict[str, Value | None] = {}
    items = response.get("item", [])
    if not isinstance(items, list):
        raise InputError(source, "item", "expected a list of QuestionnaireResponse items")
    for entry in _flattened(items, "item", rules.fields):
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
        value = _answer(answers[0], field, source, path) if answers else None
        if values.get(field.path) is not None and value is not None and value != values[field.path]:
            raise InputError(  # one form contradicting itself: never the last answer in silence
                source,
                path,
                f"answers {field.path} again, differently ({json.dumps(values[field.path])} before, "
                f"{json.dumps(value)} here); "
                "keep the one right answer",
            )
        if value is not None or field.path not in values:
            values[field.path] = value
    document: dict[str, Any] = nested(values)
    subject = response.get("id")
    if isinstance(subject, str):
        document["id"] = subject
    named = policy_of(response.get("questionnaire"))
    if named in rules.policies:  # the questionnaire of one policy: the question is about it
        document["policy"] = named
    return document


INFORMATION_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
"""Da Vinci DTR's extension on an answered item saying where its answer came from: its `source`
is `auto` (pre-populated from the EHR, left as it was), `override` (pre-populated, then changed
by the user) or `manual`."""


ANSWERED = "urn:llr-asp:answered"
"""An extension on an answered item (`valueDateTime`): when the clinician gave that answer, where
it differs from the response's `authored` (an answer given today on the page to a form of years
ago): that answer is as old as its own date, the form's others as the form."""


def answered_on(response: dict[str, Any], rules: RuleSet) -> dict[str, str]:
    """The fields whose item says when its answer was given (ANSWERED), with that date."""
    found: dict[str, str] = {}

    def walk(items: Any) -> None:
        for entry in items if isinstance(items, list) else []:
            if not isinstance(entry, dict):
                continue
            link, extensions = entry.get("linkId"), entry.get("extension")
            for extension in extensions if isinstance(extensions, list) else []:
                if not isinstance(extension, dict):
                    continue
                when = extension.get("valueDateTime")
                if extension.get("url") == ANSWERED and isinstance(when, str) and link in rules.fields:
                    # several: the latest that can be its date (one ahead of today, or none, is not)
                    said, kept = date_time(when), date_time(found.get(str(link)))
                    if said is not None and (kept is None or said > kept):
                        found[str(link)] = when
                    else:
                        found.setdefault(str(link), when)
            walk(entry.get("item"))
            given = entry.get("answer")
            for answer in given if isinstance(given, list) else []:
                walk(answer.get("item") if isinstance(answer, dict) else None)

    walk(response.get("item"))
    return found


def prefilled(response: dict[str, Any], rules: RuleSet) -> frozenset[str]:
    """The fields whose answer a form filler pre-populated from the EHR and no one changed (DTR's
    information-origin `auto`, any case): the EHR's value, not a clinician's confirmation. The
    mark is heard on the item, on its answer, or on a group that holds it (unless the item's own
    mark says the clinician changed it); an item marked both ways counts as pre-filled."""
    found: set[str] = set()

    def walk(items: Any, inherited: bool) -> None:
        for entry in items if isinstance(items, list) else []:
            if not isinstance(entry, dict):
                continue
            given = entry.get("answer")
            answers: list[Any] = given if isinstance(given, list) else []
            own: set[str] = set()
            for element in (entry, *answers):
                own |= _origins(element)
            auto = "auto" in own or (inherited and not own)
            link = entry.get("linkId")
            if auto and isinstance(link, str) and link in rules.fields:
                found.add(link)
            walk(entry.get("item"), auto)
            for answer in answers:
                walk(answer.get("item") if isinstance(answer, dict) else None, auto)

    walk(response.get("item"), False)
    return frozenset(found)


def _origins(element: Any) -> set[str]:
    """The `source` codes (lower case) of an element's information-origin extensions."""
    codes: set[str] = set()
    extensions = element.get("extension") if isinstance(element, dict) else None
    for extension in extensions if isinstance(extensions, list) else []:
        if isinstance(extension, dict) and extension.get("url") == INFORMATION_ORIGIN:
            parts = extension.get("extension")
            for part in parts if isinstance(parts, list) else []:
                if (
                    isinstance(part, dict)
                    and part.get("url") == "source"
                    and isinstance(part.get("valueCode"), str)
                ):
                    codes.add(part["valueCode"].lower())
    return codes


def answer_entries(
    items: list[Any], where: str, fields: Collection[str]
) -> list[tuple[tuple[str, Any], list[Any]]]:
    """Every answerable item of a QuestionnaireResponse with its place (`item[2].item[0]`) and
    its answers, groups opened: what a reader of the answers goes through."""
    return _flattened(items, where, fields)


def _flattened(
    items: list[Any], where: str, fields: Collection[str]
) -> list[tuple[tuple[str, Any], list[Any]]]:
    """Every answerable item with its place, groups opened (item.item) and the questions nested
    under an answer (answer.item) with them; the items under a question (its help text) are
    not answers."""
    found = []
    for index, entry in enumerate(items):
        place = f"{where}[{index}]"
        grouped = isinstance(entry, dict) and isinstance(entry.get("item"), list) and "answer" not in entry
        link = entry.get("linkId") if isinstance(entry, dict) else None
        if grouped and (link is None or (isinstance(link, str) and link not in fields)):  # a group
            # (a linkId that is not a string is no group: it is refused as naming no field)
            found += _flattened(entry["item"], f"{place}.item", fields)
            continue
        answers = entry.get("answer", []) if isinstance(entry, dict) else []
        answers = answers if isinstance(answers, list) else [answers]
        found.append(((place, entry), answers))
        for n, answer in enumerate(answers):  # questions nested under an answer are answers too
            if isinstance(answer, dict) and isinstance(answer.get("item"), list):
                found += _flattened(answer["item"], f"{place}.answer[{n}].item", fields)
    return found


def _answer(answer: Any, field: Field, source: str, path: str) -> Value:
    """The value of one answer to `field`'s question, or an InputError naming the item and the
    fix: the one place that decides whether an answer can be read (explain, the API, batch and
    CDS all read answers here). An answer has exactly one value[x] (FHIR): two (valueDecimal 10
    and a valueQuantity of 2) are never read by the first."""
    if not isinstance(answer, dict):
        raise InputError(source, path, 'an answer is an object such as {"valueBoolean": true}')
    values = [key for key in answer if key.startswith("value")]
    if len(values) > 1:
        raise InputError(
            source,
            path,
            f"an answer has one value, this one has {len(values)} ({', '.join(values)}), which may "
            "disagree; send the one meant",
        )
    if field.type == "bool" and isinstance(answer.get("valueBoolean"), bool):
        return bool(answer["valueBoolean"])
    if field.type in ("grade", "choice"):
        coding = answer.get("valueCoding")
        system = coding.get("system", value_system(field.path)) if isinstance(coding, dict) else None
        if system is not None and system != value_system(field.path):  # another code system's "male"
            raise InputError(
                source,
                path,
                f"a coding in {system!r}; this question's codes are in {value_system(field.path)}",
            )
        code = coding.get("code") if isinstance(coding, dict) else None  # text is no code
        display = coding.get("display") if isinstance(coding, dict) else None
        if (
            isinstance(display, str)
            and display.lower() != str(code).lower()
            and display.lower() in field.values
        ):
            raise InputError(  # code "severe" shown as "mild": which did the clinician choose?
                source,
                path,
                f"the coding says {code!r} but shows {display!r}, another answer; give the one meant",
            )
        if isinstance(code, str) and code in field.values:
            return code
        raise InputError(source, path, f"expected a valueCoding with a code of {', '.join(field.values)}")
    if field.type in ("number", "integer"):
        number = answer.get("valueDecimal", answer.get("valueInteger"))
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return number
        quantity = answer.get("valueQuantity")
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), (int, float)):
            if "comparator" in quantity:  # "< 6 months" is not 6 months
                raise InputError(
                    source,
                    path,
                    f"a valueQuantity with comparator {quantity['comparator']!r} is not an exact "
                    "value; give the number itself, or leave the question unanswered (unknown)",
                )
            unit = _unit(quantity, source, path)
            if unit != field.unit:  # 10 weeks are not 10 months
                wanted = f'with the UCUM code "{field.unit}"' if field.unit else "without a unit"
                given = f"in {unit!r}" if unit is not None else "without a unit"
                raise InputError(source, path, f"expected a valueQuantity {wanted}, not {given}")
            return quantity["value"]  # type: ignore[no-any-return]
    if field.type == "date" and is_date(answer.get("valueDate")):
        return answer["valueDate"]  # type: ignore[no-any-return]
    kinds = {"bool": "valueBoolean", "number": "valueDecimal", "integer": "valueInteger", "date": "valueDate"}
    raise InputError(
        source, path, f"expected {kinds.get(field.type, 'a value')} for this {field.type} question"
    )


def _unit(quantity: dict[str, Any], source: str, path: str) -> Any:
    """The UCUM code a Quantity gives its value in (its `code`, else its `unit`); a code of
    another system (SNOMED's "mo"), or a `unit` that says another unit than the `code` (10
    "weeks" coded "mo"), is refused: which did the clinician mean?"""
    system, code, unit = quantity.get("system"), quantity.get("code"), quantity.get("unit")
    if system is not None and system != UCUM:
        raise InputError(
            source,
            path,
            f"a valueQuantity in the system {system!r}; its unit is read only as a UCUM code (system {UCUM})",
        )
    if code is not None and unit is not None:
        said = str(unit).strip().lower()
        if said != str(code).lower() and said not in UNIT_NAMES.get(str(code), ()):
            raise InputError(
                source,
                path,
                f"a valueQuantity whose unit {unit!r} is not its code {code!r}; send the unit meant",
            )
    return code if code is not None else unit


def procedure_of(response: dict[str, Any], source: str = "QuestionnaireResponse") -> str | None:
    """The policy (or "all") whose questionnaire a response answers, as every place that names
    one says it: its canonical (for an adaptive response, `#form`: the form it was derived
    from), each contained Questionnaire of llr-asp's (`derivedFrom`, `url`) and llr-asp's tag in
    `meta`; None when none says. Places that name two are refused: a form resumed under
    another procedure's canonical holds answers about another joint (an InputError)."""
    named: dict[str, str] = {}  # where -> the policy it names
    canonical = response.get("questionnaire")
    contained = response.get("contained")
    forms = [f for f in contained if isinstance(f, dict)] if isinstance(contained, list) else []
    if not (isinstance(canonical, str) and canonical.startswith("#")):
        named["questionnaire"] = policy_of(canonical) or ""
    for n, form in enumerate(forms):
        if form.get("resourceType") != "Questionnaire":
            continue
        derived = form.get("derivedFrom")
        for m, reference in enumerate(derived if isinstance(derived, list) else []):
            named[f"contained[{n}].derivedFrom[{m}]"] = policy_of(reference) or ""
        named[f"contained[{n}].url"] = policy_of(form.get("url")) or ""
    meta = response.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    for n, tag in enumerate(tags if isinstance(tags, list) else []):
        if isinstance(tag, dict) and tag.get("system") == TAG and isinstance(tag.get("code"), str):
            named[f"meta.tag[{n}]"] = tag["code"]
    said = {where: policy for where, policy in named.items() if policy}
    if len(set(said.values())) > 1:
        places = "; ".join(f"{where} {policy}" for where, policy in said.items())
        raise InputError(
            source,
            next(iter(said)),
            f"names the questionnaires of two procedures ({places}): answers are about one joint; "
            "send the response of the procedure's own form",
        )
    return next(iter(said.values()), None)


PARTIAL_DATE = re.compile(r"[0-9]{4}(-[0-9]{2})?")
"""A FHIR dateTime given to the year or the month only."""
LEAP_SECOND = re.compile(r"(T23:59:)60(?=[.Z+-]|$)")
"""A leap second in a FHIR dateTime (its pattern allows 60), which Python's dates do not."""


def authored_at(response: dict[str, Any]) -> datetime.datetime | None:
    """When a response was authored (`date_time` of its `authored`)."""
    return date_time(response.get("authored"))


def date_time(text: object) -> datetime.datetime | None:
    """A FHIR dateTime as a moment (None: no date, what is no date, or a time more than AHEAD
    from now, which cannot be when anything was answered: a form dated years ahead would
    otherwise outrank a clinician's newest answers); a year or a month alone (FHIR's partial
    dateTime) is its first day, a leap second (`23:59:60`, which FHIR allows) the second before."""
    if not isinstance(text, str):
        return None
    if PARTIAL_DATE.fullmatch(text):
        text = (text + "-01-01")[:10]
    text = LEAP_SECOND.sub(r"\g<1>59", text)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=datetime.timezone.utc)
    return when if when <= clock.now() + AHEAD else None


AHEAD = datetime.timedelta(days=1)
"""How far ahead of this server's clock a form's `authored` may be and still be its date (an
EHR's clock, a time zone written wrongly); later is no date."""


def stale(when: datetime.datetime | None, rules: RuleSet) -> bool:
    """Whether answers given at `when` were given more than answers_current_for/1 months before
    today: no longer confirmed for this referral (None, no date: never)."""
    months = rules.answers_current_for
    if months is None or when is None:
        return False
    day = clock.now().date()
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    limit = datetime.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
    return when.date() < limit
