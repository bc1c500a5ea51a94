"""FHIR R4 over HTTP, at `<public URL>/fhir`: the CapabilityStatement (`metadata`), each policy's
Questionnaire (read, or searched by its canonical `url`, with or without `|version`), SDC's
adaptive `$next-question` and Da Vinci DTR's `$questionnaire-package` (`formats/package.py`).
Bodies are FHIR JSON (application/fhir+json); every error is an OperationOutcome (`outcome.py`):
a bad QuestionnaireResponse is 400, an unknown policy 404.

Each policy (and "all") has two Questionnaires: the full form (`/fhir/Questionnaire/<policy>`,
every question, not adaptive) and the adaptive one SDC's adaptive search finds
(`/fhir/Questionnaire/<policy>-adaptive`: no items, marked adaptive with this base URL), which
an SDC form filler (the DTR app) asks one question at a time through `$next-question`.
"""

from __future__ import annotations

import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from ..core.documents import ADAPTIVE, form_of
from ..core.ruleset import RuleSet
from ..formats.adaptive import adaptive_response, next_question
from ..formats.fhir import (
    ADAPT_SEARCH,
    EXTENSIONS,
    SDC,
    adaptive_questionnaire,
    questionnaire,
    questionnaire_version,
    release,
    structure_definition,
)
from ..formats.package import package, requested
from .api import document, engines, hung_up
from .outcome import FHIR_JSON, outcome
from .receipts import receipts
from .responses import JSON

router = APIRouter()
NEXT_QUESTION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-next-question"
PACKAGE = "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package"


def fhir_base(request: Request) -> str:
    """The FHIR base URL callers use: the configured public URL, never the request's Host."""
    return f"{request.app.state.settings.public_url}/fhir"


@router.get("/fhir/metadata", summary="The FHIR CapabilityStatement: what this FHIR server does")
def metadata(request: Request) -> JSON:
    return JSON(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": datetime.date.today().isoformat(),
            "publisher": "llr-asp",
            "kind": "instance",
            "software": {"name": "llr-asp", "version": release()},
            "implementation": {
                "description": "llr-asp: the questionnaires of the commissioning policies, asked adaptively",
                "url": fhir_base(request),
            },
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "json"],
            "implementationGuide": ["http://hl7.org/fhir/uv/sdc/ImplementationGuide/hl7.fhir.uv.sdc|4.0.0"],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": "Questionnaire",
                            "profile": SDC,
                            "supportedProfile": [ADAPT_SEARCH],
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [
                                {
                                    "name": "url",
                                    "type": "uri",
                                    "documentation": "The canonical, `|version` allowed",
                                },
                                {"name": "version", "type": "token"},
                            ],
                            "operation": [
                                {"name": "next-question", "definition": NEXT_QUESTION},
                                {"name": "questionnaire-package", "definition": PACKAGE},
                            ],
                        },
                        {
                            "type": "StructureDefinition",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [{"name": "url", "type": "uri"}],
                            "documentation": "The definitions of the extensions llr-asp puts on "
                            "QuestionnaireResponses: "
                            + ", ".join(
                                f"{url} (StructureDefinition/{name})"
                                for name, (_, url, *_) in EXTENSIONS.items()
                            ),
                        },
                    ],
                }
            ],
        },
        media_type=FHIR_JSON,
    )


@router.get("/fhir/Questionnaire", summary="Search the Questionnaires by canonical url (and version)")
def search_questionnaires(
    request: Request,
    url: str | None = Query(
        None, description="The canonical, e.g. urn:llr-asp:questionnaire:hip-resurfacing"
    ),
    version: str | None = Query(None, description="The version (or give it as url|version)"),
) -> JSON:
    rules = engines(request).rules
    # a version's `+` (semver build metadata) sent unencoded arrives as a space (form encoding,
    # as Medplum's client sends it); no canonical or version of llr-asp's holds a space
    url, version = (None if v is None else v.replace(" ", "+") for v in (url, version))
    if url is not None and "|" in url:
        url, version = url.split("|", 1)[0], url.split("|", 1)[1] or version
    named = form_of(url)
    found = [
        (policy, adaptive)
        for policy in [*rules.policies, "all"]
        for adaptive in (False, True)
        if (url is None or named == (policy, adaptive)) and version in (None, questionnaire_version(rules))
    ]
    base = fhir_base(request)
    entries = [
        {
            "fullUrl": f"{base}/Questionnaire/{p}{ADAPTIVE if adaptive else ''}",
            "resource": _served(request, rules, p, adaptive),
            "search": {"mode": "match"},
        }
        for p, adaptive in found
    ]
    return _searchset(request, "Questionnaire", entries)


@router.get("/fhir/StructureDefinition", summary="Search the extensions' definitions by canonical url")
def search_structure_definitions(
    request: Request,
    url: str | None = Query(None, description="The canonical, e.g. urn:llr-asp:determination"),
) -> JSON:
    base = fhir_base(request)
    found = [
        name for name, (_, canonical, *_) in EXTENSIONS.items() if url in (None, canonical.split("|")[0])
    ]
    entries = [
        {
            "fullUrl": f"{base}/StructureDefinition/{name}",
            "resource": structure_definition(name),
            "search": {"mode": "match"},
        }
        for name in found
    ]
    return _searchset(request, "StructureDefinition", entries)


def _searchset(request: Request, kind: str, entries: list[dict[str, Any]]) -> JSON:
    """A search's answer: a searchset Bundle of `entries`, its self link the search as asked."""
    query = f"?{request.url.query}" if request.url.query else ""
    return JSON(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "link": [{"relation": "self", "url": f"{fhir_base(request)}/{kind}{query}"}],
            **({"entry": entries} if entries else {}),
        },
        media_type=FHIR_JSON,
    )


@router.get(
    "/fhir/StructureDefinition/{name}", summary="The definition of an extension llr-asp puts on resources"
)
def get_structure_definition(request: Request, name: str) -> JSON:
    if name not in EXTENSIONS:
        return outcome(404, f'no StructureDefinition "{name}"; there are {", ".join(EXTENSIONS)}')
    return JSON(structure_definition(name), media_type=FHIR_JSON)


@router.get("/fhir/Questionnaire/{policy}", summary="The FHIR R4 Questionnaire of a policy (or all)")
def get_questionnaire(request: Request, policy: str) -> JSON:
    """The full form of a policy (or "all"); `<policy>-adaptive` its adaptive one."""
    rules = engines(request).rules
    adaptive = policy.endswith(ADAPTIVE) and policy[: -len(ADAPTIVE)] in (*rules.policies, "all")
    policy = policy[: -len(ADAPTIVE)] if adaptive else policy
    rules.select(policy)  # an unknown policy: 404
    return JSON(_served(request, rules, policy, adaptive), media_type=FHIR_JSON)


def _served(request: Request, rules: RuleSet, policy: str, adaptive: bool = False) -> dict[str, Any]:
    # a family's: what its edition in force today asks (an edition's id: that edition's)
    chosen = (
        None
        if policy == "all"
        else rules.select(policy)[0]
        if policy in rules.families
        else rules.policies[policy]
    )
    if adaptive:
        return adaptive_questionnaire(rules, chosen, fhir_base(request), name=policy)
    return questionnaire(rules, chosen, name=policy)


def _body(description: str, *types: str) -> dict[str, Any]:
    """The OpenAPI description of a FHIR operation's required JSON body (of `types`, else FHIR's
    and plain JSON)."""
    schema = {"schema": {"type": "object"}}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {kind: schema for kind in types or (FHIR_JSON, "application/json")},
        }
    }


@router.post(
    "/fhir/Questionnaire/$next-question",
    summary="SDC adaptive form: the next question, or the decision",
    openapi_extra=_body("A Parameters with one questionnaire-response, or the bare QuestionnaireResponse."),
)
async def post_next_question(request: Request) -> JSON:
    return await _next_question(request)


@router.post(
    "/fhir/Questionnaire/$questionnaire-package",
    summary="Da Vinci DTR: the forms named by canonical or by order, each in a Bundle",
    openapi_extra=_body("A Parameters (dtr-qpackage-input-parameters): canonicals and/or orders."),
)
async def post_questionnaire_package(request: Request) -> JSON:
    """The DTR app's first call: the forms to render. A form named by an order is the policy's
    adaptive one (asked through $next-question), as the policy's CDS card links it."""
    rules = engines(request).rules
    named = await document(request, then=lambda parameters: requested(parameters, rules))
    forms = [_served(request, rules, policy, adaptive) for policy, adaptive in named]
    return JSON(package(forms, fhir_base(request)), media_type=FHIR_JSON)


@router.post(
    "/fhir",
    summary="$next-question posted to the FHIR base (the questionnaireAdaptive URL), as the DTR app posts it",
    openapi_extra=_body(
        "A Parameters with one questionnaire-response, or the bare QuestionnaireResponse.", FHIR_JSON
    ),
)
async def post_to_base(request: Request) -> JSON:
    """The Da Vinci DTR reference app POSTs $next-question to the questionnaireAdaptive
    extension's URL itself, which SDC has as the base of the server: a QuestionnaireResponse
    (or Parameters) posted there is $next-question. No batch or transaction is served: a Bundle
    is 400, as any other body that is not a QuestionnaireResponse."""
    return await _next_question(request)


async def _next_question(request: Request) -> JSON:
    resource = await document(request, then=adaptive_response)
    service = fhir_base(request)
    sign = receipts(request).issue
    answer = await engines(request).run(
        lambda held: next_question(held.interviewer, resource, service=service, sign=sign),
        lambda: hung_up(request),
    )
    return JSON(answer, media_type=FHIR_JSON)
