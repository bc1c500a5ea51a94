"""FHIR R4: the Questionnaire derived from the field declarations, and a QuestionnaireResponse
read as a patient record (DESIGN §8). Plain dicts in FHIR's JSON form; no FHIR library at run
time (the tests validate every resource against the R4B models of fhir.resources, and against
the SDC 4.0.0 invariants llr-asp claims: sdc-2, sdc-3, sdc-base-1, sdc-base-2).

An item's `linkId` is the field's dotted path. Grades are `choice` items whose options carry
their rank (SDC 4's itemWeight extension, which replaced ordinalValue); numbers are `decimal`
or `integer` items with the declared range and, where the rules declare one, a UCUM unit.

A Questionnaire's canonical is `urn:llr-asp:questionnaire:<policy id, or "all">`, its version
`<llr-asp's version>+rules.<the rule set's hash>`: semantic versioning (the versionAlgorithm
sdc-2 asks for), whose build part names the rules without claiming an order between them. A
canonical may carry a version (`…|<version>`), as DTR sends it.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core import clock
from ..core.documents import ADAPTIVE as ADAPTIVE_NAME
from ..core.documents import ANSWERED, INFORMATION_ORIGIN, PREFIX, value_system
from ..core.patient import Patient
from ..core.ruleset import Field, Policy, RuleSet, Value
from ..views.wording import headline, not_for_the_patient, urgent_note

if TYPE_CHECKING:
    from ..core.decision import Decision

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
VERSION_ALGORITHM = "http://hl7.org/fhir/StructureDefinition/artifact-versionAlgorithm"
ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
ADAPT_SEARCH = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adapt-srch"
"""SDC's profile of an adaptive Questionnaire as a search finds it: no items, questionnaireAdaptive."""
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
    "date": "date",
}


def questionnaire_url(policy: str) -> str:
    return f"{PREFIX}{policy}"


def adaptive_url(policy: str) -> str:
    """The canonical of a policy's adaptive Questionnaire (or "all"'s)."""
    return questionnaire_url(f"{policy}{ADAPTIVE_NAME}")


@functools.cache
def release() -> str:
    try:
        return importlib.metadata.version("llr-asp")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0.0.0"


def questionnaire_version(rules: RuleSet) -> str:
    """The version of every Questionnaire of `rules` (semver: the build part is the rules' hash)."""
    return f"{release()}+rules.{rules.digest[:16]}"


def canonical(rules: RuleSet, policy: str, adaptive: bool = False) -> str:
    """The version-specific canonical of a policy's Questionnaire (or "all"), or of its
    adaptive one."""
    url = adaptive_url(policy) if adaptive else questionnaire_url(policy)
    return f"{url}|{questionnaire_version(rules)}"


def questionnaire(rules: RuleSet, policy: Policy | None = None, name: str | None = None) -> dict[str, Any]:
    """The full Questionnaire of `policy` (its fields, in declaration order), or of every field:
    a plain form, not marked adaptive (a form filler shows it whole; `llr-asp fhir
    questionnaire` prints it). Named (`name`: id and canonical) by the policy's family unless
    told otherwise: the answers to any edition's form serve every edition of the family."""
    used = policy.fields() if policy is not None else frozenset(rules.fields)
    name = name or (policy.family if policy is not None else "all")
    return {
        **_header(rules, policy, name, SDC),
        "description": "The questions llr-asp asks to decide funding; any may be left unanswered (unknown).",
        "item": [
            item(field, rules.caveats(path, [policy] if policy else None))
            for path, field in rules.fields.items()
            if path in used
        ],
    }


def adaptive_questionnaire(
    rules: RuleSet, policy: Policy | None, service: str, name: str | None = None
) -> dict[str, Any]:
    """The adaptive Questionnaire of `policy` (or "all") as SDC's adaptive search finds it
    (sdc-questionnaire-adapt-srch): no items (item 0..0: the questions come one at a time from
    `$next-question`), marked adaptive with `service`, the FHIR base that answers it
    (questionnaireAdaptive, the URL the DTR app posts to). Its own id and canonical: the full
    form's + ADAPTIVE (`hip-resurfacing-adaptive`); answers to it are answers for the policy."""
    name = f"{name or (policy.family if policy is not None else 'all')}{ADAPTIVE_NAME}"
    header = _header(rules, policy, name, ADAPT_SEARCH)
    return {
        **header,
        "extension": [*header["extension"], {"url": ADAPTIVE, "valueUrl": service}],
        "description": "The questions llr-asp asks to decide funding, one at a time: each next question "
        "(the one that can still change the decision) from $next-question, until the decision is made.",
    }


def _header(rules: RuleSet, policy: Policy | None, name: str, profile: str) -> dict[str, Any]:
    """What the full and the adaptive Questionnaire of a policy share: all but the items."""
    title = f"{policy.title} ({policy.reference})" if policy is not None else "LLR ICB commissioning policies"
    return {
        "resourceType": "Questionnaire",
        "id": name,
        "meta": {"profile": [profile]},
        "extension": [
            {
                "url": VERSION_ALGORITHM,
                "valueCoding": {"system": "http://hl7.org/fhir/version-algorithm", "code": "semver"},
            }
        ],
        "url": questionnaire_url(name),
        "version": questionnaire_version(rules),
        "name": "".join(part.capitalize() for part in name.replace("_", "-").split("-")),
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        **({"publisher": policy.commissioner} if policy is not None else {}),
    }


def item(field: Field, caveats: Sequence[str] = ()) -> dict[str, Any]:
    """The Questionnaire item that asks `field`; what the policy's text leaves open for the answer
    (caveat/3) as its help text (SDC: a display item with the `help` item control)."""
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
                **(
                    {"extension": [{"url": ITEM_WEIGHT, "valueDecimal": rank}]}
                    if field.type == "grade"
                    else {}
                ),
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
    if caveats:
        entry["item"] = [
            {
                "linkId": f"{field.path}.help",
                "type": "display",
                "text": " ".join(caveats),
                "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [HELP]}}],
            }
        ]
    return entry


ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
HELP = {"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "help", "display": "Help-Button"}


DETERMINATION = "urn:llr-asp:determination"
ROBUSTNESS = "urn:llr-asp:robustness"
RECEIPT = "urn:llr-asp:receipt"
EDITION = "urn:llr-asp:edition"
"""Whether a determination holds (coded beside it, so that an EHR that stores the code stores
the doubt too): `robust`, every clinical reading and every source agree; `contested`, a reading
of the policy text would decide otherwise; `disputed`, it turns on sources that disagree."""
WORDS = {
    "eligible": "meets",
    "not_eligible": "does not meet",
    "undetermined": "cannot yet be decided against",
}


EXTENSIONS = {
    "determination": (
        "Coding",
        DETERMINATION,
        "Determination",
        "The funding decision llr-asp adopted for one policy",
        "The decision llr-asp adopted on a commissioning policy for the patient these answers are "
        "about: its code (system urn:llr-asp:decision: eligible, not_eligible or undetermined), "
        "its display the verdict in words, qualified when a reading of the policy would decide "
        "otherwise. One per policy decided.",
    ),
    "robustness": (
        "Coding",
        ROBUSTNESS,
        "Robustness",
        "Whether the determination beside it holds",
        "Whether the determination beside it holds (system urn:llr-asp:robustness): robust, every "
        "clinical reading of the policy and every source agree; contested, a reading of the "
        "policy text would decide otherwise; disputed, it turns on sources that disagree; "
        "unconfirmed, it rests on a value no one confirmed for this referral (the EHR's "
        "administrative record, an older form) and would differ without it. One per "
        "policy decided, coded so that an EHR that stores the decision stores the doubt too.",
    ),
    "edition": (
        "Coding",
        EDITION,
        "Edition",
        "The edition of the policy that decided",
        "The edition of a commissioning policy the determination beside it was decided under "
        "(system urn:llr-asp:edition): its code the edition's policy id, its version the sha256 "
        "of the rule set, its display the family and the days it is in force. One per policy "
        "decided.",
    ),
    "receipt": (
        "string",
        RECEIPT,
        "Receipt",
        "The signed receipt of a decision",
        "The decision's receipt: a compact JWS (EdDSA) signed by the service's key (public keys at "
        "/.well-known/jwks.json), whose claims name the rules, the decision and a hash of the "
        "answers, never a patient id or an answer (`llr-asp receipt verify`). One per policy "
        "decided.",
    ),
}
"""The extensions llr-asp puts on resources, by the id of their StructureDefinition. Their
canonicals stay URNs: a canonical names the definition the same way in every deployment (a URL
under the service's base would differ from one ICB's service to the next), and responses
stored already carry them; each definition is served at `/fhir/StructureDefinition/<id>`."""


def structure_definition(name: str) -> dict[str, Any]:
    """The StructureDefinition of an extension llr-asp puts on a QuestionnaireResponse: one
    value of its type (a Coding, or the receipt's string), no nested extensions."""
    kind, url, title, short, definition = EXTENSIONS[name]
    return {
        "resourceType": "StructureDefinition",
        "id": name,
        "url": url,
        "version": release(),
        "name": title,
        "title": f"llr-asp {title.lower()}",
        "status": "active",
        "publisher": "llr-asp",
        "description": definition,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "QuestionnaireResponse"}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Extension", "path": "Extension", "short": short, "definition": definition},
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "min": 1,
                    "type": [{"code": kind}],
                },
            ]
        },
    }


def decision_response(patient: Patient, decisions: list[Decision], rules: RuleSet) -> dict[str, Any]:
    """The patient's answers and the decisions as a QuestionnaireResponse to the Questionnaire
    it names (`llr-asp explain --format fhir`): for one policy, only the answers its
    Questionnaire asks (a hip response holds no knee compartments, a knee response no sex: a
    validator finds every linkId in the form); read back, it is the same patient for that
    policy, sources and all: a value no clinician answered (pre-filled from the EHR, the EHR's
    record, an older form: `patient.filled`) is written as DTR writes a pre-filled answer no one
    changed (information-origin `auto`), so read back or stored it is still a value to confirm,
    never the clinician's answer. No `authored`: when the answers were given is not known
    here (the time of this run would make old answers look new). `completed`: a form still in
    progress is never a patient here (`core.documents.validate` refuses it)."""
    asked = decisions[0].policy.fields() if len(decisions) == 1 else frozenset(rules.fields)
    unanswered = {s.field for s in patient.filled}  # every kind: a stored form never over-claims
    items = []
    for path, field in rules.fields.items():
        if path not in patient.answered or path not in asked:
            continue
        entry = _answered_item(field, patient.values.get(path))
        if "answer" in entry and path in unanswered:
            entry["extension"] = [PREFILLED]
        items.append(entry)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": patient.id,
        # answers given on the form for every procedure stay so: a card reads them as to confirm
        # for its joint, never as this procedure's own answers
        "questionnaire": questionnaire_url(
            decisions[0].policy.family if len(decisions) == 1 and not patient.shared else "all"
        ),
        "status": "completed",
        "extension": [e for d in decisions for e in determination(d)],
        "item": items,
    }


PREFILLED = {"url": INFORMATION_ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
"""Da Vinci DTR's mark of an answer pre-populated from the EHR that no one changed: what a value
no clinician answered is written with, so that read back it is still one to confirm."""


def said(decision: Decision) -> str:
    """The decision in words for a form's closing item: `ARP 55: the patient meets the funding
    criteria`, qualified when a reading of the text would decide otherwise."""
    words = f"{decision.policy.reference}: the patient {WORDS[decision.decision]} the funding criteria"
    instead = not_for_the_patient(decision)
    if instead:  # the reason before all else: no one waits out more care for it
        words += f": the procedure is not for this patient. {instead}"
    if decision.contested or decision.disputed:
        words += f" on the adopted reading only ({headline(decision)})"
    elif not decision.robust:  # resting on a value no one confirmed
        words += f" ({headline(decision)})"
    return words


def determination(decision: Decision) -> list[dict[str, Any]]:
    """The determination extensions: the adopted decision as its code (the display says the
    verdict as every other output does, qualified when it is not robust), and beside it whether
    it holds, coded (ROBUSTNESS), and the edition that decided (EDITION)."""
    holds = (
        "disputed"
        if decision.disputed
        else "contested"
        if decision.contested
        else "unconfirmed"
        if decision.under_unconfirmed
        else "robust"
    )
    # the urgent line first, as on every other surface: a system that keeps only this resource
    # keeps "ask the ICB now" with the verdict
    words = " ".join(filter(None, [urgent_note(decision), headline(decision)]))
    return [
        {
            "url": DETERMINATION,
            "valueCoding": {
                "system": "urn:llr-asp:decision",
                "code": decision.decision,
                "display": f"{decision.policy.reference}: {words}",
            },
        },
        {
            "url": ROBUSTNESS,
            "valueCoding": {
                "system": ROBUSTNESS,
                "code": holds,
                "display": f"{decision.policy.reference}: {holds}",
            },
        },
        {
            "url": EDITION,
            "valueCoding": {
                "system": EDITION,
                "version": decision.rules,
                "code": decision.policy.id,
                "display": f"{decision.policy.reference}: {decision.policy.edition_words()}",
            },
        },
    ]


def _value(field: Field, value: Value) -> dict[str, Any]:
    if field.type == "bool":
        return {"valueBoolean": value}
    if field.type in ("grade", "choice"):
        return {"valueCoding": {"system": value_system(field.path), "code": value, "display": value}}
    if field.type == "date":
        return {"valueDate": value}
    return {"valueInteger": value} if field.type == "integer" else {"valueDecimal": value}


def with_answer(response: dict[str, Any], field: Field, value: Value | None) -> dict[str, Any]:
    """A copy of a QuestionnaireResponse with the clinician's answer to `field` (None: asked, not
    known) in place of any it held, dated (ANSWERED: the form's `authored` says when its other
    answers were given): the page's interview goes on from a pasted form, and the form's other
    answers (their sources, its date) stay as they were."""
    updated = without_answer(response, field.path)
    answered = _answered_item(field, value)
    if value is not None:  # when it was given: the form's `authored` may be years before
        answered["extension"] = [
            {"url": ANSWERED, "valueDateTime": clock.now().isoformat(timespec="seconds")}
        ]
    updated["item"] = [*updated.get("item", []), answered]
    return updated


def _answered_item(field: Field, value: Value | None) -> dict[str, Any]:
    """A response's item for `field`: its answer, or none (asked, not known)."""
    entry: dict[str, Any] = {"linkId": field.path, "text": field.question}
    if value is not None:
        entry["answer"] = [_value(field, value)]
    return entry


def without_answer(response: dict[str, Any], path: str) -> dict[str, Any]:
    """A copy of a QuestionnaireResponse without its items for `path`, wherever they are nested
    (under a group, or under another item's answer)."""

    def kept(items: Any) -> Any:
        if not isinstance(items, list):
            return items
        out = []
        for entry in items:
            if isinstance(entry, dict) and entry.get("linkId") == path:
                continue
            if isinstance(entry, dict):
                entry = {**entry, **({"item": kept(entry["item"])} if "item" in entry else {})}
                if isinstance(entry.get("answer"), list):
                    entry["answer"] = [
                        {**a, "item": kept(a["item"])} if isinstance(a, dict) and "item" in a else a
                        for a in entry["answer"]
                    ]
            out.append(entry)
        return out

    updated = copy.deepcopy(response)
    if "item" in updated:
        updated["item"] = kept(updated["item"])
    return updated
