"""How a CDS Hooks call's prefetch is read and completed, beyond the conformance checks: which
of two stored responses decides, a failed fetch inside a search Bundle, and what the service
refuses to fetch: a server not allowed for the token's issuer, a patient id that is not a FHIR
id, and an answer that is hostile (over the body limit, compressed, with duplicate keys, nested
without end), each a 412 that says the same sentence, naming no status, exception or host
(issue 38)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
from artefacts import HIP, failed_fetch, order_sign, patient_resource, searchset, service_request
from fastapi.testclient import TestClient
from fhirserver import Ehr, allowing, serving
from test_cds_conformance import SERVICE, answers_of, configure, make_app, sign_call, signed

from llr_asp.web.prefetch import UNFETCHED
from llr_asp.web.settings import fhir_server_option

from artefacts import SANDBOX_ISSUER  # isort: skip


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
        ("2026-01-10T09:00:00Z", "2026-03-01T10:30:00+00:00", "Meets ARP 55 criteria"),
        ("2026-03-01T10:30:00Z", "2026-01-10T09:00:00Z", "Does not meet ARP 55"),
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


@contextmanager
def fetching(client: TestClient, ehr: Ehr) -> Iterator[Ehr]:
    """`ehr` served, and allowed for the sandbox's calls (`--fhir-server ISS=URL`)."""
    with serving(ehr), allowing(client.app, SANDBOX_ISSUER, ehr.base):
        yield ehr


def fetched(client: TestClient, ehr: Ehr, patient: str = "123", server: str | None = None) -> Any:
    """A call with no prefetch naming `server` (default the EHR's) as fhirServer."""
    call = order_sign([service_request("2468", HIP, patient)], None, patient)
    call["fhirServer"] = server or ehr.base
    return client.post(SERVICE, json=call, headers=signed(SERVICE))


def refused(reply: Any) -> None:
    """The uniform 412: one sentence, naming no status, exception or host."""
    assert reply.status_code == 412, reply.text
    said = reply.json()["issue"][0]["diagnostics"]
    assert said == UNFETCHED
    assert not any(word in said for word in ("127.0.0.1", "Error", "answered", "500", "404", "http"))


def test_a_server_not_on_the_allow_list_is_never_fetched(client: TestClient) -> None:
    """An EHR token is not enough to make the service reach an address the operator did not allow."""
    ehr = Ehr(patients={"123": patient_resource("123")})
    with serving(ehr):
        refused(fetched(client, ehr))
    assert ehr.requests == []


def test_a_server_allowed_for_another_issuer_is_never_fetched(client: TestClient) -> None:
    ehr = Ehr(patients={"123": patient_resource("123")})
    with serving(ehr), allowing(client.app, "https://another-ehr.example.org", ehr.base):
        refused(fetched(client, ehr))
    assert ehr.requests == []


@pytest.mark.parametrize(
    "server",
    [
        "https://[::1",
        "https://[::1]:99999/fhir",
        "http://fhir.example.org/r4",
        "ftp://x",
        "",
        "//",
        "https://",
    ],
)
def test_a_malformed_fhir_server_is_the_uniform_412(client: TestClient, server: str) -> None:
    ehr = Ehr()
    with fetching(client, ehr):
        refused(fetched(client, ehr, server=server or " "))
    assert ehr.requests == []


@pytest.mark.parametrize("patient", ["../Practitioner", ".", "..", "a" * 65, "1 2", "é"])
def test_a_patient_id_that_is_not_a_fhir_id_goes_into_no_url(client: TestClient, patient: str) -> None:
    """`.` would make the read a search of every Patient, `..` the server's base."""
    ehr = Ehr()
    with fetching(client, ehr):
        refused(fetched(client, ehr, patient))
    assert ehr.requests == []


def test_an_answer_over_the_body_limit_is_not_read(client: TestClient) -> None:
    huge = {
        **patient_resource("123"),
        "text": {"status": "generated", "div": "<div>" + "x" * (2 << 20) + "</div>"},
    }
    ehr = Ehr(patients={"123": huge})
    with fetching(client, ehr):
        refused(fetched(client, ehr))


def test_identity_is_asked_for_and_a_compressed_answer_is_never_inflated(client: TestClient) -> None:
    """The gzip bomb: 127 KB of gzip was 800 MB in a worker. Even a small, honest gzip answer is
    refused unread: the service asked for identity."""
    ehr = Ehr(raw=gzip.compress(json.dumps(patient_resource("123")).encode()), encoding="gzip")
    with fetching(client, ehr):
        refused(fetched(client, ehr))
    assert ehr.encodings and set(ehr.encodings) == {"identity"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"resourceType": "Patient", "id": "123", "gender": "male", "gender": "female"}',
        b'{"resourceType": "Patient", "extension": ' + b"[" * 1200 + b"]" * 1200 + b"}",
        b'{"resourceType": "Patient", "extension": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}",
        b'{"resourceType": "Patient", "birthDate": NaN}',
        b"\xff\xfe not UTF-8",
        b"[]",
    ],
    ids=["duplicate keys", "1200 deep", "300 deep objects", "NaN", "not UTF-8", "not a resource"],
)
def test_a_fetched_answer_is_read_as_strictly_as_a_request_body(client: TestClient, raw: bytes) -> None:
    ehr = Ehr(raw=raw)
    with fetching(client, ehr):
        refused(fetched(client, ehr))


@pytest.mark.parametrize("status", [500, 401, 302, 403])
def test_the_412_says_nothing_of_what_the_server_answered(client: TestClient, status: int) -> None:
    """Not an oracle for internal hosts: the same sentence whatever the status (or a timeout)."""
    ehr = Ehr(raw=b"{}", status=status)
    with fetching(client, ehr):
        refused(fetched(client, ehr))


def test_an_unreachable_allowed_server_is_the_same_412(client: TestClient) -> None:
    ehr = Ehr()
    with allowing(client.app, SANDBOX_ISSUER, "http://127.0.0.1:9/fhir"):
        refused(fetched(client, ehr, server="http://127.0.0.1:9/fhir"))


def test_the_fhir_server_option_pairs_an_issuer_with_a_base_url() -> None:
    assert fhir_server_option("https://ehr.example.org=https://fhir.example.org/r4/") == (
        "https://ehr.example.org",
        "https://fhir.example.org/r4",
    )
    for bad in (
        "https://fhir.example.org/r4",
        "iss=http://fhir.example.org",
        "iss=https://[::1",
        "iss=https://x/?a",
    ):
        with pytest.raises(Exception, match="--fhir-server"):
            fhir_server_option(bad)


def test_a_patient_the_ehr_does_not_have_is_no_data(client: TestClient) -> None:
    """A read of no such Patient (404) is what a null prefetch says: no data, not a failure."""
    ehr = Ehr(responses=[answers_of("route-c1-pain", "123")])
    with fetching(client, ehr):
        said = card(client, fetched_call(ehr))["summary"]  # decided; the sex not compared
        assert said == "Sex not compared with the EHR's (no Patient record). Meets ARP 55 criteria"


def fetched_call(ehr: Ehr) -> dict[str, Any]:
    call = order_sign([service_request("2468", HIP)], None)
    call["fhirServer"] = ehr.base
    return call
