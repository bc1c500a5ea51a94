"""CDS Hooks: one service per policy, for `order-select` and `order-sign`, answering a draft
order for the policy's procedure with one card (DESIGN §8).

Which orders are for which policy is declared in the rules (`procedure/4`: code system, code,
display); an order that matches no declared code gets no card. The patient is read from the
prefetch: `patient` (Patient.gender gives sex) and `answers` (a QuestionnaireResponse, or a
Bundle of one, for the rest). Partial prefetch is not an error: the card says what is missing.

Every call, discovery included, carries `Authorization: Bearer <JWT>`, verified as the CDS
Hooks specification requires (`tokens.py`: the key chosen by kid and checked against alg, aud
the configured public URL of the endpoint, a jti used once across workers). A refused call is
401 with nothing more said.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..decision import Decision
from ..fhir import DETERMINATION
from ..markdown import decision_markdown
from ..patient import validate
from .api import document, engines, hung_up
from .engines import Engines
from .hookcall import HOOKS, inconsistent_card, read_call
from .responses import JSON
from .settings import Settings
from .tokens import Authority, RedisUsedTokens, SqliteUsedTokens, Unauthorized, UsedTokens

__all__ = ["Unauthorized", "authority_from_environment", "router"]

router = APIRouter()
ALGORITHMS = ["ES384", "RS384"]
ISSUERS_ENV, JWKS_ENV, NO_AUTH_ENV = "LLR_ASP_CDS_ISSUERS", "LLR_ASP_CDS_JWKS", "LLR_ASP_CDS_NO_AUTH"


def authority_from_environment(settings: Settings) -> Authority:
    """The issuers and keys `llr-asp serve --cds-issuer --cds-jwks` gave; used token ids in
    Redis when `--redis` names one, else in the state directory's SQLite file."""
    if os.environ.get(NO_AUTH_ENV):
        return Authority(frozenset(), {}, enabled=False)
    issuers = frozenset(i for i in os.environ.get(ISSUERS_ENV, "").split(",") if i)
    jwks = os.environ.get(JWKS_ENV)

    def opener() -> UsedTokens:
        if settings.redis:
            return RedisUsedTokens(settings.redis)
        return SqliteUsedTokens(settings.used_tokens_file)

    return Authority.load(issuers, Path(jwks) if jwks else None, opener)


def authority(request: Request) -> Authority:
    return request.app.state.cds  # type: ignore[no-any-return]


def public_url(request: Request) -> str:
    """The service's base URL, as configured (`--public-url`), never as the request's own Host
    or forwarded headers name it."""
    return request.app.state.settings.public_url  # type: ignore[no-any-return]


async def authorize(request: Request) -> None:
    """Verify the call's token for this endpoint (aud: the configured public URL and the path),
    off the event loop: the signature check and the shared store of used ids take their time."""
    verify = authority(request).verify
    audience = public_url(request) + request.url.path
    await run_in_threadpool(verify, request.headers.get("authorization"), audience)


@router.get("/cds-services", summary="CDS Hooks discovery: a service per policy and hook")
async def discovery(request: Request) -> JSON:
    await authorize(request)
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
    await authorize(request)
    held = engines(request)
    [policy] = held.rules.select(service)
    call = await document(request, then=lambda call: read_call(call, held.rules, policy))
    if not call.ordered:
        return JSON({"cards": []})
    if not call.prefetched:
        return JSON({"error": "no prefetch: send the patient (and any answers) as prefetch"}, 412)
    if call.elsewhere is not None:
        return JSON({"cards": [inconsistent_card(policy, call.elsewhere)]})

    def answer(held: Engines) -> Any:
        [decision] = held.interviewer.decide(validate(call.record, held.rules, "prefetch"), [policy])
        return {"cards": [card(decision, held.rules, public_url(request))]}

    return JSON(await held.run(answer, lambda: hung_up(request)))


@router.post("/cds-services/{service}/feedback", summary="CDS Hooks feedback: counted, nothing kept")
async def feedback(request: Request, service: str) -> JSON:
    await authorize(request)
    engines(request).rules.select(service)
    counts = request.app.state.feedback
    counts[service] = counts.get(service, 0) + 1
    return JSON({})


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
