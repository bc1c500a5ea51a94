"""SDC's adaptive form: `$next-question` (SDC 4.0.0, and Da Vinci DTR's use of it).

The QuestionnaireResponse comes in bare or in a Parameters resource's `questionnaire-response`
parameter, and goes back with its contained adaptive Questionnaire (sdc-questionnaire-adapt:
no url or version of its own, `derivedFrom` the policy's Questionnaire) one question longer, or
`completed` with the decision in a closing display item and the determination extension.

The policy is the one the adaptive Questionnaire derives from (`derivedFrom`, else the
response's `questionnaire`): `urn:llr-asp:questionnaire:<policy id, or "all">`, with or without
a version (`…|<version>`: DTR sends version-specific canonicals). Answers are read against the
rules being served, whatever version the form was started under. An item of the response
without an answer was asked and is unknown: it is not asked again.

Every response carries `authored` (when its answers were last put together, SDC's
QuestionnaireResponse 1..1) and the tag `urn:llr-asp:questionnaire|<policy>` (for a FHIR server's
own searches; the CDS Hooks prefetch needs no tag: it reads which policy a response answers
from its contained form's `derivedFrom`, `web/hookcall.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import clock
from ..core.decision import Decision
from ..core.documents import (
    ANSWERED,
    FINAL,
    TAG,
    answer_entries,
    date_time,
    is_response,
    policy_of,
    shaped,
    validate,
    value_system,
)
from ..core.errors import InputError
from ..core.patient import Patient
from ..core.ruleset import RuleSet
from ..views.wording import urgent_note
from .fhir import (
    ADAPTIVE,
    DETERMINATION,
    EDITION,
    ITEM_TYPE,
    RECEIPT,
    ROBUSTNESS,
    VERSION_ALGORITHM,
    canonical,
    determination,
    item,
    said,
    without_answer,
)

if TYPE_CHECKING:
    from ..engines.interview import Interviewer, Next

ADAPT = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adapt"
ADAPTED_RESPONSE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"
MAX_DEPTH = 64
"""The deepest nesting of a FHIR resource read (a QuestionnaireResponse's groups are a few
levels): deeper is refused before anything else, since the answer echoes the resource."""


def _depth(node: Any, limit: int) -> int:
    """How deeply `node` nests (lists and objects), counted no further than `limit` + 1."""
    deepest, level = 0, [node]
    while level and deepest <= limit:
        deepest += 1
        level = [
            child
            for parent in level
            if isinstance(parent, (dict, list))
            for child in (parent.values() if isinstance(parent, dict) else parent)
            if isinstance(child, (dict, list))
        ]
    return deepest


def adaptive_response(parameters: Any, source: str = "request body") -> dict[str, Any]:
    """The QuestionnaireResponse of a $next-question call: the bare resource, or the one in a
    Parameters resource's `questionnaire-response` parameter."""
    if _depth(parameters, MAX_DEPTH) > MAX_DEPTH:
        raise InputError(
            source, "", f"nested over {MAX_DEPTH} levels deep; no FHIR resource llr-asp reads is"
        )
    if isinstance(parameters, dict) and parameters.get("resourceType") == "Parameters":
        found = [
            p.get("resource")
            for p in shaped(
                parameters.get("parameter", []), list, source, "parameter", "a list of parameters"
            )
            if isinstance(p, dict) and p.get("name") == "questionnaire-response"
        ]
        if len(found) != 1:
            raise InputError(source, "parameter", 'expected one parameter "questionnaire-response"')
        parameters = found[0]
    if not is_response(parameters):
        raise InputError(
            source, "resourceType", "expected a QuestionnaireResponse (or Parameters holding one)"
        )
    return parameters


def next_question(
    interviewer: Interviewer,
    resource: dict[str, Any],
    source: str = "request body",
    service: str | None = None,
    sign: Callable[[Decision, Patient], str] | None = None,
) -> dict[str, Any]:
    """SDC's $next-question: the response back, its contained adaptive Questionnaire one item
    longer (the question `next` chooses), or completed with the decision when none is left.
    `service` is the FHIR base URL answering $next-question, named in a new adaptive form;
    `sign` makes a completed decision's receipt (an extension RECEIPT on the response)."""
    rules = interviewer.rules
    response = dict(resource)
    posted = response.get("status")
    others = shaped(response.get("contained", []), list, source, "contained", "a list of resources")
    form = _form(response, others, source)
    adapted = _adopted(form) if form is not None else _adaptive(response, rules, service)
    derived = shaped(adapted.get("derivedFrom", []), list, source, "contained.derivedFrom", "a list of URLs")
    base = (derived or [response.get("questionnaire") or canonical(rules, "all")])[0]
    policy = policy_of(base)
    if policy is None:
        raise InputError(
            source,
            "contained.derivedFrom",
            "not a questionnaire of llr-asp (urn:llr-asp:questionnaire:<policy>)",
        )
    items = shaped(adapted.get("item", []), list, source, "contained.item", "a list of items")
    asked = [i.get("linkId") for i in items if isinstance(i, dict) and i.get("type") != "display"]
    just = asked[-1] if asked and posted not in FINAL else None  # the question answered now, if any
    if posted not in FINAL and date_time(response.get("authored")) is not None:
        # a step of a form in progress: the answer just given is given now; the answers the form
        # held keep the date they were given (ANSWERED, the form's `authored` until now), so that
        # a form of 2024 answered one question today is not current, at this step or the next
        response["item"] = _dated(response.get("item", []), str(response["authored"]), just)
        response["authored"] = now()
    # every answer checked against its item before anything is decided; an answer to a question
    # the form does not hold yet (a form filler's prefilled start) puts that question in the form
    given = _checked(response, rules, policy, source)
    prefilled = [link for link in rules.fields if link in given and link not in asked]  # the form's order
    items = [*items, *(item(rules.fields[link]) for link in prefilled)]
    asked += prefilled
    extensions = shaped(response.get("extension", []), list, source, "extension", "a list of extensions")
    for n, extension in enumerate(extensions):
        shaped(extension, dict, source, f"extension[{n}]", "an Extension object")
    patient = validate_response(response, asked, rules, source, base)
    steps = interviewer.next(patient, rules.select(policy, rules.date_of(patient.values)))  # else today
    step = next((s for s in steps if s.question is not None), None)
    adapted["item"] = [i for i in items if not _closing(i)]  # a completed form posted again: said anew
    if step is not None and step.question is not None:
        urgent = _urgent(steps)
        if urgent:  # said before the next question: a form left half-way still said it
            adapted["item"].append({"linkId": "urgent", "type": "display", "text": "⚠ " + " ".join(urgent)})
        field = step.question.field
        if field in asked:  # a value the form holds, to confirm: asked afresh, once, last, its
            held = adapted["item"]  # pre-filled answer taken away (kept, `auto` is asked for ever)
            adapted["item"] = [i for i in held if not (isinstance(i, dict) and i.get("linkId") == field)]
            response.update(without_answer(response, field))
        adapted["item"].append(item(rules.fields[field], step.question.caveats))
        response["status"] = "in-progress"
    else:
        words = " ".join([*_urgent(steps), "; ".join(said(s.decision) for s in steps)])
        adapted["item"].append({"linkId": "decision", "type": "display", "text": words})
        response["status"] = "completed"
        response["extension"] = [
            *[e for e in extensions if e.get("url") not in (DETERMINATION, ROBUSTNESS, EDITION, RECEIPT)],
            *(e for s in steps for e in determination(s.decision)),
            *(
                [{"url": RECEIPT, "valueString": sign(s.decision, patient)} for s in steps]
                if sign is not None
                else []
            ),
        ]
    response["contained"] = [adapted, *[r for r in others if r is not form]]
    response["questionnaire"] = f"#{adapted['id']}"
    if posted not in FINAL or not isinstance(response.get("authored"), str):
        # a step of the form in progress puts its answers together now; a finished form posted
        # again keeps its date (restamped now, an old form would outrank a clinician's newer one
        # and its answers be said to be given today)
        response["authored"] = now()
    response["meta"] = _meta(response.get("meta"), policy, source)
    return {key: value for key, value in response.items() if value != []}  # FHIR JSON has no empty arrays


def _dated(items: Any, when: str, just: str | None) -> Any:
    """`items` with each answer that does not say when it was given (ANSWERED, a date not ahead
    of today: one that cannot be its date is dropped) dated `when`, the form's `authored` before
    it is put together anew, but for the question answered now (`just`)."""
    if not isinstance(items, list):
        return items
    out = []
    for entry in items:
        if isinstance(entry, dict):
            entry = dict(entry)
            found = entry.get("extension")
            own: list[Any] = found if isinstance(found, list) else []
            said = [e for e in own if isinstance(e, dict) and e.get("url") == ANSWERED]
            if (
                entry.get("answer")
                and entry.get("linkId") != just
                and not any(date_time(e.get("valueDateTime")) for e in said)
            ):
                own = [e for e in own if e not in said]  # (a date ahead: the form's date instead)
                entry["extension"] = [*own, {"url": ANSWERED, "valueDateTime": when}]
            if "item" in entry:
                entry["item"] = _dated(entry["item"], when, just)
        out.append(entry)
    return out


VALUE_OF = {
    "boolean": "valueBoolean",
    "choice": "valueCoding",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
}


def _urgent(steps: list[Next]) -> list[str]:
    """The urgent routes' notes, each named by its policy where the form asks for several (a
    hip's "do not refer for it" beside a knee's "ask the ICB now")."""
    named = len(steps) > 1
    return [
        f"{s.decision.policy.reference}: {note}" if named else note
        for s in steps
        if (note := urgent_note(s.decision))
    ]


def _checked(response: dict[str, Any], rules: RuleSet, policy: str, source: str) -> list[str]:
    """The linkIds the response answers (groups opened), in its order, each answer checked
    against the item that asks it as the Questionnaire serves it (SDC: an answer must be one
    its item allows): a question of the policy's form, answered as the item's type
    (valueInteger for an integer item, valueDecimal for a decimal one; nothing else beside
    it), a coding in the item's own code system (a coding that names none is read by its
    code) with one of its codes. Anything else is refused naming the item (400); the value
    itself (a boolean that is a string, an integer out of range) is judged as every record is."""
    ours = rules.select(policy)
    fields = frozenset().union(*(p.fields() for p in ours)) if policy != "all" else frozenset(rules.fields)
    items = shaped(response.get("item", []), list, source, "item", "a list of QuestionnaireResponse items")
    found = []
    for (where, entry), answers in answer_entries(items, "item", rules.fields):
        link = entry.get("linkId") if isinstance(entry, dict) else None
        if not answers:
            continue
        where = f"{where} (linkId {link})"
        if not isinstance(link, str) or link not in fields:
            raise InputError(source, where, f"not an item of the {policy} Questionnaire")
        field = rules.fields[link]
        kind = ITEM_TYPE[field.type]
        for m, answer in enumerate(answers):
            at = f"{where}.answer[{m}]"
            values = [key for key in answer if key.startswith("value")] if isinstance(answer, dict) else []
            coding = answer.get("valueCoding") if isinstance(answer, dict) else None
            if kind == "choice" and (
                values != ["valueCoding"]
                or not isinstance(coding, dict)
                or coding.get("system", value_system(link)) != value_system(link)
                or coding.get("code") not in field.values
            ):
                raise InputError(
                    source,
                    at,
                    f"expected a valueCoding with a code of {', '.join(field.values)} "
                    f"(system {value_system(link)})",
                )
            if kind != "choice" and values != [VALUE_OF[kind]]:
                raise InputError(source, at, f"expected {VALUE_OF[kind]} for this {kind} item")
        found.append(link)
    return found


def _adopted(form: dict[str, Any]) -> dict[str, Any]:
    """The contained form as the adaptive form of this response: a Questionnaire sent back as it
    was served (DTR's first call: with its own `url` and `version`) becomes one derived from
    that canonical (sdc-questionnaire-adapt: no url or version of its own), its questions not
    yet asked: the served form's items are every question it may ask, not questions asked (an
    answer already given puts its question back)."""
    adopted = dict(form)
    url = adopted.pop("url", None)
    version = adopted.pop("version", None)
    if policy_of(url) is not None:
        if not adopted.get("derivedFrom"):
            adopted["derivedFrom"] = [f"{url}|{version}" if isinstance(version, str) else url]
        adopted["meta"] = {"profile": [ADAPT]}
        adopted["item"] = []
        extensions = adopted.pop("extension", None)  # no version of its own, so no version algorithm
        if isinstance(extensions, list):
            kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == VERSION_ALGORITHM)]
            adopted.update({"extension": kept} if kept else {})  # FHIR JSON has no empty arrays
        elif extensions is not None:
            adopted["extension"] = extensions
    return adopted


def _closing(entry: Any) -> bool:
    """Whether an item of the adaptive form is one it says anew at each step: the urgent line,
    or the closing display item, the decision."""
    return (
        isinstance(entry, dict)
        and entry.get("linkId") in ("decision", "urgent")
        and entry.get("type") == "display"
    )


def _form(response: dict[str, Any], contained: list[Any], source: str) -> dict[str, Any] | None:
    """The adaptive Questionnaire the response already holds: the contained one its
    `questionnaire` names (`#id`), else the first contained Questionnaire; None if none is."""
    forms = [r for r in contained if isinstance(r, dict) and r.get("resourceType") == "Questionnaire"]
    named = response.get("questionnaire")
    if isinstance(named, str) and named.startswith("#"):
        found = next((f for f in forms if f.get("id") == named[1:]), None)
        if found is None:
            raise InputError(source, "questionnaire", f"{named} names no contained Questionnaire")
        return found
    if forms:
        shaped(
            forms[0].get("id"), str, source, "contained[Questionnaire].id", "the adaptive Questionnaire's id"
        )
        return forms[0]
    return None


def _adaptive(response: dict[str, Any], rules: RuleSet, service: str | None) -> dict[str, Any]:
    """A new adaptive Questionnaire (sdc-questionnaire-adapt) for a response that has none,
    derived from the version-specific canonical of the policy's adaptive Questionnaire (the
    response's own canonical, if it names one with a version)."""
    named = response.get("questionnaire")
    policy = policy_of(named) or "all"
    base = named if isinstance(named, str) and "|" in named else canonical(rules, policy, adaptive=True)
    marked = {"url": ADAPTIVE, **({"valueUrl": service} if service else {"valueBoolean": True})}
    return {
        "resourceType": "Questionnaire",
        "id": "adaptive",
        "meta": {"profile": [ADAPT]},
        "extension": [marked],
        "derivedFrom": [base],
        "status": "active",
        "subjectType": ["Patient"],
        "item": [],
    }


def _meta(meta: Any, policy: str, source: str) -> dict[str, Any]:
    """The response's meta with the adaptive profile and the policy's tag added."""
    meta = dict(shaped(meta or {}, dict, source, "meta", "a Meta object"))
    profiles = shaped(meta.get("profile", []), list, source, "meta.profile", "a list of URLs")
    tags = shaped(meta.get("tag", []), list, source, "meta.tag", "a list of Codings")
    tag = {"system": TAG, "code": policy}
    return {
        **meta,
        "profile": [*profiles, *([ADAPTED_RESPONSE] if ADAPTED_RESPONSE not in profiles else [])],
        "tag": [*[t for t in tags if not (isinstance(t, dict) and t.get("system") == TAG)], tag],
    }


def now() -> str:
    """The current time as a FHIR dateTime in UTC, to the millisecond."""
    stamp = clock.now().isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def validate_response(
    response: dict[str, Any], asked: list[Any], rules: RuleSet, source: str, questionnaire: str
) -> Patient:
    """The patient of an adaptive response: its answers, and every question the adaptive
    Questionnaire asked that the response leaves unanswered, as asked and unknown; the answers
    are to `questionnaire`, the policy's form the adaptive one derives from."""
    items = list(
        shaped(response.get("item", []), list, source, "item", "a list of QuestionnaireResponse items")
    )
    answered = {  # groups opened: a question answered inside a group is answered
        entry["linkId"]
        for (_, entry), _answers in answer_entries(items, "item", rules.fields)
        if isinstance(entry, dict) and isinstance(entry.get("linkId"), str)
    }
    items += [{"linkId": link} for link in asked if isinstance(link, str) and link not in answered]
    # a form in progress is the adaptive form's own working state: read, never refused as a draft
    resource = {**{k: v for k, v in response.items() if k != "contained"}, "item": items}
    resource["questionnaire"] = questionnaire
    return validate(resource, rules, source, drafts=True)
