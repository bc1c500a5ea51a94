"""A CDS Hooks call read strictly: every element used is checked for its shape first (a context
that is a list, an `entry` that is a string, a `coding` that is a number: 422 naming where).

- Which orders count: every draft order for `order-sign`; for `order-select`, only the newly
  selected ones (`context.selections`, `ResourceType/id`): an order drafted earlier in the
  session does not get its card again on every selection.
- The prefetch must be about the hook's own patient (`context.patientId`): a Patient or a
  QuestionnaireResponse about someone else is never decided from (the card says the prefetch
  is inconsistent).
- An OperationOutcome in the prefetch is the EHR saying it could not fetch that data: nothing
  is decided from the rest (the card says what could not be fetched), never "no answers".
- The answers are the most recently authored QuestionnaireResponse of the `answers` (by the
  Questionnaire's canonical) and `adaptiveAnswers` (by the adaptive form's tag) prefetch keys.
- `fhirServer` with `fhirAuthorization` (a bearer token) lets the service fetch what the
  prefetch lacks itself (`prefetch.py`); the token is never logged or echoed.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from ..core.documents import is_response, patient_document, shaped
from ..core.errors import InputError
from ..core.patient import nested
from ..core.ruleset import Policy, RuleSet

HOOKS = ("order-select", "order-sign")
GENDER = {"male": "male", "female": "female"}  # Patient.gender "other" and "unknown" leave sex unknown
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
    absent: tuple[str, ...] = ()  # the service's prefetch keys the call does not have
    access: Access | None = None  # fhirServer and fhirAuthorization, when both are given
    patient_id: str = ""


def read_call(call: Any, rules: RuleSet, policy: Policy) -> Call:
    """The call's parts that matter for `policy`, each checked for its shape."""
    _shaped(call, dict, "(document)", "a CDS Hooks request object")
    hook = call.get("hook")
    if hook not in HOOKS:
        raise InputError(SOURCE, "hook", f"expected one of {', '.join(HOOKS)}")
    context = _shaped(call.get("context"), dict, "context", "an object (the hook's context)")
    patient_id = _shaped(context.get("patientId"), str, "context.patientId", "the patient's id, a string")
    ordered = _for_procedure(context, rules.procedures.get(policy.id, ()), hook)
    prefetch = _shaped(call.get("prefetch") or {}, dict, "prefetch", "an object of prefetched resources")
    absent = tuple(key for key in KEYS if key not in prefetch)
    base = Call(ordered, False, {}, absent=absent, access=_access(call), patient_id=patient_id)
    if not ordered or len(absent) == len(KEYS):
        return base
    patient = prefetch.get("patient")
    if patient is not None:
        _shaped(patient, dict, "prefetch.patient", "a Patient resource")
    failed = [key for key in KEYS if _failed(prefetch.get(key), key)]
    if failed:
        return dataclasses.replace(base, prefetched=True, unfetched=" and ".join(failed))
    responses = [(key, r) for key in ANSWER_KEYS if (r := _answers(prefetch.get(key), key)) is not None]
    elsewhere = _elsewhere(patient_id, patient, [r for _, r in responses])
    if elsewhere is not None:
        return dataclasses.replace(base, prefetched=True, elsewhere=elsewhere)
    latest = max(responses, key=lambda found: _authored(found[1]), default=None)
    return dataclasses.replace(base, prefetched=True, record=_record(patient, latest, rules))


def _shaped(value: Any, kind: type, where: str, what: str) -> Any:
    return shaped(value, kind, SOURCE, where, what)


def _for_procedure(context: dict[str, Any], codes: tuple[tuple[str, str, str], ...], hook: str) -> bool:
    """Whether a draft order the hook is about is a ServiceRequest for one of the declared codes:
    any draft order for order-sign; a newly selected one for order-select (every draft order
    when a client sends no `selections`)."""
    wanted = {(system, code) for system, code, _ in codes}
    selections = context.get("selections") if hook == "order-select" else None
    if selections is not None:
        for n, selected in enumerate(_shaped(selections, list, "context.selections", "a list of order ids")):
            _shaped(selected, str, f"context.selections[{n}]", "an order id such as ServiceRequest/123")
    where = "context.draftOrders"
    orders = _shaped(context.get("draftOrders") or {}, dict, where, "a Bundle of draft orders")
    found = False
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
            found = found or (chosen and (coding.get("system"), coding.get("code")) in wanted)
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


def _answers(answers: Any, key: str) -> dict[str, Any] | None:
    """The QuestionnaireResponse of a prefetch key: bare, or the first in a Bundle."""
    if answers is None:
        return None
    _shaped(answers, dict, f"prefetch.{key}", "a QuestionnaireResponse or a Bundle of one")
    if answers.get("resourceType") == "Bundle":
        entries = _shaped(answers.get("entry") or [], list, f"prefetch.{key}.entry", "a list")
        found = [e.get("resource") for e in entries if isinstance(e, dict)]
        answers = next((r for r in found if is_response(r)), None)
    return answers if is_response(answers) else None


def _authored(response: dict[str, Any]) -> datetime.datetime:
    """When a response was authored (the oldest possible time if it does not say)."""
    oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    text = response.get("authored")
    if not isinstance(text, str):
        return oldest
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return oldest
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.timezone.utc)


def _elsewhere(
    patient_id: str, patient: dict[str, Any] | None, responses: list[dict[str, Any]]
) -> str | None:
    """What in the prefetch names a patient other than the hook's, if anything."""
    if patient is not None and patient.get("id") not in (None, patient_id):
        return "the Patient"
    for answers in responses:
        subject = answers.get("subject")
        if subject is not None:
            reference = subject.get("reference") if isinstance(subject, dict) else None
            ours = f"Patient/{patient_id}"  # relative, or the end of an absolute URL
            if not isinstance(reference, str) or not (reference == ours or reference.endswith("/" + ours)):
                return "the QuestionnaireResponse"
    return None


def _record(
    patient: dict[str, Any] | None, answers: tuple[str, dict[str, Any]] | None, rules: RuleSet
) -> dict[str, Any]:
    """The patient record the prefetch gives: answers from the QuestionnaireResponse (with the
    prefetch key it came in), sex from Patient.gender; anything else is unknown."""
    document = patient_document(answers[1], rules, f"prefetch.{answers[0]}") if answers is not None else {}
    if patient is not None and patient.get("resourceType") == "Patient":
        sex = GENDER.get(str(patient.get("gender")))
        if sex is not None and "sex" in rules.fields:
            document = {**document, **nested({"sex": sex})}
        if isinstance(patient.get("id"), str):
            document["id"] = patient["id"]
    return document


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
