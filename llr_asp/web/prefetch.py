"""A CDS Hooks service's prefetch: the templates discovery declares, and fetching from the EHR's
FHIR server what a call's prefetch lacks.

The templates use only what the specification recommends (instance reads, `patient=`, token
equality, `_sort`, `_count`):

- `patient`: `Patient/{{context.patientId}}` (for sex);
- `answers`: the latest QuestionnaireResponse to the policy's Questionnaire (a static form);
- `adaptiveAnswers`: the latest one of its adaptive form, found by the tag `$next-question`
  puts on every response (`adaptive.py`): an adaptive response's `questionnaire` is
  `#<its contained form>`, which no server can search by.

When a call gives `fhirServer` and `fhirAuthorization` and its prefetch lacks some of these
keys, the service fetches them itself, as the specification expects: only the queries the
templates declare, the patient id being a FHIR id, with the bearer token given, over https
(http only to this machine's loopback), no redirects followed, answers of at most the body
limit, all within `fhir_seconds`. Any failure is a 412 with an OperationOutcome naming the
key; nothing else is said about the EHR's server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from ..formats.adaptive import TAG
from ..formats.fhir import questionnaire_url
from .hookcall import Access
from .settings import Settings

TOKEN = "{{context.patientId}}"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def templates(policy: str) -> dict[str, str]:
    """The prefetch templates of the services of `policy` (keys: hookcall.KEYS)."""
    latest = "&_sort=-authored&_count=1"
    return {
        "patient": f"Patient/{TOKEN}",
        "answers": f"QuestionnaireResponse?patient={TOKEN}&questionnaire={questionnaire_url(policy)}{latest}",
        "adaptiveAnswers": f"QuestionnaireResponse?patient={TOKEN}&_tag={TAG}|{policy}{latest}",
    }


class Unfetched(Exception):
    """What the service needed from the EHR's FHIR server and could not get (said in the 412)."""


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every fetch (building one loads the CA bundle: milliseconds)."""
    return ssl.create_default_context()


async def fetch(
    access: Access, patient_id: str, keys: tuple[str, ...], policy: str, settings: Settings
) -> dict[str, Any]:
    """The prefetch `keys` of `policy`'s templates, read from the EHR's FHIR server (None where
    it has no such resource). Raises Unfetched."""
    import httpx

    parts = urlsplit(access.server)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise Unfetched(f"fhirServer {access.server}: not https; the service fetches nothing over plain http")
    if not FHIR_ID.fullmatch(patient_id):
        raise Unfetched("context.patientId is not a FHIR id; nothing was fetched")
    chosen = templates(policy)
    headers = {"Authorization": f"Bearer {access.token}", "Accept": "application/fhir+json"}
    async with httpx.AsyncClient(
        base_url=access.server.rstrip("/") + "/",
        headers=headers,
        timeout=settings.fhir_seconds,
        follow_redirects=False,
        verify=_tls(),
        trust_env=False,  # no proxy from the environment sees the token
    ) as client:

        async def one(key: str) -> tuple[str, Any]:
            path, _, query = chosen[key].partition("?")
            params = [(name, value.replace(TOKEN, patient_id)) for name, value in parse_qsl(query)]
            return key, await _read(
                client, path.replace(TOKEN, quote(patient_id, safe="")), params, key, settings
            )

        try:
            found = await asyncio.wait_for(
                asyncio.gather(*(one(key) for key in keys)), timeout=settings.fhir_seconds
            )
        except (httpx.HTTPError, asyncio.TimeoutError) as error:
            raise Unfetched(f"the EHR's FHIR server did not answer ({type(error).__name__})") from None
    return dict(found)


async def _read(client: Any, path: str, params: list[tuple[str, str]], key: str, settings: Settings) -> Any:
    """One resource (or searchset Bundle) the server answers; None for a read of no resource."""
    async with client.stream("GET", path, params=params) as response:
        if response.status_code in (404, 410) and not params:
            return None  # an instance read of no such resource: no data, as a null prefetch says
        if response.status_code != 200:
            raise Unfetched(f"prefetch {key}: the EHR's FHIR server answered {response.status_code}")
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > settings.max_body:
                raise Unfetched(
                    f"prefetch {key}: the EHR's FHIR server answered over {settings.max_body >> 20} MiB"
                )
    try:
        resource = json.loads(body)
    except ValueError:
        raise Unfetched(f"prefetch {key}: the EHR's FHIR server answered something other than JSON") from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise Unfetched(f"prefetch {key}: the EHR's FHIR server answered something other than a resource")
    return resource
