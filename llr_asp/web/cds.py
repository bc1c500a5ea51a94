"""CDS Hooks: one service per policy, for `order-select` and `order-sign`, answering a draft
order for the policy's procedure with one card (DESIGN §8).

Which orders are for which policy is declared in the rules (`procedure/4`: code system, code,
display); an order that matches no declared code gets no card. The patient is read from the
prefetch: `patient` (Patient.gender gives sex) and `answers` (a QuestionnaireResponse, or a
Bundle of one, for the rest). Partial prefetch is not an error: the card says what is missing.

Every call, discovery included, carries `Authorization: Bearer <JWT>`, verified as the CDS
Hooks specification requires: alg ES384 or RS384 only, typ JWT, kid in the configured JWKS,
iss on the allow-list, aud the exact URL called, exp and iat, and a jti never seen before within
the token's lifetime. A refused call is 401 with nothing more said.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from ..decision import Decision
from ..errors import InputError
from ..fhir import DETERMINATION, is_response, patient_document
from ..markdown import decision_markdown
from ..patient import nested, validate
from .api import document, engines
from .engines import Engines
from .responses import JSON

router = APIRouter()
HOOKS = ("order-select", "order-sign")
ALGORITHMS = ["ES384", "RS384"]
ISSUERS_ENV, JWKS_ENV, NO_AUTH_ENV = "LLR_ASP_CDS_ISSUERS", "LLR_ASP_CDS_JWKS", "LLR_ASP_CDS_NO_AUTH"
GENDER = {"male": "male", "female": "female"}  # Patient.gender "other" and "unknown" leave sex unknown


class Unauthorized(Exception):
    """A CDS Hooks call whose token fails verification (the reason is not told to the caller)."""


@dataclass
class Authority:
    """Who may call: the allowed issuers, their keys (a JWKS file), and the jti seen so far."""

    issuers: frozenset[str]
    keys: dict[str, Any]  # kid -> public key
    enabled: bool = True
    seen: dict[str, float] = field(default_factory=dict)  # jti -> when it expires
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_environment(cls) -> Authority:
        if os.environ.get(NO_AUTH_ENV):
            return cls(frozenset(), {}, enabled=False)
        issuers = frozenset(i for i in os.environ.get(ISSUERS_ENV, "").split(",") if i)
        keys: dict[str, Any] = {}
        jwks = os.environ.get(JWKS_ENV)
        if jwks:
            import jwt

            for key in json.loads(Path(jwks).read_text())["keys"]:
                keys[key["kid"]] = jwt.PyJWK(key).key
        return cls(issuers, keys)

    def verify(self, authorization: str | None, audience: str) -> None:
        if not self.enabled:
            return
        import jwt

        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("no bearer token")
        token = authorization[len("Bearer ") :]
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS or header.get("typ", "JWT") != "JWT":
                raise Unauthorized("algorithm or type")
            key = self.keys.get(header.get("kid", ""))
            if key is None:
                raise Unauthorized("unknown kid")
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=audience,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error)) from None
        if claims["iss"] not in self.issuers:
            raise Unauthorized("issuer")
        now = time.time()
        with self.lock:
            self.seen = {jti: until for jti, until in self.seen.items() if until > now}
            if claims["jti"] in self.seen:
                raise Unauthorized("replayed jti")
            self.seen[claims["jti"]] = float(claims["exp"])


def authority(request: Request) -> Authority:
    return request.app.state.cds  # type: ignore[no-any-return]


def called_url(request: Request) -> str:
    """The endpoint URL as the caller named it (the token's aud must be exactly this)."""
    return str(request.url.replace(query=""))


@router.get("/cds-services", summary="CDS Hooks discovery: a service per policy and hook")
def discovery(request: Request) -> JSON:
    authority(request).verify(request.headers.get("authorization"), called_url(request))
    rules = engines(request).rules
    services = [
        {
            "hook": hook,
            "id": policy.id,
            "title": f"{policy.commissioner} — {policy.reference} {policy.title}",
            "description": f"Checks a {policy.title.lower().replace('policy for ', '')} order against the "
            f"{policy.reference} funding criteria and says what is missing.",
            "prefetch": {
                "patient": "Patient/{{context.patientId}}",
                "answers": "QuestionnaireResponse?subject={{context.patientId}}"
                f"&questionnaire=urn:llr-asp:questionnaire:{policy.id}&_sort=-authored&_count=1",
            },
        }
        for policy in rules.policies.values()
        for hook in HOOKS
    ]
    return JSON({"services": services})


@router.post("/cds-services/{service}", summary="CDS Hooks: a card for an order of the policy's procedure")
async def hook(request: Request, service: str) -> JSON:
    authority(request).verify(request.headers.get("authorization"), called_url(request))
    held = engines(request)
    [policy] = held.rules.select(service)
    call = await document(request)
    if not isinstance(call, dict) or call.get("hook") not in HOOKS:
        raise InputError("request body", "hook", f"expected one of {', '.join(HOOKS)}")
    if not _for_procedure(call, held.rules.procedures.get(policy.id, ())):
        return JSON({"cards": []})
    prefetch = call.get("prefetch")
    if not isinstance(prefetch, dict) or not (prefetch.get("patient") or prefetch.get("answers")):
        return JSON({"error": "no prefetch: send the patient (and any answers) as prefetch"}, 412)
    record = _patient(prefetch, held.rules)

    def answer(held: Engines) -> Any:
        [decision] = held.interviewer.decide(validate(record, held.rules, "prefetch"), [policy])
        return {"cards": [card(decision, held.rules, str(request.base_url).rstrip("/"))]}

    return JSON(await held.run(answer))


@router.post("/cds-services/{service}/feedback", summary="CDS Hooks feedback: counted, nothing kept")
async def feedback(request: Request, service: str) -> JSON:
    authority(request).verify(request.headers.get("authorization"), called_url(request))
    engines(request).rules.select(service)
    counts = request.app.state.feedback
    counts[service] = counts.get(service, 0) + 1
    return JSON({})


def _for_procedure(call: dict[str, Any], codes: tuple[tuple[str, str, str], ...]) -> bool:
    """Whether a draft order of the call is a ServiceRequest for one of the declared codes."""
    wanted = {(system, code) for system, code, _ in codes}
    orders = (call.get("context") or {}).get("draftOrders") or {}
    for entry in orders.get("entry", []) if isinstance(orders, dict) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
            continue
        for coding in (resource.get("code") or {}).get("coding", []):
            if isinstance(coding, dict) and (coding.get("system"), coding.get("code")) in wanted:
                return True
    return False


def _patient(prefetch: dict[str, Any], rules: Any) -> dict[str, Any]:
    """The patient record the prefetch gives: answers from a QuestionnaireResponse, sex from
    Patient.gender; anything else is unknown."""
    answers = prefetch.get("answers")
    if isinstance(answers, dict) and answers.get("resourceType") == "Bundle":
        found = [e.get("resource") for e in answers.get("entry", []) if isinstance(e, dict)]
        answers = next((r for r in found if is_response(r)), None)
    document = (
        patient_document(answers, rules, "prefetch.answers")
        if isinstance(answers, dict) and is_response(answers)
        else {}
    )
    patient = prefetch.get("patient")
    if isinstance(patient, dict) and patient.get("resourceType") == "Patient":
        sex = GENDER.get(str(patient.get("gender")))
        if sex is not None and "sex" in rules.fields:
            document = {**document, **nested({"sex": sex})}
        if isinstance(patient.get("id"), str):
            document["id"] = patient["id"]
    return document


def card(decision: Decision, rules: Any, base: str) -> dict[str, Any]:
    """The one card of a hook call."""
    policy = decision.policy
    failed = [r for r in policy.requirements[policy.root].parts if r in decision.failed()]
    if decision.decision == "eligible":
        summary, indicator = f"Meets {policy.reference} criteria", "info"
        if not decision.robust:  # the qualifier leads, so a cut summary never loses it
            summary = f"Contested: meets {policy.reference} only on the adopted reading; the ICB must confirm"
            indicator = "warning"
    elif decision.decision == "not_eligible":
        reasons = ", ".join(f"{r} ({policy.requirements[r].label})" for r in failed)
        summary, indicator = f"Does not meet {policy.reference}: {reasons} not met", "warning"
        if not decision.robust:
            other = "would fund" if "eligible" in decision.possible else "needs more answers"
            summary = f"Contested: another reading of {policy.reference} {other}; adopted: {reasons} not met"
    else:
        count = len(decision.missing)
        summary, indicator = f"{policy.reference}: {count} answer{'s' if count != 1 else ''} needed", "info"
        if not decision.robust:
            summary, indicator = f"Contested: {summary}; readings of the policy differ", "warning"
    if len(summary) >= 140:
        summary = summary[:138] + "…"
    return {
        "uuid": f"llr-asp-{policy.id}-{decision.rules[:12]}",
        "summary": summary,
        "indicator": indicator,
        "detail": decision_markdown(decision, rules),
        "source": {
            "label": f"NHS LLR ICB — {policy.reference} {policy.title.replace('Policy for ', '')}",
            "topic": {"system": "urn:llr-asp:policy", "code": policy.id, "display": policy.title},
        },
        "links": [
            {"label": "Answer the questions in llr-asp", "url": f"{base}/", "type": "absolute"},
            {
                "label": "Adaptive questionnaire (FHIR)",
                "url": f"{base}/fhir/Questionnaire/{policy.id}",
                "type": "absolute",
            },
        ],
        "extension": {
            DETERMINATION: decision.decision,
            "robust": decision.robust,
            "missing": list(decision.missing),
        },
    }
