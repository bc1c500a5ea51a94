"""Requests shaped as the specifications' own examples are, trimmed to what llr-asp reads (each
names the file its shape is copied from), and tokens signed as the CDS Hooks sandbox signs them.

Sources (read locally from the repositories' snapshots):
- cds-hooks/docs: docs/specification/current.md (requests, feedback, the JWT example);
- HL7/cds-hooks-library: input/pagecontent/order-select.md, order-sign.md (hook contexts);
- HL7/davinci-crd: input/resources/CRDServiceRequest.json, CRDServiceRequest3.json;
- cds-hooks/sandbox: src/retrieve-data-helpers/jwt-generator.js (how tokens are signed);
- HL7/sdc 4.0.0: input/fsh/examples/adaptive-questionnaireresponse-sdc-example-phq9-start.fsh;
- HL7/davinci-dtr: input/fsh/examples/Examples-QuestionnaireResponse-ForAdaptive.fsh.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt

from llr_asp import load_rules, validate
from llr_asp.core.ruleset import Value

EXAMPLES = Path(__file__).parent.parent / "examples"
RULES = load_rules()

HIP = {
    "system": "http://snomed.info/sct",
    "code": "test-hip-resurfacing",
    "display": "Hip resurfacing (test code)",
}
"""The order code the test rules declare for hip resurfacing (no code ships: see rules/llr_icb.lp)."""
OTHER = {
    "system": "http://snomed.info/sct",
    "code": "726551006",
    "display": "Contrast enhanced spectral mammography",
}
"""The code of CRDServiceRequest.json's first draft order: for no policy of llr-asp."""
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


def sandbox_token(audience: str, key: Any, kid: str, now: float | None = None, **claims: Any) -> str:
    """A token as the sandbox signs one (jwt-generator.js): ES384; header alg, typ JWT, kid, jku;
    payload iss, aud, exp = round(now + 300), iat = round(now), jti a fresh UUID."""
    now = time.time() if now is None else now
    payload = {
        "iss": SANDBOX_ISSUER,
        "aud": audience,
        "exp": round(now + 300),
        "iat": round(now),
        "jti": str(uuid.uuid4()),
        **claims,
    }
    header = {"alg": "ES384", "typ": "JWT", "kid": kid, "jku": f"{SANDBOX_ISSUER}/.well-known/jwks.json"}
    return jwt.api_jws.encode(json.dumps(payload).encode(), key, algorithm="ES384", headers=header)


def service_request(order_id: str, coding: dict[str, str], patient: str = "123") -> dict[str, Any]:
    """A draft ServiceRequest as CRDServiceRequest.json's draftOrders entries are."""
    return {
        "fullUrl": f"http://example.org/someEHR/fhir/ServiceRequest/{order_id}",
        "resource": {
            "resourceType": "ServiceRequest",
            "id": order_id,
            "status": "draft",
            "intent": "original-order",
            "code": {"coding": [coding]},
            "subject": {"reference": f"http://example.org/fhir/Patient/{patient}"},
            "authoredOn": "2019-02-15",
            "requester": {
                "reference": "http://example.org/fhir/PractitionerRole/ABC",
                "display": "Dr. Jones",
            },
        },
    }


def order_sign(
    orders: list[dict[str, Any]], prefetch: dict[str, Any] | None, patient: str = "123"
) -> dict[str, Any]:
    """An order-sign call shaped as CRDServiceRequest.json (fhirServer, fhirAuthorization, a
    collection Bundle of draft orders, a prefetch with null for data the EHR does not have)."""
    call: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "http://example.org/some-payer/fhir/crd",
        "hook": "order-sign",
        "fhirAuthorization": {
            "access_token": "some-opaque-fhir-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/QuestionnaireResponse.read",
            "subject": "cds-service4",
            "patient": patient,
        },
        "context": {
            "userId": "Practitioner/ABC",
            "patientId": patient,
            "encounterId": "987",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": orders},
        },
        "extension": {"davinci-crd.requestedVersion": "2.2"},
    }
    if prefetch is not None:
        call["prefetch"] = prefetch
    return call


def order_select(
    orders: list[dict[str, Any]],
    selections: list[str],
    prefetch: dict[str, Any] | None,
    patient: str = "1288992",
) -> dict[str, Any]:
    """An order-select call shaped as the hook library's R4 example (order-select.md): userId,
    patientId, encounterId, `selections` naming the newly selected orders of draftOrders."""
    call: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-select",
        "context": {
            "userId": "PractitionerRole/123",
            "patientId": patient,
            "encounterId": "89284",
            "selections": selections,
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": orders},
        },
    }
    if prefetch is not None:
        call["prefetch"] = prefetch
    return call


def patient_resource(patient: str, gender: str = "male") -> dict[str, Any]:
    """A prefetched Patient, as the specification's example prefetch data has one."""
    return {
        "resourceType": "Patient",
        "id": patient,
        "gender": gender,
        "birthDate": "1974-12-25",
        "active": True,
    }


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    """A search result, as the specification's example prefetch data has one."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [{"resource": r} for r in resources]
    return bundle


def failed_fetch() -> dict[str, Any]:
    """The OperationOutcome an EHR sends in place of prefetch data it could not fetch (the
    specification's "Returning OperationOutcome" example, CDS Hooks 3.0)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": "CDS Hooks prefetch key 'answers' could not be retrieved.",
            }
        ],
    }


FEEDBACK_EXAMPLES = {
    # current.md, "Example suggestion accepted"
    "accepted": {
        "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2021-12-11T10:05:31Z",
    },
    # current.md, "Example overridden guidance without overrideReason"
    "overridden": {
        "card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb",
        "outcome": "overridden",
        "outcomeTimestamp": "2020-12-11T00:00:00Z",
    },
    # current.md, "Example overridden guidance with overrideReason"
    "overridden with a reason": {
        "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"code": "d7ecf885", "system": "https://example.com/cds-hooks/override-reason-system"},
            "userComment": "A comment entered by the clinician.",
        },
        "outcomeTimestamp": "2020-12-11T00:00:00Z",
    },
}


def adaptive_start(derived_from: str, patient: str = "proband") -> dict[str, Any]:
    """The first $next-question call of an adaptive form, shaped as SDC's
    adaptive-questionnaireresponse-sdc-example-phq9-start and DTR's
    home-o2-adaptive-questionnaireresponse: a contained adaptive Questionnaire derived from the
    form's (version-specific) canonical, referenced as `#id`; no questions or answers yet."""
    return {
        "resourceType": "QuestionnaireResponse",
        "contained": [
            {
                "resourceType": "Questionnaire",
                "id": "contained-adaptive",
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive",
                        "valueBoolean": True,
                    }
                ],
                "derivedFrom": [derived_from],
                "status": "active",
                "subjectType": ["Patient"],
            }
        ],
        "questionnaire": "#contained-adaptive",
        "status": "in-progress",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": "2026-08-21T20:36:57.544Z",  # (the DTR example's 2019, within a year of the tests' clock)
    }


def next_question_parameters(response: dict[str, Any]) -> dict[str, Any]:
    """SDC's $next-question input (parameters-questionnaire-next-question-in)."""
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": response}],
    }


def answer(path: str, value: Value) -> dict[str, Any]:
    """A QuestionnaireResponse answer to the question of field `path`, as a form filler fills it."""
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if RULES.fields[path].type == "date":
        return {"valueDate": value}
    if isinstance(value, str):
        return {"valueCoding": {"system": f"urn:llr-asp:values:{path}", "code": value}}
    return {"valueInteger": value} if RULES.fields[path].type == "integer" else {"valueDecimal": value}


def answer_items(example: str) -> list[dict[str, Any]]:
    """The QuestionnaireResponse items answering what a bundled example record answers."""
    truth = validate(json.loads((EXAMPLES / f"{example}.json").read_text()), RULES, example)
    return [{"linkId": path, "answer": [answer(path, value)]} for path, value in truth.values.items()]


def answered(response: dict[str, Any], example: str) -> dict[str, Any]:
    """A $next-question response with the question just asked answered as the example record
    answers it (an item without an answer when the record does not know): the next call."""
    truth = validate(json.loads((EXAMPLES / f"{example}.json").read_text()), RULES, example)
    [form] = [r for r in response["contained"] if f"#{r['id']}" == response["questionnaire"]]
    link = form["item"][-1]["linkId"]
    value = truth.values.get(link)
    entry = {"linkId": link, **({"answer": [answer(link, value)]} if value is not None else {})}
    return {**response, "item": [*response.get("item", []), entry]}
