"""A CDS Hooks call read strictly: every element used is checked for its shape first (a context
that is a list, an `entry` that is a string, a `coding` that is a number: 422 naming where).

- Which orders count: every draft order for `order-sign`; for `order-select`, only the newly
  selected ones (`context.selections`, `ResourceType/id`): an order drafted earlier in the
  session does not get its card again on every selection.
- A prefetch `patient` that is not a Patient resource (a Bundle holding one) is not read: not
  sent, so the sex is not compared, and the card says so; never counted as compared.
- The prefetch must be about the hook's own patient (`context.patientId`): a Patient or a
  QuestionnaireResponse about someone else is never decided from (the card says the prefetch
  is inconsistent).
- An OperationOutcome in the prefetch is the EHR saying it could not fetch that data: nothing
  is decided from the rest (the card says what could not be fetched), never "no answers".
- The answers are the most recently `authored` QuestionnaireResponse among all those of the
  `answers` and `adaptiveAnswers` prefetch keys, whatever order the server returned them in,
  and only among those for this policy's questionnaire (or the shared `all` one, whose answers
  about a joint may be another joint's: to confirm, kind `shared`; a form whose
  date cannot be told is as new as the newest, never the older: the card says so; a form
  still in progress is not yet an answer: set aside, and the card says so), read from
  what each response holds (its canonical, or its adaptive form's `derivedFrom`; no tag is
  needed): answers given for another procedure (pain, function, radiology of another joint)
  are never used, and responses to other questionnaires are passed over.
- Each value keeps its source (`core/sources.py`): the answers (an answer the form filler
  pre-filled from the EHR and no one changed, DTR's information-origin `auto`, is the EHR's,
  to confirm), and the Patient's sex for clinical use or administrative gender. Two sources
  that disagree make a conflict (unknown for the decision, named on the card), never one
  silently winning.
- `fhirServer` with `fhirAuthorization` (a bearer token) lets the service fetch what the
  prefetch lacks itself (`prefetch.py`); the token is never logged or echoed.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from ..core.documents import (
    FINAL,
    RETRACTED,
    authored_at,
    is_response,
    patient_document,
    prefilled,
    procedure_of,
    shaped,
    stale,
    validate,
)
from ..core.errors import InputError
from ..core.patient import nested
from ..core.ruleset import Policy, RuleSet, Value
from ..core.sources import Conflict, Stated, answers, settle

HOOKS = ("order-select", "order-sign")
GENDER = {"male": "male", "female": "female"}  # Patient.gender "other" and "unknown" leave sex unknown
OLDEST = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
CLINICAL_SEX = "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse"
CLINICAL_SEX_SYSTEM = "http://terminology.hl7.org/CodeSystem/sex-parameter-for-clinical-use"
"""The code system of the sex parameter for clinical use: a coding in any other is not read."""
CLINICAL_SEX_CODES = {"female-typical": "female", "male-typical": "male"}  # "specified": see the comment
SOURCE = "request body"
ANSWER_KEYS = ("answers", "adaptiveAnswers")
KEYS = ("patient", *ANSWER_KEYS)
"""The prefetch keys of every service (their templates: `prefetch.py`)."""


@dataclass(frozen=True)
class Access:
    """The EHR's FHIR server and the bearer token it gave for it."""

    server: str
    token: str

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"Access(server={self.server!r}, token=<{len(self.token)} characters>)"


@dataclass(frozen=True)
class Call:
    ordered: bool  # a (newly selected) draft order is for one of the policy's procedure codes
    prefetched: bool  # the prefetch has any of the service's keys (null included: no data)
    record: dict[str, Any]  # the patient record the prefetch gives
    elsewhere: str | None = None  # what in the prefetch is about another patient, if anything
    unfetched: str | None = None  # what the EHR said it could not fetch (an OperationOutcome)
    unreadable: str | None = None  # why the answers found cannot be read (a form contradicting itself)
    absent: tuple[str, ...] = ()  # the service's prefetch keys the call does not have
    access: Access | None = None  # fhirServer and fhirAuthorization, when both are given
    patient_id: str = ""
    conflicts: tuple[Conflict, ...] = ()  # fields whose sources disagree
    filled: tuple[Stated, ...] = ()  # values the EHR's record gave that no answer did
    authored: str | None = None  # when the answers decided from were given
    undated: bool = False  # a form decided from gives no readable date (as new as the newest)
    draft: bool = False  # a form for this procedure still in progress, not older than the newest finished
    answered: bool = False  # whether answers for this procedure were found
    other: str | None = None  # a procedure whose answers were found and set aside, if any
    order: str | None = None  # the order the card is about (`ServiceRequest/<id>`), when it has an id
    patient_given: bool = True  # the prefetch holds the Patient (its sex compared with the answers)
    patient_sex: bool = True  # and the Patient gives a sex to compare (gender other or unknown: none)
    not_patient: str | None = None  # the resourceType sent as `patient` that is no Patient (not read)


def _procedure(response: dict[str, Any], source: str) -> str | None:
    """The policy (or "all") whose questionnaire `response` answers; None for none, and for a
    response whose canonical, contained form and tag name two procedures (set aside, and said
    where it is newer than this procedure's own answers: it may hold another joint's)."""
    try:
        return procedure_of(response, source)
    except InputError:
        return None


def _family(named: str | None, rules: RuleSet) -> str | None:
    """The policy family of the questionnaire a response names (`all` and None as they are)."""
    policy = rules.policies.get(named) if named is not None else None
    return policy.family if policy is not None else named


def read_call(call: Any, rules: RuleSet, policy: Policy, served: str | None = None) -> Call:
    """The call's parts that matter for `policy`, each checked for its shape; `answers` the
    hook the service answers (`served`; None: either)."""
    _shaped(call, dict, "(document)", "a CDS Hooks request object")
    hook = call.get("hook")
    if hook not in HOOKS:
        raise InputError(SOURCE, "hook", f"expected one of {', '.join(HOOKS)}")
    if served is not None and hook != served:
        raise InputError(
            SOURCE, "hook", f"expected {served}: this service answers {served}; {hook} has its own service"
        )
    context = _shaped(call.get("context"), dict, "context", "an object (the hook's context)")
    patient_id = _shaped(context.get("patientId"), str, "context.patientId", "the patient's id, a string")
    editions = rules.families[policy.family]  # an order for the procedure of any edition
    order = _for_procedure(context, tuple(c for e in editions for c in rules.procedures.get(e.id, ())), hook)
    ordered = order is not None
    prefetch = _shaped(call.get("prefetch") or {}, dict, "prefetch", "an object of prefetched resources")
    absent = tuple(key for key in KEYS if key not in prefetch)
    base = Call(
        ordered,
        False,
        {},
        absent=absent,
        access=_access(call),
        patient_id=patient_id,
        order=order or None,
    )
    if not ordered or len(absent) == len(KEYS):
        return base
    patient = prefetch.get("patient")
    not_patient = None
    if patient is not None:
        _shaped(patient, dict, "prefetch.patient", "a Patient resource")
    failed = [key for key in KEYS if _failed(prefetch.get(key), key)]
    if patient is not None and not failed and patient.get("resourceType") != "Patient":
        # (a Bundle holding a Patient, or any other resource): not read, so not sent, and said
        kind = patient.get("resourceType")
        not_patient, patient = (f"`{kind}`" if isinstance(kind, str) and kind else "no resource"), None
    if failed:
        return dataclasses.replace(base, prefetched=True, unfetched=" and ".join(failed))
    responses: list[tuple[str, dict[str, Any]]] = []
    for key in ANSWER_KEYS:  # a response both searches found is one response
        responses += [(key, r) for r in _answers(prefetch.get(key), key) if all(r != s for _, s in responses)]
    elsewhere = _elsewhere(patient_id, patient, [r for _, r in responses])
    if elsewhere is not None:
        return dataclasses.replace(base, prefetched=True, elsewhere=elsewhere)
    valid = [(key, r) for key, r in responses if r.get("status") not in RETRACTED]
    # the newest finished form first, then drafts (set aside below: never decided from)
    # (a form whose date cannot be told ranks below the dated ones of its kind, yet counts as new
    # as the newest: `_as_new`; never silently older than any)
    valid.sort(
        key=lambda found: (found[1].get("status") in FINAL, authored_at(found[1]) or OLDEST), reverse=True
    )
    # the family whose questionnaire each answers (any edition's form serves every edition)
    procedures = [_family(_procedure(r, f"prefetch.{key}"), rules) for key, r in valid]
    ours = [found for found, named in zip(valid, procedures) if named in ("all", policy.family)]
    # a form still in progress is not yet an answer: set aside, and said where it may be newer
    drafts = [r for _, r in ours if r.get("status") not in FINAL]
    ours = [found for found in ours if found[1].get("status") in FINAL]
    latest = ours[0] if ours else None
    draft = any(latest is None or not _older(d, latest[1]) for d in drafts)
    # answers to another policy's questions given since this one's newest (the form filled for
    # the wrong joint), or llr-asp's questions answered on a form that names none of llr-asp's,
    # are said to be set aside; older ones, and responses to other questionnaires (the searches
    # find every recent response: a PHQ-9 asks none of llr-asp's questions), are passed over
    cut = valid.index(latest) if latest else len(valid)
    newer = [
        (r, named) for n, ((_, r), named) in enumerate(zip(valid, procedures)) if n < cut or not _dated(r)
    ]
    other = next(
        (named or "unnamed" for r, named in newer if named not in ("all", policy.family) and _asks(r, rules)),
        None,
    )
    authored = latest[1].get("authored") if latest is not None else None
    try:
        record, settled = _record(patient, ours, rules, policy)
    except InputError as error:  # said on a card: an order never goes unchecked in silence
        return dataclasses.replace(base, prefetched=True, unreadable=str(error))
    record.setdefault("id", patient_id)  # no Patient in the prefetch: the hook's patient, by its id
    return dataclasses.replace(
        base,
        prefetched=True,
        record=record,
        conflicts=tuple(c for c in settled.conflicts if c.field in policy.fields()),  # what this policy asks
        filled=tuple(s for s in settled.filled if s.field in policy.fields()),  # what this policy asks
        authored=authored if isinstance(authored, str) and latest is not None and _dated(latest[1]) else None,
        undated=any(not _dated(r) and _as_new(r, ours[0][1]) for _, r in ours),
        patient_given=isinstance(patient, dict),
        patient_sex=isinstance(patient, dict)
        and (GENDER.get(str(patient.get("gender"))) is not None or bool(_clinical_sex(patient))),
        not_patient=not_patient,
        draft=draft,
        answered=latest is not None,
        other=other,
    )


def _shaped(value: Any, kind: type, where: str, what: str) -> Any:
    return shaped(value, kind, SOURCE, where, what)


def _for_procedure(context: dict[str, Any], codes: tuple[tuple[str, str, str], ...], hook: str) -> str | None:
    """The first draft order the hook is about that is a ServiceRequest for one of the declared
    codes (`ServiceRequest/<id>`, or "" for one without an id; None for none): any draft order
    for order-sign; a newly selected one for order-select (every draft order when a client
    sends no `selections`)."""
    wanted = {(system, code) for system, code, _ in codes}
    selections = context.get("selections") if hook == "order-select" else None
    if selections is not None:
        for n, selected in enumerate(_shaped(selections, list, "context.selections", "a list of order ids")):
            _shaped(selected, str, f"context.selections[{n}]", "an order id such as ServiceRequest/123")
    where = "context.draftOrders"
    orders = _shaped(context.get("draftOrders") or {}, dict, where, "a Bundle of draft orders")
    found: str | None = None
    for n, entry in enumerate(_shaped(orders.get("entry") or [], list, f"{where}.entry", "a list")):
        at = f"{where}.entry[{n}]"
        resource = _shaped(
            _shaped(entry, dict, at, "an object").get("resource"), dict, f"{at}.resource", "a resource"
        )
        if resource.get("resourceType") != "ServiceRequest":
            continue
        at += ".resource.code"
        code = _shaped(resource.get("code") or {}, dict, at, "a CodeableConcept object")
        chosen = selections is None or f"ServiceRequest/{resource.get('id')}" in selections
        for m, coding in enumerate(
            _shaped(code.get("coding") or [], list, f"{at}.coding", "a list of Codings")
        ):
            _shaped(coding, dict, f"{at}.coding[{m}]", "a Coding object")
            if found is None and chosen and (coding.get("system"), coding.get("code")) in wanted:
                named = resource.get("id")
                found = f"ServiceRequest/{named}" if isinstance(named, str) and named else ""
    return found


def _access(call: dict[str, Any]) -> Access | None:
    """fhirServer and the bearer token of fhirAuthorization, when the call gives both."""
    authorization = call.get("fhirAuthorization")
    if authorization is None:
        return None
    _shaped(authorization, dict, "fhirAuthorization", "an object with the access_token")
    server = _shaped(
        call.get("fhirServer"), str, "fhirServer", "the FHIR server's URL (with fhirAuthorization)"
    )
    token = _shaped(authorization.get("access_token"), str, "fhirAuthorization.access_token", "a string")
    kind = _shaped(authorization.get("token_type"), str, "fhirAuthorization.token_type", '"Bearer"')
    if kind.lower() != "bearer" or not token:
        raise InputError(SOURCE, "fhirAuthorization", "expected a Bearer access_token")
    return Access(server, token)


def _failed(resource: Any, key: str) -> bool:
    """Whether the prefetch's `key` is the EHR's OperationOutcome of a failed fetch: bare, or an
    error or fatal issue among a searchset's entries."""
    if not isinstance(resource, dict):
        return False
    if resource.get("resourceType") == "OperationOutcome":
        return True
    if resource.get("resourceType") != "Bundle":
        return False
    entries = _shaped(resource.get("entry") or [], list, f"prefetch.{key}.entry", "a list")
    for entry in entries:
        found = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(found, dict) and found.get("resourceType") == "OperationOutcome":
            issues = found.get("issue")
            severities = (
                [i.get("severity") for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []
            )
            if "error" in severities or "fatal" in severities:
                return True
    return False


def _answers(answers: Any, key: str) -> list[dict[str, Any]]:
    """The QuestionnaireResponses of a prefetch key: bare, or every one in a Bundle (a server
    may ignore `_sort` and `_count`: the newest is chosen by what is inside them)."""
    if answers is None:
        return []
    _shaped(answers, dict, f"prefetch.{key}", "a QuestionnaireResponse or a Bundle of them")
    if answers.get("resourceType") == "Bundle":
        entries = _shaped(answers.get("entry") or [], list, f"prefetch.{key}.entry", "a list")
        found = [e.get("resource") for e in entries if isinstance(e, dict)]
        return [r for r in found if is_response(r)]
    return [answers] if is_response(answers) else []


def _asks(response: dict[str, Any], rules: RuleSet) -> bool:
    """Whether a response answers any of llr-asp's questions (an item's linkId is a field)."""
    items = response.get("item")
    level = list(items) if isinstance(items, list) else []
    while level:
        entry = level.pop()
        if isinstance(entry, dict):
            if entry.get("linkId") in rules.fields:
                return True
            nested_items = entry.get("item")
            level += nested_items if isinstance(nested_items, list) else []
    return False


def _as_new(response: dict[str, Any], newest: dict[str, Any]) -> bool:
    """Whether `response` is as new as the newest: as finished, and authored at the same time, or
    on the same day where either gives a date only, or either's date cannot be told (none given,
    or one that is no date: it may be the newest). Two such forms both give every answer: where
    they disagree it is a conflict, never the server's order deciding."""
    if (response.get("status") in FINAL) != (newest.get("status") in FINAL):
        return False
    one, other = authored_at(response), authored_at(newest)
    if one is None or other is None or one == other:
        return True
    dated = [r.get("authored") for r in (response, newest)]
    # the coarsest date given (a year, a month or a day: FHIR's partial dates) decides alike
    coarse = min((len(d) for d in dated if isinstance(d, str) and "T" not in d), default=None)
    return coarse is not None and one.date().isoformat()[:coarse] == other.date().isoformat()[:coarse]


def _older(response: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether `response` was certainly authored before `other` (both readably dated)."""
    one, two = authored_at(response), authored_at(other)
    return one is not None and two is not None and one < two


def _dated(response: dict[str, Any]) -> bool:
    """Whether a response says when it was authored, readably."""
    return authored_at(response) is not None


def _elsewhere(
    patient_id: str, patient: dict[str, Any] | None, responses: list[dict[str, Any]]
) -> str | None:
    """What in the prefetch names a patient other than the hook's, if anything."""
    if patient is not None and patient.get("id") not in (None, patient_id):
        return "the Patient"
    for response in responses:
        subject = response.get("subject")
        if subject is not None:
            reference = subject.get("reference") if isinstance(subject, dict) else None
            ours = f"Patient/{patient_id}"  # relative, or the end of an absolute URL
            if isinstance(reference, str) and "/_history/" in reference:  # a version of the Patient
                reference = reference[: reference.index("/_history/")]
            if not isinstance(reference, str) or not (reference == ours or reference.endswith("/" + ours)):
                return "the QuestionnaireResponse"
    return None


def _record(
    patient: dict[str, Any] | None,
    responses: list[tuple[str, dict[str, Any]]],
    rules: RuleSet,
    policy: Policy,
) -> tuple[dict[str, Any], Any]:
    """The patient record the prefetch gives, and how its sources settled (`core/sources.py`):
    every answer of the newest QuestionnaireResponse (with the prefetch key it came in); what
    older responses answered that no clinician answered on the newest form of this procedure
    (left blank, pre-filled from the EHR, answered only on the form for every procedure, which
    may describe another joint), named, to confirm (`earlier`), the most recent older answer of
    each; a fact the newest answers otherwise than as the fact may change (changes/2: a sex never
    does; the sources disagree); and the Patient's sex for clinical use, else its
    administrative gender.
    Answers older than answers_current_for/1 months are to confirm (`earlier`) however new. A
    form whose date cannot be told gives its answers as the newest's, hides no older answer and
    is as old as the newest dated form. Anything else is unknown."""
    statements: list[Stated] = []
    newest = responses[0][1] if responses else None
    read = []
    for index, (key, response) in enumerate(responses):  # newest first
        given = validate(patient_document(response, rules, f"prefetch.{key}"), rules, f"prefetch.{key}")
        every = index == 0 or (newest is not None and _as_new(response, newest))  # a tie: both count
        shared = _family(procedure_of(response), rules) == "all"
        read.append((response, given.values, every, prefilled(response, rules), shared))
    # what a clinician answered now (a value the form filler prefilled from the EHR is not), and
    # what of it this procedure's own form answered
    answered_now: dict[str, list[Value]] = {}  # field -> the values the newest forms answer
    own_now: set[str] = set()
    for response, values, every, auto, shared in read:
        # (a form whose date cannot be told gives its answers as the newest's, but hides no older
        # form's: it may be the oldest, so where they differ it is a conflict)
        for f, v in values.items() if every and _dated(response) else ():
            if f not in auto:
                answered_now.setdefault(f, []).append(v)
                own_now |= set() if shared else {f}

    def heard(field: str, value: Value) -> bool:
        """Whether an older form's answer is heard beside the newest's (as `earlier`, to confirm):
        wherever no clinician answered it on the newest form of this procedure (left blank,
        pre-filled from the EHR and left as it was, or answered only on the form for every
        procedure, which may describe another joint); and a fact the newest answers otherwise
        than as the fact may change (changes/2: then they disagree)."""
        declared = rules.fields[field]
        if declared.kind == "fact" and field in answered_now:
            return not all(declared.supersedes(later, value) for later in answered_now[field])
        return field not in own_now

    newest_dated = next((r for r, *_ in read if _dated(r)), {})  # ({}: none dated, none stale)
    dated_for: dict[str, dict[str, Any]] = {}  # field -> the newest dated form that answers it
    for response, values, _, _, shared in read:  # (of a joint: this procedure's own forms)
        for f in values if _dated(response) else ():
            if not (shared and rules.fields[f].kind != "fact"):
                dated_for.setdefault(f, response)
    older: set[str] = set()  # the fields a clinician answered on an older form of this procedure
    for response, values, every, auto, shared in read:
        if not every:  # of the older forms, the most recent clinician's answer of each (every one
            # of a fact), and every value pre-filled or shared on the way (they hide none of them)
            values = {f: v for f, v in values.items() if heard(f, v)}
            values = {f: v for f, v in values.items() if f not in older or rules.fields[f].kind == "fact"}
            older |= {f for f in values if f not in auto and not (shared and rules.fields[f].kind != "fact")}
        authored = response.get("authored")
        date = authored if isinstance(authored, str) and _dated(response) else None
        mine = {f: v for f, v in values.items() if f not in auto}
        # the form for every procedure: its answers about a joint (pain, function, radiology) may
        # describe another joint than this order's: to confirm (`shared`); its facts about the
        # patient (kind/2 `fact`: the sex) are the clinician's answers
        joint = {f: v for f, v in mine.items() if shared and rules.fields[f].kind != "fact"}
        mine = {f: v for f, v in mine.items() if f not in joint}
        # a form whose date cannot be told is no newer than the newest dated form that answers the
        # same question (else than the newest dated form): as old as it
        dated = {f: response if _dated(response) else dated_for.get(f, newest_dated) for f in mine}
        current = {f: v for f, v in mine.items() if every and not stale(authored_at(dated[f]), rules)}
        statements += answers(current, f"the {policy.reference} answers", date, "answer")
        old = {f: v for f, v in mine.items() if f not in current}
        statements += answers(old, f"the {policy.reference} answers", date, "earlier")
        statements += answers(joint, "the form for every procedure", date, "shared")
        # prefilled from the EHR and left as it was: the EHR's value, to confirm (asp/sources.lp)
        theirs = {f: v for f, v in values.items() if f in auto}
        statements += answers(
            theirs, f"the {policy.reference} answers pre-filled from the EHR", date, "prefilled"
        )
    subject: str | None = None
    if patient is not None and patient.get("resourceType") == "Patient" and "sex" in rules.fields:
        for clinical in _clinical_sex(patient):  # "" for one that is not simply female or male
            statements.append(Stated("sex", clinical or None, "the EHR (sex for clinical use)", "clinical"))
        sex = GENDER.get(str(patient.get("gender")))
        if sex is not None:
            statements.append(Stated("sex", sex, "the EHR (administrative gender)", "administrative"))
        if isinstance(patient.get("id"), str):
            subject = patient["id"]
    settled = settle(statements)
    record: dict[str, Any] = nested(settled.values)
    if subject is not None:
        record["id"] = subject
    return record, settled


def _clinical_sex(patient: dict[str, Any], today: datetime.date | None = None) -> list[str]:
    """The Patient's sex parameter for clinical use (FHIR R5's element, R4's extension): each
    value its entries current `today` give (no period, or a period that holds it), female or
    male where female- or male-typical, "" where given otherwise ("specified" points to a
    comment a clinician must read, "unknown"; or coded in another code system): the
    administrative gender is then not heard, and an answer beside it is in doubt (asked,
    asp/sources.lp). Two current entries that disagree, or two codes of one entry that do, are
    two values: a conflict. None current (one that has ended says nothing of today): the
    administrative gender is heard."""
    day = (today or datetime.date.today()).isoformat()
    extensions = patient.get("extension")
    current: set[str] = set()
    for extension in extensions if isinstance(extensions, list) else []:
        if not isinstance(extension, dict) or extension.get("url") != CLINICAL_SEX:
            continue
        parts = extension.get("extension")
        nested_parts = [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []
        period = next((p.get("valuePeriod") for p in nested_parts if p.get("url") == "period"), None)
        if not _holds(period, day):
            continue
        codes = [
            coding.get("code")
            for part in (extension, *nested_parts)
            for concept in [part.get("valueCodeableConcept")]
            if isinstance(concept, dict) and isinstance(concept.get("coding"), list)
            for coding in concept["coding"]
            if isinstance(coding, dict) and coding.get("system", CLINICAL_SEX_SYSTEM) == CLINICAL_SEX_SYSTEM
        ]
        # every code of the entry is heard: two that disagree (male- and female-typical) are two
        # values, a conflict, never the first code deciding; one that is not simply female- or
        # male-typical is given, but as no simple value ("")
        heard = {CLINICAL_SEX_CODES.get(c, "") if isinstance(c, str) else "" for c in codes}
        current.update(heard or {""})
    return sorted(current)


def _holds(period: Any, day: str) -> bool:
    """Whether a FHIR Period (None: none given) holds on `day` ("YYYY-MM-DD"): started by then and
    not ended before it, each end compared at its own precision (an end of "2026" holds all of
    2026). A period that is not an object, or whose dates are not text, is taken to hold."""
    if not isinstance(period, dict):
        return True
    start, end = period.get("start"), period.get("end")
    started = not isinstance(start, str) or start[:10] <= day[: len(start[:10])]
    ended = isinstance(end, str) and end[:10] < day[: len(end[:10])]
    return started and not ended


FEEDBACK_OUTCOMES = ("accepted", "overridden")


def read_feedback(body: Any) -> list[dict[str, Any]]:
    """The feedback entries of a feedback call, each checked as the specification's model has
    them: the card's `uuid`, `accepted` (with the accepted suggestions) or `overridden`, and
    when (`outcomeTimestamp`)."""
    _shaped(body, dict, "(document)", 'a feedback object {"feedback": [...]}')
    entries = _shaped(body.get("feedback"), list, "feedback", "a list of feedback entries")
    for n, entry in enumerate(entries):
        at = f"feedback[{n}]"
        _shaped(entry, dict, at, "a feedback object")
        card = _shaped(entry.get("card"), str, f"{at}.card", "the card's uuid")
        try:
            uuid.UUID(card)
        except ValueError:
            raise InputError(SOURCE, f"{at}.card", "expected the uuid of a card") from None
        if entry.get("outcome") not in FEEDBACK_OUTCOMES:
            raise InputError(SOURCE, f"{at}.outcome", f"expected one of {', '.join(FEEDBACK_OUTCOMES)}")
        _shaped(entry.get("outcomeTimestamp"), str, f"{at}.outcomeTimestamp", "an ISO 8601 time")
        if entry["outcome"] == "accepted":
            _shaped(entry.get("acceptedSuggestions"), list, f"{at}.acceptedSuggestions", "a list (accepted)")
    return entries  # type: ignore[no-any-return]
