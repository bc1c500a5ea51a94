"""The cards of the CDS Hooks services: one per call.

Every card has its own `uuid` (a random UUID: the specification's unique identifier of a card,
which feedback names), no null or empty element (the specification prohibits them), and its
extension keys namespaced `llr-asp.` (as Da Vinci CRD names its `davinci-crd.` keys):

- `llr-asp.decision`: the adopted decision (eligible, not_eligible, undetermined);
- `llr-asp.robust`: whether every clinical reading of the policy and every source agree, the
  decision rests on no value no one confirmed (the administrative gender, an older form's, a
  pre-filled answer), every answer search the service declares was seen (an absent prefetch
  key not fetched: forms not seen may change it), and no newer form is still in progress (the
  receipt's `robust` is the decision's from the answers it hashes);
- `llr-asp.possible`: the decisions some combination of the readings, a disputed field's
  values or the unconfirmed values left unknown reach;
- `llr-asp.filled`: values only the EHR, an older form or the form for every procedure (its
  answers about a joint, which may be another joint's) gave, each with its source and date;
- `llr-asp.edition`: the edition that decided (policy, family, in_force_from, rules);
- `llr-asp.missing`, `llr-asp.to-settle`: the answers still needed (only when there are any);
- `llr-asp.conflicts`: fields whose sources disagree (the answers and the EHR's record), each
  with every value and its source (only when there are any): such a field is unknown for the
  decision, and a decision that turns on it is never robust;
- `llr-asp.answers-authored`: when the answers decided from were given;
- `llr-asp.questionnaire`: the policy's adaptive Questionnaire (`<policy>-adaptive`: no items;
  an SDC form filler asks it through `$next-question`), for the EHR to open its form filler on.

Its first link (`absolute`) opens the clinicians' page (a page, never raw JSON). Where the
deployment names the EHR's SMART form filler (`--dtr-launch-url`: a Da Vinci DTR app) a second
link (`smart`) launches it, its `appContext` as DTR reads it: a JSON string naming the policy's
adaptive Questionnaire (`questionnaire`, a list of version-specific canonicals) and the order
(`order`). The page link is the same for every card: the page asks its own questions.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ..core.decision import Decision
from ..core.documents import ADAPTIVE
from ..core.ruleset import Policy, RuleSet
from ..core.urgency import care_steps, route_doubts, unconfirmed_sources, urgent_route
from ..formats.fhir import canonical
from ..views.markdown import decision_markdown
from ..views.wording import lower_first, source_words

NAMESPACE = "llr-asp."


@dataclass(frozen=True)
class Found:
    """What the call's data held beside the decision: whether answers for this procedure were
    found and when they were given, another procedure's answers set aside, and prefetch keys
    the EHR's FHIR server could not give."""

    answered: bool = True
    authored: str | None = None
    other: str | None = None
    unreached: str | None = None
    order: str | None = None  # the order the card is about, `ServiceRequest/<id>`
    patient_given: bool = True  # the EHR's Patient was in the call (its sex compared with the answers)
    undated: bool = False  # a form decided from gives no readable date (taken as new as the newest)
    not_patient: str | None = None  # what the call sent as its Patient that is not one (not read)
    unseen: tuple[str, ...] = ()  # answer keys declared, absent and not fetched: forms not seen
    draft: bool = False  # a form still in progress set aside (the only one, or newer than the newest)
    shared: bool = False  # answers about a joint from the form for every procedure (`all`): to confirm
    patient_sex: bool = True  # the Patient sent gives a sex to compare (gender other or unknown: none)


def card(
    decision: Decision, rules: RuleSet, base: str, found: Found = Found(), launch: str | None = None
) -> dict[str, Any]:
    """The card of a decision; `base` is the service's public URL, `launch` the SMART launch URL
    of the EHR's form filler (None: no `smart` link)."""
    policy = decision.policy
    summary, indicator = _summary(decision, rules, found)
    unchecked = _uncompared(found, policy)  # no EHR sex to compare with
    if (unchecked or found.unseen or found.draft) and indicator == "info":
        indicator = "warning"
    extension: dict[str, Any] = {
        f"{NAMESPACE}decision": decision.decision,
        # forms not seen, or a newer one still in progress, may change it
        f"{NAMESPACE}robust": decision.robust and not found.unseen and not found.draft,
        f"{NAMESPACE}possible": list(decision.possible),
        f"{NAMESPACE}missing": list(decision.missing),
        f"{NAMESPACE}to-settle": list(decision.to_settle),
        f"{NAMESPACE}conflicts": [_present(c.to_json()) for c in decision.conflicts],
        f"{NAMESPACE}filled": [_present({"field": s.field, **s.to_json()}) for s in decision.filled],
        f"{NAMESPACE}answers-authored": found.authored or [],
        f"{NAMESPACE}questionnaire": f"{base}/fhir/Questionnaire/{policy.family}{ADAPTIVE}",
        f"{NAMESPACE}edition": _present(policy.edition_json(decision.rules)),
    }
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "indicator": indicator,
        "detail": _found_words(found, rules, unchecked) + decision_markdown(decision, rules),
        "source": source(policy),
        "links": [
            {
                "label": f"Answer the {policy.reference} questions in llr-asp",
                "url": f"{base}/?policy={policy.family}",  # the procedure chosen; no patient data
                "type": "absolute",
            },
            *([smart_link(policy, rules, launch, found.order)] if launch is not None else []),
        ],
        "extension": {key: value for key, value in extension.items() if value != []},
    }


def smart_link(policy: Policy, rules: RuleSet, launch: str, order: str | None) -> dict[str, Any]:
    """The link that launches the EHR's SMART form filler on the policy's Questionnaire."""
    form = canonical(rules, policy.family, adaptive=True)
    context = {"questionnaire": [form], **({"order": order} if order else {})}
    return {
        "label": f"Answer the {policy.reference} questions in the EHR's form",
        "url": launch,
        "type": "smart",
        "appContext": json.dumps(context, separators=(",", ":")),
    }


def _present(element: Any) -> Any:
    """An element without its null members (CDS Hooks: "JSON elements SHALL NOT be null")."""
    if isinstance(element, dict):
        return {k: _present(v) for k, v in element.items() if v is not None}
    if isinstance(element, list):
        return [_present(v) for v in element]
    return element


def _found_words(found: Found, rules: RuleSet, unchecked: bool = False) -> str:
    """What the card says first of the data it was decided from (Markdown paragraphs)."""
    said = []
    if found.authored:
        said.append(f"Decided from the answers given on {found.authored[:10]}.")
    elif not found.answered and found.draft:
        said.append(
            "**The only answers to this procedure's questions are in a form still in progress:** a "
            "form still in progress is not yet an answer, so it was set aside and this card was "
            "decided from the record alone. Finish the form in the EHR, then order again."
        )
    elif not found.answered:
        said.append("No answers to this procedure's questions were found: decided from the record alone.")
    if found.answered and found.draft:
        said.append(
            "**A newer form for this procedure is still in progress:** it was set aside (a form "
            "still in progress is not yet an answer). If it changes these answers, finish it in the "
            "EHR, then order again."
        )
    if found.shared:
        said.append(
            "**These answers came from the form for every procedure** (llr-asp's `all` "
            "questionnaire), not this procedure's: its pain, function, radiology and care may "
            "describe another joint. Confirm they are about this joint before you rely on this "
            "card, or answer this procedure's own questions."
        )
    if found.undated:
        said.append(
            "**A form with these answers has no readable date** (its `authored` is missing, is no "
            "date, or is a date still to come): it was taken as being as new as the newest, so "
            "where forms disagree the answer is asked. Check when it was filled in."
        )
    if found.other is not None:
        other = rules.policies.get(found.other)
        if other is not None:
            name = f"{other.reference} ({other.title.replace('Policy for ', '')})"
            said.append(
                f"Answers given for {name} were set aside: answers about another procedure are never "
                "used for this one."
            )
        else:
            said.append(
                "Answers given on a form that does not name llr-asp's questionnaire for this procedure "
                "(or the shared one) were set aside: they may be about another joint. Answer this "
                "procedure's questions."
            )
    unseen = " and ".join(f"`{key}`" for key in found.unseen)
    if found.unreached:
        said.append(f"The EHR's FHIR server could not give `{found.unreached}`.")
    elif found.unseen:
        were = "were" if len(found.unseen) > 1 else "was"
        said.append(
            f"**The prefetch {unseen} {were} not sent:** absent, not empty, so the EHR did not "
            "search there, and no FHIR server was given to fetch from."
        )
    if found.unseen:
        said.append(
            f"What {unseen} would have found (a newer form, one from the EHR's form filler) was "
            "not seen: check the patient's forms in the EHR before you rely on this card."
        )
    if unchecked:
        sent = (
            f" (the prefetch's `patient` is {found.not_patient}, not a Patient)" if found.not_patient else ""
        )
        what = (
            f"The EHR's Patient record was not sent{sent}"
            if not found.patient_given
            else "The EHR's Patient record gives no sex to compare (its gender is other, unknown or absent)"
        )
        said.append(
            f"**{what}: the sex was not compared with the EHR's.** Check it there before you rely on it."
        )
    return "".join(f"{s}\n\n" for s in said)


def _uncompared(found: Found, policy: Policy) -> bool:
    """Whether the answered sex went uncompared with the EHR's: no Patient, or none it gives."""
    return (not found.patient_given or not found.patient_sex) and "sex" in policy.fields()


def _summary(decision: Decision, rules: RuleSet, found: Found = Found()) -> tuple[str, str]:
    """The card's summary (under 140 characters) and indicator: a decision that is not robust
    is a warning whose summary leads with "Contested" (after an urgent route's action, when the
    patient meets one), so a cut summary never loses either; a decision that turns on sources
    that disagree leads with them."""
    policy = decision.policy
    failed = [r for r in policy.requirements[policy.root].parts if r in decision.failed()]
    if decision.decision == "eligible":
        summary, indicator = f"Meets {policy.reference} criteria", "info"
        if decision.contested or decision.disputed:
            summary = f"Contested: meets {policy.reference} only on the adopted reading; the ICB must confirm"
            indicator = "warning"
    elif decision.decision == "not_eligible":
        reasons = ", ".join(f"{r} ({policy.requirements[r].label})" for r in failed)
        summary, indicator = f"Does not meet {policy.reference}: {reasons} not met", "warning"
        unsuitable = [r for r in failed if r in policy.unsuitable]
        if unsuitable:  # said first: no one waits out more care for a procedure not for the patient
            rest = [r for r in failed if r not in unsuitable]
            also = f"; also {', '.join(rest)} not met" if rest else ""
            first = f"{unsuitable[0]} ({policy.requirements[unsuitable[0]].label})"
            summary = f"Not for this patient ({policy.reference}): {first} not met{also}"
        if decision.contested or decision.disputed:
            other = "would fund" if "eligible" in decision.possible else "needs more answers"
            summary = f"Contested: another reading of {policy.reference} {other}; adopted: {reasons} not met"
    else:
        count = len(decision.missing)
        summary, indicator = f"{policy.reference}: {count} answer{'s' if count != 1 else ''} needed", "info"
        if not found.answered and found.draft:
            drafted = "the answers are in a form still in progress; finish it, then order again"
            summary = f"{policy.reference}: {drafted}"
        elif not found.answered:
            looked = "the EHR's answers could not be read" if found.unreached else "no answers found"
            if found.other is not None and not found.unreached:  # found, and set aside: said so
                whose = (
                    "another procedure's form"
                    if found.other in rules.policies
                    else "a form for another questionnaire"
                )
                looked, indicator = f"the answers found are on {whose}, set aside", "warning"
            if found.unseen and not found.unreached:
                looked += f", {' and '.join(found.unseen)} not sent"
            summary = f"{policy.reference}: {looked}; answer the {policy.reference} questions"
        if decision.contested:
            summary, indicator = f"Contested: {summary}; readings of the policy differ", "warning"
    if decision.disputed:
        fields = ", ".join(lower_first(rules.fields[c.field].name) for c in decision.disputed)
        summary, indicator = f"Sources disagree on {fields}: settle it first. {summary}", "warning"
    if found.draft and found.answered:
        summary = f"A newer form is still in progress. {summary}"
    if _uncompared(found, policy) and decision.decision != "undetermined":
        why = "no Patient record" if not found.patient_given else "its record gives none"
        summary = f"Sex not compared with the EHR's ({why}). {summary}"
    if found.unseen and found.answered:  # decided from some forms; others were not seen
        how = "fetched" if found.unreached else "sent"
        summary = f"{' and '.join(found.unseen)} not {how}: check the EHR's forms. {summary}"
    unconfirmed = decision.doubted
    if unconfirmed and decision.decision != "undetermined":  # it rests on data to confirm
        by_source: dict[str, list[str]] = {}
        for s in unconfirmed:
            by_source.setdefault(source_words(s), []).append(rules.fields[s.field].name)
        said = "; ".join(  # many from one source counted, so the verdict is never cut off
            f"{len(names)} answers from {source}"
            if len(names) > 2
            else f"{' and '.join(names)} from {source}"
            for source, names in by_source.items()
        )
        summary = f"{said}: confirm. {summary}"  # before the verdict: a cut summary keeps it
        indicator = "warning"
    urgent = urgent_route(decision)
    if urgent is not None and urgent[1] == "unsuitable":  # urgent all the same: for another procedure
        if route_doubts(decision, urgent[0].id):  # the urgency itself rests on values to confirm
            act = f"Urgent ({urgent[0].id}) on a value to confirm, but not this procedure: confirm it first"
        else:
            act = f"Urgent ({urgent[0].id}), but not this procedure: refer for the one indicated now"
        summary, indicator = f"{act}. {summary}", "warning"
    elif urgent is not None:  # the urgency first: a cut keeps it
        node, advice = urgent
        act = {
            "refer": "refer without delay",
            "ask": "ask the ICB now",
            "settle": "settle what is open now",
            "confirm": "confirm what the urgency rests on first"
            if _on_route_doubts(decision, node.id)
            else "confirm its facts and that the procedure suits first"
            if route_doubts(decision, node.id)
            else "confirm the procedure suits the patient first",
            "assess": "first " + "; ".join(lower_first(n.label) for n in care_steps(decision)),
            "refused": "refused on another requirement: the care indicated instead, now",
        }.get(advice, "find out now")
        shaky = advice == "refused" and bool(route_doubts(decision, node.id))  # the route's own facts
        if (decision.unconfirmed or shaky) and advice in ("refer", "refused"):  # the verdict rests on them
            act = f"first confirm the values below, then {act}"
        elif found.draft and found.answered and advice in ("refer", "refused"):  # it may change them
            act = f"read the newer form in progress first, then {act}"
        summary = f"{'Maybe urgent' if advice == 'find out' else 'Urgent'} ({node.id}): {act}. {summary}"
        indicator = "warning" if indicator == "info" and advice != "refer" else indicator
    if len(summary) >= 140:
        summary = summary[:138] + "…"
    return summary, indicator


def _on_route_doubts(decision: Decision, route: str) -> bool:
    """Whether 'confirm first' is about the urgent route's own facts (an older form's), the
    procedure's suitability being known and confirmed."""
    status = {n.id: n.status for n in decision.tree.walk()}
    suitability_open = any(status.get(r) == "unknown" for r in decision.policy.unsuitable)
    return bool(route_doubts(decision, route)) and not unconfirmed_sources(decision) and not suitability_open


def source(policy: Policy) -> dict[str, Any]:
    return {
        "label": f"NHS LLR ICB — {policy.reference} {policy.title.replace('Policy for ', '')}",
        "topic": {"system": "urn:llr-asp:policy", "code": policy.id, "display": policy.title},
    }


def inconsistent_card(policy: Policy, elsewhere: str) -> dict[str, Any]:
    """The card for a prefetch that may be about another patient (it names another, or names
    none by reference): nothing is decided from it."""
    return _not_checked(
        policy,
        "the prefetch may be about another patient",
        f"{elsewhere} in the prefetch does not name the patient of this order (context.patientId) "
        "by reference, so llr-asp did not decide from it. Check the record, then order again.",
    )


def unfetched_card(policy: Policy, keys: str) -> dict[str, Any]:
    """The card for a prefetch the EHR could not fetch (an OperationOutcome in its place), naming
    what it could not fetch: the Patient, or a search for the answers (whose newest form may be
    the one missing: nothing is decided from the others)."""
    what = "the patient's answers" if "patient" not in keys.split(" and ") else "the patient's record"
    return _not_checked(
        policy,
        f"the EHR could not fetch {what}",
        f"The EHR sent an OperationOutcome in place of the prefetch `{keys}`: it could not fetch "
        "that part of the record, so llr-asp decided nothing (the answers may exist, and what was "
        "fetched may not be the newest). Try again, or answer the questions in llr-asp.",
    )


def unreadable_card(policy: Policy, problem: str) -> dict[str, Any]:
    """The card for answers that cannot be read as they are (one form answering a question twice,
    differently; an answer in the wrong unit): nothing is decided from them."""
    return _not_checked(
        policy,
        "the answers cannot be read",
        f"{problem}. llr-asp decided nothing from these answers. Correct the form, then order "
        f"again, or answer the {policy.reference} questions in llr-asp.",
    )


def _not_checked(policy: Policy, why: str, detail: str) -> dict[str, Any]:
    """A warning that nothing was decided, and why (no decision, so no extension)."""
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"{policy.reference}: not checked, {why}",
        "indicator": "warning",
        "detail": detail,
        "source": source(policy),
    }
