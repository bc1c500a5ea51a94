"""FHIR R4 over HTTP: the Questionnaire of each policy, and SDC's adaptive $next-question.
Bodies are FHIR JSON (application/fhir+json); errors are the CLI's line, with the status."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..fhir import adaptive_response, next_question, questionnaire
from .api import document, engines, hung_up
from .responses import JSON

router = APIRouter()
FHIR_JSON = "application/fhir+json"


@router.get("/fhir/Questionnaire/{policy}", summary="The FHIR R4 Questionnaire of a policy (or all)")
def get_questionnaire(request: Request, policy: str) -> JSON:
    rules = engines(request).rules
    chosen = None if policy == "all" else rules.select(policy)[0]
    return JSON(questionnaire(rules, chosen), media_type=FHIR_JSON)


@router.post(
    "/fhir/Questionnaire/$next-question",
    summary="SDC adaptive form: the next question, or the decision",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A Parameters with one questionnaire-response, or the bare QuestionnaireResponse.",
            "content": {
                FHIR_JSON: {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def post_next_question(request: Request) -> JSON:
    resource = await document(request, then=adaptive_response)
    answer = await engines(request).run(
        lambda held: next_question(held.interviewer, resource), lambda: hung_up(request)
    )
    return JSON(answer, media_type=FHIR_JSON)
