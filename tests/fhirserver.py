"""A small FHIR server of the tests' own, on 127.0.0.1: the EHR's, holding a Patient and the
QuestionnaireResponses the EHR stored. It answers a read (`Patient/{id}`) and the
QuestionnaireResponse searches a FHIR server answers (`patient`, `questionnaire`, `status`, `_tag`,
`_sort=-authored`, `_count`), records every request it is sent (path, query, Authorization),
and stops answering after `budget` requests; `delay` holds every answer back (a slow server).
A hostile server: `raw` is sent as the body of every answer instead (with `encoding` as its
Content-Encoding, `status` as its status); `encodings` records each request's Accept-Encoding.
`allowing` puts the server on a service's allow-list for an issuer (`--fhir-server`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Ehr:
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, list[str]], str | None]] = field(default_factory=list)
    delay: float = 0.0
    budget: int = 50
    base: str = ""
    raw: bytes | None = None
    encoding: str | None = None
    status: int = 200
    encodings: list[str | None] = field(default_factory=list)

    def search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """QuestionnaireResponse search, as a FHIR server matches: `patient` against
        subject.reference, `questionnaire` against the questionnaire element as it is (values separated by commas:
        any of them; a `#contained` reference matches no canonical), `status` (values separated by commas: any
        of them), `_tag` against meta.tag system|code."""
        found = list(self.responses)
        for patient in query.get("patient", []):
            found = [
                r for r in found if r.get("subject", {}).get("reference", "").endswith(f"Patient/{patient}")
            ]
        for canonical in query.get("questionnaire", []):
            found = [r for r in found if r.get("questionnaire", "").split("|")[0] in canonical.split(",")]
        for status in query.get("status", []):
            found = [r for r in found if r.get("status") in status.split(",")]
        for tag in query.get("_tag", []):
            system, _, code = tag.partition("|")
            found = [r for r in found if {"system": system, "code": code} in r.get("meta", {}).get("tag", [])]
        if query.get("_sort") == ["-authored"]:
            found.sort(key=lambda r: r.get("authored", ""), reverse=True)
        if query.get("_count"):
            found = found[: int(query["_count"][0])]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(found)}
        if found:
            bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in found]
        return bundle


@contextmanager
def serving(ehr: Ehr) -> Iterator[Ehr]:
    """`ehr` served on 127.0.0.1 (a free port) while the block runs; `ehr.base` its FHIR base."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            ehr.requests.append((unquote(parts.path), query, self.headers.get("Authorization")))
            ehr.encodings.append(self.headers.get("Accept-Encoding"))
            if ehr.raw is not None:
                self._send(ehr.status, ehr.raw)
                return
            if len(ehr.requests) > ehr.budget:
                self._answer(503, {"resourceType": "OperationOutcome"})
                return
            time.sleep(ehr.delay)
            path = unquote(parts.path).removeprefix("/fhir/")
            if path.startswith("Patient/") and path[len("Patient/") :] in ehr.patients:
                self._answer(200, ehr.patients[path[len("Patient/") :]])
            elif path == "QuestionnaireResponse":
                self._answer(200, ehr.search(query))
            else:
                self._answer(404, {"resourceType": "OperationOutcome"})

        def _answer(self, status: int, resource: dict[str, Any]) -> None:
            self._send(status, json.dumps(resource).encode())

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                if ehr.encoding:
                    self.send_header("Content-Encoding", ehr.encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the service gave up waiting (a slow-server test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ehr.base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    try:
        yield ehr
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def allowing(app: Any, issuer: str, base: str) -> Iterator[None]:
    """`app` fetching from `base` for calls of `issuer` while the block runs (as `serve
    --fhir-server ISS=URL` allows it)."""
    settings = app.state.settings
    app.state.settings = dataclasses.replace(settings, fhir_servers=((issuer, base),))
    try:
        yield
    finally:
        app.state.settings = settings
