"""How a CDS Hooks call's prefetch is read and completed, beyond the conformance checks: which
of two stored responses decides, a failed fetch inside a search Bundle, and what the service
refuses to fetch (plain http to another host, a patient id that is not a FHIR id, an answer
over the body limit)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
from artefacts import HIP, failed_fetch, order_sign, patient_resource, searchset, service_request
from fastapi.testclient import TestClient
from fhirserver import Ehr, serving
from test_cds_conformance import SERVICE, answers_of, configure, make_app, sign_call, signed


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(make_app(configure(tmp_path_factory.mktemp("prefetch"))))


def card(client: TestClient, call: dict[str, Any]) -> dict[str, Any]:
    reply = client.post(SERVICE, json=call, headers=signed(SERVICE))
    assert reply.status_code == 200, reply.text
    [found] = reply.json()["cards"]
    return found  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("static", "adaptive", "summary"),
    [
        ("2025-01-10T09:00:00Z", "2025-03-01T10:30:00+00:00", "Meets ARP 55 criteria"),
        ("2025-03-01T10:30:00Z", "2025-01-10T09:00:00Z", "Does not meet ARP 55"),
    ],
)
def test_the_most_recently_authored_response_decides(
    client: TestClient, static: str, adaptive: str, summary: str
) -> None:
    """A static form's response (refused) and an adaptive form's (eligible): the later decides."""
    call = sign_call(None)
    call["prefetch"]["answers"] = searchset(
        {**answers_of("refused-b-four-months", "123"), "authored": static}
    )
    call["prefetch"]["adaptiveAnswers"] = searchset(
        {**answers_of("route-c1-pain", "123"), "authored": adaptive}
    )
    assert card(client, call)["summary"].startswith(summary)


def test_an_operation_outcome_among_a_searchs_entries_is_a_failed_fetch(client: TestClient) -> None:
    """An EHR may put the OperationOutcome of a failed search in its Bundle (search.mode outcome)."""
    call = sign_call(None)
    call["prefetch"]["adaptiveAnswers"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": failed_fetch(), "search": {"mode": "outcome"}}],
    }
    assert "could not fetch" in card(client, call)["summary"]


@pytest.mark.parametrize(
    ("server", "patient", "words"),
    [
        ("http://fhir.example.org/r4", "123", "not https"),
        (None, "../Practitioner", "not a FHIR id"),
    ],
    ids=["plain http to another host", "a patient id that is not a FHIR id"],
)
def test_what_the_service_will_not_fetch(
    client: TestClient, server: str | None, patient: str, words: str
) -> None:
    ehr = Ehr()
    with serving(ehr):
        call = order_sign([service_request("2468", HIP, patient)], None, patient)
        call["fhirServer"] = server or ehr.base
        reply = client.post(SERVICE, json=call, headers=signed(SERVICE))
    assert reply.status_code == 412 and words in reply.json()["issue"][0]["diagnostics"]
    assert ehr.requests == []


def test_an_answer_over_the_body_limit_is_not_read(client: TestClient) -> None:
    huge = {
        **patient_resource("123"),
        "text": {"status": "generated", "div": "<div>" + "x" * (2 << 20) + "</div>"},
    }
    ehr = Ehr(patients={"123": huge})
    with serving(ehr):
        call = order_sign([service_request("2468", HIP)], None)
        call["fhirServer"] = ehr.base
        reply = client.post(SERVICE, json=call, headers=signed(SERVICE))
    assert reply.status_code == 412 and "over 1 MiB" in reply.json()["issue"][0]["diagnostics"]


def test_a_patient_the_ehr_does_not_have_is_no_data(client: TestClient) -> None:
    """A read of no such Patient (404) is what a null prefetch says: no data, not a failure."""
    ehr = Ehr(responses=[answers_of("route-c1-pain", "123")])
    with serving(ehr):
        call = order_sign([service_request("2468", HIP)], None)
        call["fhirServer"] = ehr.base
        assert card(client, call)["summary"] == "Meets ARP 55 criteria"
