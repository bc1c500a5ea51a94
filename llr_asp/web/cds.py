"""CDS Hooks: one service per policy and hook (`hip-resurfacing-order-select`,
`hip-resurfacing-order-sign`: clients such as the CDS Hooks sandbox key services by
`discoveryUrl/id`, so two hooks sharing an id would leave one never called), answering a draft
order for the policy's procedure with one card (DESIGN §8; the card: `cards.py`). A call whose
`hook` is not its service's is 422; the bare policy id of earlier releases still answers either
hook (not listed in discovery), so an EHR configured with it keeps working.

Which orders are for which policy is declared in the rules (`procedure/4`: code system, code,
display); an order that matches no declared code gets no card, and for `order-select` only the
newly selected orders count (`hookcall.py`). The patient is read from the prefetch (`patient`
for sex; `answers` and `adaptiveAnswers` for the latest QuestionnaireResponse: `prefetch.py`),
or, for keys the prefetch lacks, fetched from `fhirServer` with `fhirAuthorization`. Partial
prefetch is not an error: the card decides what the supplied facts settle and says what is
missing (a Patient alone settles hip resurfacing for a woman); an answer key the call neither
sent (absent, unlike null) nor let the service fetch is named on the card, which is then neither
`info` nor robust: forms there were not seen. Only a call with none of the
prefetch and nothing fetched (no FHIR server, or one that could not be read) is 412, with an
OperationOutcome saying why.

Every call, discovery and feedback included, carries `Authorization: Bearer <JWT>`, verified as
the CDS Hooks specification requires (`tokens.py`: the key chosen by kid and checked against
alg, aud the configured public URL of the endpoint, a jti used once across workers). A refused
call is 401 with `WWW-Authenticate: Bearer` (RFC 6750: the realm, and for a token refused
`error="invalid_token"` with one fixed description), the reason never said.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..core.errors import UsageError
from ..core.patient import validate
from ..core.ruleset import Policy, RuleSet
from .api import document, engines, hung_up
from .cards import NAMESPACE, Found, card, inconsistent_card, unfetched_card, unreadable_card
from .engines import Engines
from .hookcall import ANSWER_KEYS, HOOKS, read_call, read_feedback
from .outcome import outcome
from .prefetch import Unfetched, fetch, templates
from .receipts import receipts
from .responses import JSON
from .settings import Settings
from .tokens import Authority, NoToken, RedisUsedTokens, SqliteUsedTokens, Unauthorized, UsedTokens

__all__ = ["Unauthorized", "authority_from_environment", "challenge", "router"]

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


REALM = "llr-asp CDS Hooks"
REFUSED = (
    "the token was refused: a CDS Hooks JWT (ES384 or RS384) from an allowed issuer, signed with a "
    "key of its JWKS, for this endpoint's URL, at most five minutes long and used once"
)


def challenge(error: Unauthorized) -> str:
    """The WWW-Authenticate of a refused call (RFC 6750 §3): the scheme and realm alone for a call
    without a token (§3.1: no error code then), else invalid_token with one fixed description."""
    if isinstance(error, NoToken):
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{REFUSED}"'


def authority(request: Request) -> Authority:
    return request.app.state.cds  # type: ignore[no-any-return]


def public_url(request: Request) -> str:
    """The service's base URL, as configured (`--public-url`), never as the request's own Host
    or forwarded headers name it."""
    return request.app.state.settings.public_url  # type: ignore[no-any-return]


async def authorize(request: Request) -> str | None:
    """Verify the call's token for this endpoint (aud: the configured public URL and the path),
    off the event loop: the signature check and the shared store of used ids take their time.
    The token's issuer (None with --no-auth)."""
    verify = authority(request).verify
    audience = public_url(request) + request.url.path
    return await run_in_threadpool(verify, request.headers.get("authorization"), audience)


RECEIPT = f"{NAMESPACE}receipt"
"""The card's extension holding the decision's receipt (a compact JWS: DESIGN §6)."""

CDS_HOOKS_VERSION = "2.0.1"
"""The CDS Hooks release implemented (discovery's `version`, CDS Hooks 3.0); its hooks are both
at hookVersion 1.0 (the hook library)."""


def service_id(policy: str, hook: str) -> str:
    """The id of the service that answers `hook` for `policy` (`hip-resurfacing-order-select`)."""
    return f"{policy}-{hook}"


def service_policy(rules: RuleSet, service: str) -> tuple[Policy, str | None]:
    """The policy family a service id names (as its edition in force today: each call is
    decided under the edition in force on the record's date) and the hook it answers (404 for
    anything else, `all` included: not a service). A bare family id, the id of the services
    before there was one per hook, still answers whichever hook the call names (None): an EHR
    configured with it keeps its cards; discovery no longer lists it."""
    for family in rules.families:
        for hook in HOOKS:
            if service == service_id(family, hook):
                return rules.current(family), hook
    if service in rules.families:
        return rules.current(service), None
    listed = ", ".join(service_id(f, h) for f in rules.families for h in HOOKS)
    raise UsageError(f'no CDS service "{service}"; the services are {listed}')


@router.get("/cds-services", summary="CDS Hooks discovery: a service per policy family and hook")
async def discovery(request: Request) -> JSON:
    await authorize(request)
    rules = engines(request).rules
    base = public_url(request)
    services = [
        {
            "hook": hook,
            "id": service_id(policy.family, hook),
            "title": f"{policy.commissioner} — {policy.reference} {policy.title}",
            "description": f"Checks a {policy.title.lower().replace('policy for ', '')} order against the "
            f"{policy.reference} funding criteria and says what is missing.",
            "prefetch": templates(policy.family),
            "usageRequirements": f"Reads the patient's answers to {base}/fhir/Questionnaire/{policy.family} "
            "or its adaptive form (a QuestionnaireResponse) from the prefetch, or from "
            "fhirServer with fhirAuthorization.",
            "version": CDS_HOOKS_VERSION,
            "hookVersion": "1.0",
        }
        for policy in map(rules.current, rules.families)
        for hook in HOOKS
    ]
    return JSON({"services": services})


@router.post("/cds-services/{service}", summary="CDS Hooks: a card for an order of the policy's procedure")
async def hook(request: Request, service: str) -> JSON:
    issuer = await authorize(request)
    held = engines(request)
    policy, served = service_policy(held.rules, service)
    body, call = await document(
        request, then=lambda body: (body, read_call(body, held.rules, policy, served))
    )
    if not call.ordered:
        return JSON({"cards": []})
    unreached = None
    if call.absent and call.access is not None:
        settings = request.app.state.settings
        try:
            fetched = await fetch(call.access, call.patient_id, call.absent, policy.family, settings, issuer)
        except Unfetched as error:
            if not call.prefetched:  # nothing supplied and nothing fetched: nothing to decide from
                return outcome(412, str(error))
            unreached = " and ".join(call.absent)  # decide from what the prefetch holds, saying so
        else:
            call = read_call(
                {**body, "prefetch": {**(body.get("prefetch") or {}), **fetched}}, held.rules, policy, served
            )
    if not call.prefetched:
        return outcome(
            412,
            "no prefetch: send the patient and the answers as prefetch (see discovery), or "
            "fhirServer with fhirAuthorization",
        )
    if call.elsewhere is not None:
        return JSON({"cards": [inconsistent_card(policy, call.elsewhere)]})
    if call.unfetched is not None:
        return JSON({"cards": [unfetched_card(policy, call.unfetched)]})
    if call.unreadable is not None:
        return JSON({"cards": [unreadable_card(policy, call.unreadable)]})

    signed = receipts(request)
    # the answer searches the service declares that the call neither sent nor let it fetch (an
    # absent key, unlike null, is no search that found nothing): forms there were not seen
    unseen = tuple(key for key in ANSWER_KEYS if key in call.absent)

    def answer(held: Engines) -> Any:
        patient = validate(call.record, held.rules, "prefetch")
        patient = dataclasses.replace(patient, conflicts=call.conflicts, filled=call.filled)
        # the edition in force on the record's referral date, else today (the call's date)
        [decision] = held.interviewer.decide(patient, held.interviewer.chosen(patient, policy.family))
        found = Found(
            call.answered,
            call.authored,
            call.other,
            unreached,
            call.order,
            call.patient_given,
            call.undated,
            call.not_patient,
            unseen,
            call.draft,
            any(s.kind == "shared" for s in call.filled),  # answers about a joint from the `all` form
            patient_sex=call.patient_sex,
        )
        launch = request.app.state.settings.dtr_launch_url
        said = card(decision, held.rules, public_url(request), found, launch)
        said["extension"][RECEIPT] = signed.issue(decision, patient)
        return {"cards": [said]}

    return JSON(await held.run(answer, lambda: hung_up(request)))


@router.post("/cds-services/{service}/feedback", summary="CDS Hooks feedback: counted, nothing kept")
async def feedback(request: Request, service: str) -> JSON:
    await authorize(request)
    service_policy(engines(request).rules, service)
    entries = await document(request, then=read_feedback)
    counts = request.app.state.feedback
    counts[service] = counts.get(service, 0) + len(entries)
    return JSON({})
