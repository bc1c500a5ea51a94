"""A CDS Hooks service's prefetch: the templates discovery declares, and fetching from the EHR's
FHIR server what a call's prefetch lacks.

The templates use only what the specification recommends (instance reads, `patient=`, token
equality, `_sort`, `_count`; no `_tag`, which EHRs need not search by):

- `patient`: `Patient/{{context.patientId}}` (for sex);
- `answers`: the latest finished QuestionnaireResponse to the policy's full or adaptive
  Questionnaire, searched by either canonical (values separated by a comma: either; the DTR app
  stores a completed adaptive response under the adaptive canonical its launch named);
- `adaptiveAnswers`: the patient's RECENT latest finished QuestionnaireResponses, whatever
  their questionnaire: an adaptive response's `questionnaire` is `#<its contained form>`,
  which no server can search by, and a form filler's own export carries no tag of
  llr-asp's. Which of them answer this policy is read from inside each (`hookcall.py`:
  `procedure_of`, the newest `authored`, retracted ones set aside).

Finished is `status=completed,amended` (an amended response is a completed one corrected; a
form still in progress is not yet an answer).

When a call gives `fhirServer` and `fhirAuthorization` and its prefetch lacks some of these
keys, the service fetches them itself, as the specification expects, treating the EHR's server
as hostile input:

- only from a FHIR base URL the operator allowed for the issuer of the call's token
  (`--fhir-server ISS=URL`, `Settings.fhir_servers`), compared exactly: nothing else is ever
  fetched, so a token holder cannot make the service reach another (internal) address;
- only the queries the templates declare, the patient id a FHIR id (`[A-Za-z0-9-.]{1,64}`,
  never `.` or `..`) before it goes into a URL;
- with the bearer token given, no redirects followed, no proxy from the environment;
- `Accept-Encoding: identity`, and the raw bytes read: an answer in any other content-coding is
  refused unread (a gzip bomb of 127 KB never inflates), as is one over the body limit;
- each answer read by the same strict JSON reader as request bodies (`api.read_json`: no
  duplicate keys, bounded nesting, UTF-8), all within `fhir_seconds`.

Any failure is a 412 with an OperationOutcome saying one uniform sentence (UNFETCHED): no HTTP
status, exception or host, so the 412 is no oracle for what answers where. The reason is logged
for the operator as a fixed phrase (never the host, the patient id or the token).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
from typing import Any
from urllib.parse import parse_qsl, quote

from ..core.errors import InputError
from ..formats.fhir import adaptive_url, questionnaire_url
from .api import read_json
from .hookcall import Access
from .settings import Settings

TOKEN = "{{context.patientId}}"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
UNFETCHED = (
    "the patient's data could not be fetched from fhirServer; send it as prefetch (see discovery), "
    "or ask the service's operator which FHIR servers it reads for your issuer"
)
log = logging.getLogger("uvicorn.error")


RECENT = 10
"""How many of the patient's latest finished responses `adaptiveAnswers` asks for."""


def templates(policy: str) -> dict[str, str]:
    """The prefetch templates of the services of `policy` (keys: hookcall.KEYS)."""
    finished = f"QuestionnaireResponse?patient={TOKEN}&status=completed,amended"
    return {
        "patient": f"Patient/{TOKEN}",
        "answers": f"{finished}&questionnaire={questionnaire_url(policy)},{adaptive_url(policy)}"
        "&_sort=-authored&_count=1",
        "adaptiveAnswers": f"{finished}&_sort=-authored&_count={RECENT}",
    }


class Unfetched(Exception):
    """What the service needed from the EHR's FHIR server and could not get: its str is the
    uniform 412 sentence; `reason` a fixed phrase for the operator's log."""

    def __init__(self, reason: str) -> None:
        super().__init__(UNFETCHED)
        self.reason = reason


def is_fhir_id(text: str) -> bool:
    """A FHIR id (R4 `id`: [A-Za-z0-9-.]{1,64}), and not `.` or `..`, which a URL path resolves."""
    return FHIR_ID.fullmatch(text) is not None and text not in (".", "..")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every fetch (building one loads the CA bundle: milliseconds)."""
    return ssl.create_default_context()


async def fetch(
    access: Access,
    patient_id: str,
    keys: tuple[str, ...],
    policy: str,
    settings: Settings,
    issuer: str | None = None,
) -> dict[str, Any]:
    """The prefetch `keys` of `policy`'s templates, read from the EHR's FHIR server (None where
    it has no such resource), when `issuer` may have it read. Raises Unfetched (logged)."""
    try:
        return await _fetch(access, patient_id, keys, policy, settings, issuer)
    except Unfetched as refused:
        log.warning("llr-asp: a CDS Hooks fetch from fhirServer was refused: %s", refused.reason)
        raise


async def _fetch(
    access: Access,
    patient_id: str,
    keys: tuple[str, ...],
    policy: str,
    settings: Settings,
    issuer: str | None,
) -> dict[str, Any]:
    import httpx

    server = access.server.rstrip("/")
    if server not in settings.fhir_bases(issuer):  # compared as given: nothing is parsed first
        raise Unfetched("fhirServer is not one allowed for the token's issuer (--fhir-server)")
    if not is_fhir_id(patient_id):
        raise Unfetched("context.patientId is not a FHIR id")
    chosen = templates(policy)
    headers = {
        "Authorization": f"Bearer {access.token}",
        "Accept": "application/fhir+json",
        "Accept-Encoding": "identity",
    }
    async with httpx.AsyncClient(
        base_url=server + "/",
        headers=headers,
        timeout=settings.fhir_seconds,
        follow_redirects=False,
        verify=_tls(),
        trust_env=False,  # no proxy from the environment sees the token
    ) as client:

        async def one(key: str) -> tuple[str, Any]:
            path, _, query = chosen[key].partition("?")
            params = [(name, value.replace(TOKEN, patient_id)) for name, value in parse_qsl(query)]
            return key, await _read(client, path.replace(TOKEN, quote(patient_id, safe="")), params, settings)

        try:
            found = await asyncio.wait_for(
                asyncio.gather(*(one(key) for key in keys)), timeout=settings.fhir_seconds
            )
        except (httpx.HTTPError, asyncio.TimeoutError, ValueError) as error:
            raise Unfetched(f"no usable answer ({type(error).__name__})") from None
    return dict(found)


async def _read(client: Any, path: str, params: list[tuple[str, str]], settings: Settings) -> Any:
    """One resource (or searchset Bundle) the server answers; None for a read of no resource."""
    async with client.stream("GET", path, params=params) as response:
        if response.status_code in (404, 410) and not params:
            return None  # an instance read of no such resource: no data, as a null prefetch says
        if response.status_code != 200:
            raise Unfetched("an answer other than 200")
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise Unfetched("an answer in a content-coding (identity was asked for)")
        body = bytearray()
        async for piece in response.aiter_raw():  # as sent: nothing is inflated
            body += piece
            if len(body) > settings.max_body:
                raise Unfetched("an answer over the body limit")
    try:
        resource = read_json(bytes(body), "fhirServer")
    except InputError:
        raise Unfetched("an answer that is not strict JSON") from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise Unfetched("an answer that is not a FHIR resource")
    return resource
