"""A CDS Hooks call read strictly: every element used is checked for its shape first (a context
that is a list, an `entry` that is a string, a `coding` that is a number: 422 naming where), and
the prefetch must be about the hook's own patient (`context.patientId`): a Patient or a
QuestionnaireResponse about someone else is never decided from (the card says the prefetch is
inconsistent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..fhir import is_response, patient_document, shaped
from ..patient import nested
from ..ruleset import Policy, RuleSet

HOOKS = ("order-select", "order-sign")
GENDER = {"male": "male", "female": "female"}  # Patient.gender "other" and "unknown" leave sex unknown
SOURCE = "request body"


@dataclass(frozen=True)
class Call:
    ordered: bool  # a draft order is for one of the policy's procedure codes
    prefetched: bool  # the prefetch has a patient or answers
    record: dict[str, Any]  # the patient record the prefetch gives
    elsewhere: str | None  # what in the prefetch is about another patient, if anything


def read_call(call: Any, rules: RuleSet, policy: Policy) -> Call:
    """The call's parts that matter for `policy`, each checked for its shape."""
    _shaped(call, dict, "(document)", "a CDS Hooks request object")
    if call.get("hook") not in HOOKS:
        raise InputError(SOURCE, "hook", f"expected one of {', '.join(HOOKS)}")
    context = _shaped(call.get("context"), dict, "context", "an object (the hook's context)")
    patient_id = _shaped(context.get("patientId"), str, "context.patientId", "the patient's id, a string")
    ordered = _for_procedure(context, rules.procedures.get(policy.id, ()))
    prefetch = call.get("prefetch") or {}
    _shaped(prefetch, dict, "prefetch", "an object of prefetched resources")
    if not ordered or not (prefetch.get("patient") or prefetch.get("answers")):
        return Call(ordered, False, {}, None)
    patient = prefetch.get("patient")
    if patient is not None:
        _shaped(patient, dict, "prefetch.patient", "a Patient resource")
    answers = _answers(prefetch.get("answers"))
    elsewhere = _elsewhere(patient_id, patient, answers)
    if elsewhere is not None:
        return Call(ordered, True, {}, elsewhere)
    return Call(ordered, True, _record(patient, answers, rules), None)


def _shaped(value: Any, kind: type, where: str, what: str) -> Any:
    return shaped(value, kind, SOURCE, where, what)


def _for_procedure(context: dict[str, Any], codes: tuple[tuple[str, str, str], ...]) -> bool:
    """Whether a draft order of the call is a ServiceRequest for one of the declared codes."""
    wanted = {(system, code) for system, code, _ in codes}
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
        for m, coding in enumerate(
            _shaped(code.get("coding") or [], list, f"{at}.coding", "a list of Codings")
        ):
            _shaped(coding, dict, f"{at}.coding[{m}]", "a Coding object")
            found = found or (coding.get("system"), coding.get("code")) in wanted
    return found


def _answers(answers: Any) -> dict[str, Any] | None:
    """The QuestionnaireResponse of the prefetch: bare, or the first in a Bundle."""
    if answers is None:
        return None
    _shaped(answers, dict, "prefetch.answers", "a QuestionnaireResponse or a Bundle of one")
    if answers.get("resourceType") == "Bundle":
        entries = _shaped(answers.get("entry") or [], list, "prefetch.answers.entry", "a list")
        found = [e.get("resource") for e in entries if isinstance(e, dict)]
        answers = next((r for r in found if is_response(r)), None)
    return answers if is_response(answers) else None


def _elsewhere(patient_id: str, patient: dict[str, Any] | None, answers: dict[str, Any] | None) -> str | None:
    """What in the prefetch names a patient other than the hook's, if anything."""
    if patient is not None and patient.get("id") not in (None, patient_id):
        return "the Patient"
    subject = answers.get("subject") if answers is not None else None
    if subject is not None:
        reference = subject.get("reference") if isinstance(subject, dict) else None
        ours = f"Patient/{patient_id}"  # relative, or the end of an absolute URL
        if not isinstance(reference, str) or not (reference == ours or reference.endswith("/" + ours)):
            return "the QuestionnaireResponse"
    return None


def _record(patient: dict[str, Any] | None, answers: dict[str, Any] | None, rules: RuleSet) -> dict[str, Any]:
    """The patient record the prefetch gives: answers from the QuestionnaireResponse, sex from
    Patient.gender; anything else is unknown."""
    document = patient_document(answers, rules, "prefetch.answers") if answers is not None else {}
    if patient is not None and patient.get("resourceType") == "Patient":
        sex = GENDER.get(str(patient.get("gender")))
        if sex is not None and "sex" in rules.fields:
            document = {**document, **nested({"sex": sex})}
        if isinstance(patient.get("id"), str):
            document["id"] = patient["id"]
    return document


def inconsistent_card(policy: Policy, elsewhere: str) -> dict[str, Any]:
    """The card for a prefetch about another patient: nothing is decided from it."""
    return {
        "uuid": f"llr-asp-{policy.id}-inconsistent-prefetch",
        "summary": f"{policy.reference}: not checked, the prefetch is about another patient",
        "indicator": "warning",
        "detail": f"{elsewhere} in the prefetch is not the patient of this order (context.patientId), "
        "so llr-asp did not decide from it. Check the record, then order again.",
        "source": {
            "label": f"NHS LLR ICB — {policy.reference} {policy.title.replace('Policy for ', '')}",
            "topic": {"system": "urn:llr-asp:policy", "code": policy.id, "display": policy.title},
        },
    }
