"""Errors as FHIR OperationOutcome: every error of the FHIR endpoints (a bad QuestionnaireResponse
to $next-question is 400, as Da Vinci DTR requires), and the 412 of a CDS Hooks call (CDS Hooks
3.0: a non-2xx answer SHOULD carry one). The message is the CLI's one line, in `diagnostics`.
"""

from __future__ import annotations

from typing import Any

from .responses import JSON

FHIR_JSON = "application/fhir+json"
ISSUE_TYPE = {
    400: "invalid",
    401: "security",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-long",
    415: "not-supported",
    422: "processing",
    500: "exception",
    503: "transient",
}
"""The issue type (FHIR's issue-type code system) each status is answered with."""


def operation_outcome(status: int, message: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": ISSUE_TYPE.get(status, "processing"), "diagnostics": message}
        ],
    }


def outcome(status: int, message: str) -> JSON:
    """The response of an error: its status, an OperationOutcome saying `message`."""
    return JSON(operation_outcome(status, message), status_code=status, media_type=FHIR_JSON)
