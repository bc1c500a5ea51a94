"""The page for clinicians: the adaptive questionnaire, the decision with its reasons, what is
missing, what-if, and the letter. Server-rendered forms that work without JavaScript.

The answers so far travel in each POST body as the patient record (a hidden field), never in a
URL; the server keeps nothing between requests. Every step goes through the same core calls as
the CLI: `Interviewer.next` (ask, next), `Reasoner.decide` (explain), `whatif`, and the Markdown
letter of `explain --format markdown`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, printable
from ..interview import parse_answer
from ..markdown import decision_markdown
from ..patient import MAX_BYTES, Patient, parse, validate
from ..pictures import decision_tree
from ..questionnaire import with_value
from ..whatif import whatif
from ..wording import (
    CHANGE_KEY,
    VERDICT_WORDS,
    change_words,
    contest_line,
    contested_summary,
    headline,
    leads_to,
    marked,
    tone,
)
from .api import WHATIF_SECONDS
from .engines import Engines

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(
    VERDICT=VERDICT_WORDS,
    MARK={"met": "✔", "not_met": "✘", "unknown": "?"},
    STATUS={"met": "met", "not_met": "not met", "unknown": "unknown"},
    headline=headline,
    contested_summary=contested_summary,
    contest_line=contest_line,
    change_words=change_words,
    CHANGE_KEY=CHANGE_KEY,
    marked=marked,
    tone=tone,
    leads_to=leads_to,
    show=lambda v: "unknown" if v is None else json.dumps(v) if isinstance(v, bool) else str(v),
    decision_svg=lambda d: Markup(decision_tree(d)),  # the decision as a picture (pictures.py)
)


def _sendable(value: Any) -> Any:
    """A lone surrogate (a `\\ud800` escape in a record) cannot be sent as UTF-8: every value put
    in a page is sent with it escaped, which in the record's JSON is the escape it came from."""
    if not isinstance(value, str) or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return type(value)(value.encode("utf-8", "backslashreplace").decode())  # keeps Markup safe
    return value


templates.env.finalize = _sendable


def _engines(request: Request) -> Engines:
    return request.app.state.engines  # type: ignore[no-any-return]


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    rules = _engines(request).rules
    return templates.TemplateResponse(request, name, {"rules": rules, **context}, status_code=status)


def error_page(request: Request, status: int, message: str) -> Response:
    return _render(request, "error.html", status, message=message)


def _record(text: str, engines: Engines, source: str = "record") -> tuple[dict[str, Any], Patient]:
    """The patient record carried by a form, validated as `explain` validates a file."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(source, "", "over 1 MiB, far larger than a patient record")
    document = parse(text or "{}", source)
    return document, validate(document, engines.rules, source)


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> HTMLResponse:
    return _render(request, "start.html", examples=sorted(_engines(request).examples))


@router.post("/ask", response_class=HTMLResponse)
def ask(
    request: Request,
    policy: str = Form("all"),
    record: str = Form("{}"),
    field: str = Form(""),
    answer: str = Form(""),
    unknown: str = Form(""),
) -> HTMLResponse:
    """Keep the answer to `field` (if any), then ask the next question, or show the decision."""
    engines = _engines(request)
    chosen = engines.rules.select(policy)
    document, patient = _record(record, engines)
    problem = None
    if field:
        spec = engines.rules.fields.get(field)
        if spec is None:
            raise InputError("answer", field, "not a field of the questionnaire")
        try:
            value = parse_answer("unknown" if unknown else answer, spec)
            updated = with_value(document, field, value)
            document, patient = updated, validate(updated, engines.rules, "answer")
        except (ValueError, InputError) as error:
            problem = printable(error.problem if isinstance(error, InputError) else str(error))
    with engines.held():
        steps = engines.interviewer.next(patient, chosen)
    step = next((s for s in steps if s.question), None)
    if step is None:
        return _result(request, document, patient, policy)
    return _render(
        request,
        "question.html",
        status=422 if problem else 200,
        policy=policy,
        record=json.dumps(document, ensure_ascii=False),
        steps=steps,
        step=step,
        field=engines.rules.fields[step.question.field] if step.question else None,
        problem=problem,
        answered=len(patient.answered),
    )


@router.post("/result", response_class=HTMLResponse)
def result(request: Request, policy: str = Form("all"), record: str = Form("{}")) -> HTMLResponse:
    document, patient = _record(record, _engines(request))
    return _result(request, document, patient, policy)


@router.post("/record", response_class=HTMLResponse)
async def from_record(
    request: Request, policy: str = Form("all"), document: str = Form(""), upload: UploadFile | None = None
) -> HTMLResponse:
    """A record pasted or uploaded: its decision (or the one-line error, in the page)."""
    text = document
    source = "pasted record"
    if upload is not None and upload.filename:
        data = await upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise InputError(upload.filename, "", "file is over 1 MiB, far larger than a patient record")
        try:
            text, source = data.decode("utf-8-sig"), upload.filename
        except UnicodeDecodeError as error:
            raise InputError(
                upload.filename, "", f"not UTF-8 text (byte {error.start}); save it as UTF-8"
            ) from None
    # off the event loop: a pasted megabyte takes a tenth of a second to parse
    parsed, patient = await run_in_threadpool(_record, text, _engines(request), source)
    return await run_in_threadpool(_result, request, parsed, patient, policy)


@router.post("/example", response_class=HTMLResponse)
def example(request: Request, example: str = Form(...), policy: str = Form("all")) -> HTMLResponse:
    engines = _engines(request)
    if example not in engines.examples:
        raise InputError("example", example, "not one of the bundled examples")
    document = engines.examples[example]
    return _result(request, dict(document), validate(document, engines.rules, example), policy)


@router.post("/letter")
def letter(request: Request, policy: str = Form("all"), record: str = Form("{}")) -> Response:
    """The Markdown of `explain --format markdown`, as a file to attach to a referral letter."""
    engines = _engines(request)
    _, patient = _record(record, engines)
    with engines.held():
        decisions = engines.interviewer.decide(patient, engines.interviewer.chosen(patient, _policy(policy)))
    text = "\n---\n\n".join(decision_markdown(d, engines.rules) for d in decisions)
    return Response(
        text,
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": attachment(patient.id)},
    )


def attachment(patient: str) -> str:
    """The Content-Disposition of a patient's letter: a plain ASCII `filename` every client reads,
    and the id as written (`患者-7`, `Ελένη`) in RFC 6266's `filename*` (UTF-8, percent-encoded).
    A header is Latin-1: the id itself there was a 500."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in patient)[:60]
    ascii_name = "".join(c if c.isascii() else "-" for c in name).strip("-") or "patient"
    header = f'attachment; filename="llr-asp-{ascii_name}.md"'
    if name.isascii():
        return header
    return f"{header}; filename*=UTF-8''{quote(f'llr-asp-{name}.md', safe='')}"


def _policy(policy: str) -> str | None:
    return None if policy in ("", "record") else policy


def _result(request: Request, document: dict[str, Any], patient: Patient, policy: str) -> HTMLResponse:
    engines = _engines(request)
    with engines.held():
        reasoner = engines.interviewer
        decisions = reasoner.decide(patient, reasoner.chosen(patient, _policy(policy)))
        changes = {
            d.policy.id: whatif(reasoner, engines.whatif, patient, d.policy, seconds=WHATIF_SECONDS)
            for d in decisions
            if d.decision != "eligible"
        }
    return _render(
        request,
        "result.html",
        policy=policy,
        record=json.dumps(document, ensure_ascii=False),
        decisions=decisions,
        changes=changes,
        patient=patient,
        named=bool(document.get("id")),
    )
