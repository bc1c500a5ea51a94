"""The JSON API under /api/v1: each body is exactly what the CLI prints with `--format json`.

A patient document is the request body, parsed and validated as `explain` does; a bad one is
422 with the CLI's one-line message, an unknown policy 404, a body over its limit 413 (the guard
bounds every body while it streams: `guard.py`).
"""

from __future__ import annotations

import datetime
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import IO, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ..core.decision import per_policy
from ..core.documents import validate
from ..core.errors import InputError
from ..core.patient import MAX_BYTES, Patient, parse
from ..core.ruleset import is_date
from ..engines.batch import CHUNK, Choice, Result, chunks
from ..engines.whatif import weighed
from ..formats.readers import read_jsonl
from .engines import BUSY, Engines, NoRoom, Overloaded
from .receipts import receipts
from .responses import JSON

_T = TypeVar("_T")

INLINE_BYTES = 16 << 10
"""A body up to this size is parsed and validated on the event loop; a larger one on a thread."""
WHATIF_SECONDS = 5.0
"""What-if per request and policy: it takes milliseconds on the bundled rules; past this, 503."""

router = APIRouter()
PolicyQuery = Query(
    None, description='A policy id (see /api/v1/policies) or "all". Default: the record\'s, else all.'
)

log = logging.getLogger("uvicorn.error")


AsOfQuery = Query(
    None,
    description="Decide under the edition of each policy in force on this day (YYYY-MM-DD). "
    "Default: the record's referral date, else today.",
)


def _day(text: str | None) -> datetime.date | None:
    """The day `as_of=` names; InputError (422) for anything but a real YYYY-MM-DD."""
    if text is None:
        return None
    if not is_date(text):
        raise InputError(
            "as_of",
            "",
            f"expected a date written YYYY-MM-DD, such as 2027-04-01, got {json.dumps(text)[:40]}",
        )
    return datetime.date.fromisoformat(text)


def engines(request: Request) -> Engines:
    return request.app.state.engines  # type: ignore[no-any-return]


async def body(request: Request) -> bytes:
    """The request body (the guard has refused it, 413, past the route's limit)."""
    data = bytearray()
    async for piece in request.stream():
        data += piece
    return bytes(data)


async def document(
    request: Request, source: str = "request body", then: Callable[[Any], _T] = lambda document: document
) -> _T:
    """`then` of the request body as JSON, read as strictly as `explain` reads a file: on the
    event loop for a body of a few KiB (a patient record is a few hundred bytes: microseconds),
    on a worker thread past INLINE_BYTES, so that a hostile megabyte (350,000 empty objects,
    one key a megabyte long) stalls no other request."""
    data = await body(request)

    def read() -> _T:
        return then(read_json(data, source))

    return read() if len(data) <= INLINE_BYTES else await run_in_threadpool(read)


def read_json(data: bytes, source: str) -> Any:
    """JSON bytes read strictly, the one way the service reads JSON it is sent or fetches (a
    request body, an EHR's FHIR answer): UTF-8, no duplicate keys, no NaN, bounded nesting
    (`core.patient.parse`). Raises InputError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(source, "", f"not UTF-8 text (byte {error.start}); send UTF-8") from None
    return parse(text, source)


async def patient(request: Request, source: str = "request body") -> Patient:
    """The patient document of the request, validated as `explain` validates a file."""
    rules = engines(request).rules
    return await document(request, source, lambda document: validate(document, rules, source))


async def hung_up(request: Request) -> None:
    """Returns when the client of `request` (its body read) has hung up."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


PATIENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A patient record (see /api/v1/schema); every field may be omitted or null.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PatientRecord"}}},
    }
}


@router.get("/api/v1/policies", summary="The policies, as `llr-asp policies --format json`")
def policies(request: Request) -> list[dict[str, object]]:
    today = datetime.date.today()
    return [p.to_json(today) for p in engines(request).rules.editions()]


@router.get("/api/v1/schema", summary="The JSON Schema of a patient record, as `llr-asp schema`")
def schema(request: Request) -> dict[str, Any]:
    from ..core.patient import json_schema

    return json_schema(engines(request).rules)


@router.post(
    "/api/v1/explain",
    summary="Decide, with the justification tree, as `llr-asp explain --format json`",
    openapi_extra=PATIENT_BODY,
)
async def explain(request: Request, policy: str | None = PolicyQuery, as_of: str | None = AsOfQuery) -> JSON:
    signed = receipts(request)
    day = _day(as_of)

    def work(held: Engines, record: Patient) -> list[dict[str, Any]]:
        reasoner = held.interviewer
        decisions = reasoner.decide(record, reasoner.chosen(record, policy, day))
        return [signed.issued(d, record, d.to_json()) for d in decisions]

    return await _per_policy(request, work)


@router.post(
    "/api/v1/whatif",
    summary="The smallest changes that would make the patient eligible, as `llr-asp whatif --format json`",
    openapi_extra=PATIENT_BODY,
)
async def whatif(
    request: Request,
    policy: str | None = PolicyQuery,
    limit: int = Query(5, ge=1, le=50),
    as_of: str | None = AsOfQuery,
) -> JSON:
    signed = receipts(request)
    day = _day(as_of)

    def work(held: Engines, record: Patient) -> list[dict[str, Any]]:
        reasoner = held.interviewer
        answers = []
        for decision in reasoner.decide(record, reasoner.chosen(record, policy, day)):
            found = weighed(held.whatif, record, decision, limit, WHATIF_SECONDS)
            answers.append(signed.issued(decision, record, found.to_json()))
        return answers

    return await _per_policy(request, work)


@router.post(
    "/api/v1/next",
    summary="The next question to ask, as `llr-asp next --format json`",
    openapi_extra=PATIENT_BODY,
)
async def next_question(
    request: Request,
    policy: str | None = PolicyQuery,
    reask_unknown: bool = Query(
        False, description="Ask again the fields the record gives as null (not known) that are still needed."
    ),
    as_of: str | None = AsOfQuery,
) -> JSON:
    signed = receipts(request)
    day = _day(as_of)

    def work(held: Engines, record: Patient) -> list[dict[str, Any]]:
        again = record.answered - set(record.values) if reask_unknown else ()
        steps = held.interviewer.next(record, held.interviewer.chosen(record, policy, day), again)
        # an interview's decision is receipted when it is complete (no question left), as the
        # FHIR $next-question completion is; a step on the way decides nothing yet
        return [
            signed.issued(s.decision, record, s.to_json()) if s.question is None else s.to_json()
            for s in steps
        ]

    return await _per_policy(request, work)


async def _per_policy(request: Request, work: Callable[[Engines, Patient], list[dict[str, Any]]]) -> JSON:
    """The request's patient, answered per policy by `work` on the warm engines (on their
    thread: clingo never blocks the event loop), as the CLI's `--format json` prints it, each
    decision with its receipt."""
    record = await patient(request)
    return JSON(
        await engines(request).run(lambda held: per_policy(work(held, record)), lambda: hung_up(request))
    )


@router.post(
    "/api/v1/batch",
    summary="Decide a cohort: JSON Lines in, JSON Lines out, as `llr-asp batch`",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One patient record per line (JSON Lines); streamed, at most 100 MiB.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    response_class=StreamingResponse,
)
async def batch(
    request: Request, policy: str | None = PolicyQuery, as_of: str | None = AsOfQuery
) -> StreamingResponse:
    held = engines(request)
    chosen = held.screener.policies(policy, _day(as_of))  # an unknown policy: 404 before anything is read
    state = admitted(request)
    try:
        cohort = await _spooled(request)  # the whole body first: the response must not read the request
    except BaseException:
        state.batches -= 1
        raise
    encode = json.JSONEncoder(ensure_ascii=False).encode

    def results() -> Iterator[bytes]:
        with cohort:  # read as `llr-asp batch` reads a file: numbered lines, in chunks
            for chunk in chunks(read_jsonl(cohort), CHUNK):
                yield _encoded(held, chunk, chosen, encode)

    async def streamed() -> AsyncIterator[bytes]:
        try:
            async for piece in iterate_in_threadpool(results()):
                yield piece
        finally:  # answered, failed or abandoned: the slot is free again
            state.batches -= 1

    return StreamingResponse(streamed(), media_type="application/x-ndjson")


def admitted(request: Request) -> Any:
    """Take one of the worker's cohort slots, or 503 when all are taken: each cohort request may
    spool up to --max-batch-mib. The caller gives it back (`state.batches -= 1`) when done."""
    state = request.app.state
    if state.batches >= state.settings.max_batches:
        raise Overloaded(BUSY)
    state.batches += 1
    return state


def _encoded(held: Engines, chunk: list[tuple[int, Any]], chosen: Choice, encode: Any) -> bytes:
    with held.held():
        screened: list[Result] = held.screener.screen(chunk, "line", chosen)
    return "".join(encode(r.to_json()) + "\n" for r in screened).encode("utf-8", "backslashreplace")


async def _spooled(request: Request) -> IO[bytes]:
    """The request body in a temporary file (in memory while small): memory stays flat however
    long the cohort (the guard cuts it off, 413, past --max-batch-mib)."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=MAX_BYTES)  # noqa: SIM115 (closed by the response)
    try:
        async for piece in request.stream():
            try:
                spool.write(piece)
            except OSError as error:  # a full disk (ENOSPC, EDQUOT): the operator's to mend
                log.error("llr-asp: a cohort could not be spooled: %s", error.strerror or error)
                raise NoRoom(
                    "the service has no room for this cohort now; try a smaller one, or later"
                ) from None
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


@router.get("/healthz", summary="Alive, with the sha256 of the rule set it serves")
async def healthz(request: Request) -> dict[str, str]:  # on the event loop: no thread to wait for
    """ "ok"; "degraded" with the problem when the CDS Hooks keys could not be read (the page and
    the API serve, every CDS Hooks call is refused): a worker that started with a broken JWKS."""
    problem = getattr(request.app.state.cds, "problem", None)
    if problem:
        return {"status": "degraded", "problem": problem, "rules": engines(request).rules.digest}
    return {"status": "ok", "rules": engines(request).rules.digest}
