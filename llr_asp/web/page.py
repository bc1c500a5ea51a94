"""The page for clinicians: the adaptive questionnaire, the decision with its reasons, what is
missing, what-if, and the letter. Server-rendered forms that work without JavaScript.

The answers so far travel in each POST body as the patient record (a hidden field), never in a
URL; the server keeps nothing between requests. Every step goes through the same core calls as
the CLI: `Interviewer.next` (ask, next), `Reasoner.decide` (explain), `whatif`, and the letter
of `explain --format letter` (plain text, to copy) or `--format markdown`. A record that names
no procedure is first asked which: the findings in a record are not tied to a joint.

Every route that reasons is admitted as the API's are (`Engines.run`): the same bounded queue
and deadline (503 past them), and a request whose client hung up while it waited is dropped
unreasoned (300 abandoned POST /result were each reasoned, and a clinician's page then took
12-28 s: issue 38). Records and pages are parsed and rendered off the event loop.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from ..core.documents import for_procedure, is_response, validate
from ..core.errors import InputError, printable
from ..core.patient import MAX_BYTES, Patient, parse
from ..core.ruleset import Field, Policy, Value
from ..engines.interview import Question, parse_answer
from ..engines.whatif import whatif
from ..formats.fhir import with_answer, without_answer
from ..views.letter import escape, plain_letter, receipt_id
from ..views.markdown import decision_markdown
from ..views.pictures import decision_tree
from ..views.questionnaire import with_value, without_value
from ..views.wording import (
    CHANGE_KEY,
    VERDICT_WORDS,
    after_refusal,
    cannot_words,
    contest_line,
    contested_summary,
    evidence_words,
    flags,
    headline,
    leads_to,
    marked,
    resting_words,
    root_status,
    set_words,
    steps_words,
    tone,
    urgent_note,
    value_words,
    withheld_words,
)
from .api import INLINE_BYTES, WHATIF_SECONDS, hung_up
from .engines import Engines
from .receipts import receipts

_T = TypeVar("_T")

FORM_PART = 4 * MAX_BYTES
"""The largest field of a page form: the record, URL-encoded (a 1 MiB record of non-ASCII text is
three times as long). FastAPI's form parser refused any field over 1 MiB as it arrived, with a
400 of raw JSON before the page could say "over 1 MiB" (a 400 KB record of Greek names); the
guard bounds the whole form (max_form_body), the page then the record (`_record`)."""
_OPTIONS: dict[str, Any] = (  # form_limits: FastAPI 0.165 and later
    {"form_limits": {"max_part_size": FORM_PART}}
    if "form_limits" in inspect.signature(APIRouter).parameters
    else {}
)
router = APIRouter(include_in_schema=False, **_OPTIONS)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(
    VERDICT=VERDICT_WORDS,
    MARK={"met": "✔", "not_met": "✘", "unknown": "?"},
    STATUS={"met": "met", "not_met": "not met", "unknown": "unknown"},
    headline=headline,
    contested_summary=contested_summary,
    contest_line=contest_line,
    set_words=set_words,
    value_words=value_words,
    urgent_note=urgent_note,
    withheld_words=withheld_words,
    resting_words=resting_words,
    cannot_words=cannot_words,
    steps_words=steps_words,
    after_refusal=after_refusal,
    root_status=root_status,
    evidence_words=evidence_words,
    flags=flags,
    CHANGE_KEY=CHANGE_KEY,
    marked=marked,
    tone=tone,
    leads_to=leads_to,
    show=lambda v: "unknown" if v is None else json.dumps(v) if isinstance(v, bool) else str(v),
    decision_svg=lambda d, rules: Markup(decision_tree(d, rules)),  # the decision as a picture, in words
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


async def _reasoned(request: Request, work: Callable[[Engines], _T]) -> _T:
    """`work` on the engines, admitted as the API's work is: queued (503 past the queue or the
    deadline), dropped unreasoned if the client hangs up while it waits."""
    return await _engines(request).run(work, lambda: hung_up(request))


async def _shown(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page rendered off the event loop (a decision's page with its tree takes milliseconds)."""
    return await run_in_threadpool(_render, request, name, status, **context)


async def _read(text: str, engines: Engines, source: str = "record") -> tuple[dict[str, Any], Patient]:
    """`_record`, off the event loop when the record is more than a few KiB."""
    if len(text) <= INLINE_BYTES:
        return _record(text, engines, source)
    return await run_in_threadpool(_record, text, engines, source)


def _record(text: str, engines: Engines, source: str = "record") -> tuple[dict[str, Any], Patient]:
    """The patient record carried by a form, validated as `explain` validates a file."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InputError(source, "", "over 1 MiB, far larger than a patient record")
    document = parse(text or "{}", source)
    return document, validate(document, engines.rules, source)


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> HTMLResponse:
    """The start page; `?policy=ID` (a CDS card's link) chooses the procedure beforehand."""
    chosen = request.query_params.get("policy")
    policies = _engines(request).rules.policies
    return _render(
        request,
        "start.html",
        examples=sorted(_engines(request).examples),
        chosen=chosen if chosen in policies else None,
    )


@router.post("/ask", response_class=HTMLResponse)
async def ask(
    request: Request,
    policy: str = Form(""),
    record: str = Form("{}"),
    field: str = Form(""),
    answer: str = Form(""),
    unknown: str = Form(""),
    trail: str = Form(""),
    reask: str = Form(""),
    back: str = Form(""),
    change: str = Form(""),
) -> HTMLResponse:
    """Keep the answer to `field` (if any), then ask the next question, or show the decision.

    `trail`: the fields answered in this session, in order (Back takes the last one away and
    asks it again; Change does so for any). `reask`: fields the record gives as not known that
    may be asked again (the result page's "Answer the remaining questions")."""
    engines = _engines(request)
    document, patient = await _read(record, engines)
    chosen = _chosen(engines, policy, patient)
    if chosen is None:
        return _choose(request, "/ask", document)
    answered = trail.split()
    again = set(reask.split())
    problem = None
    forced = None  # a field asked again at the clinician's wish (Back, Change)
    if (back and answered) or change:
        forced = answered.pop() if back and answered else change
        if forced not in engines.rules.fields:
            raise InputError("answer", forced, "not a field of the questionnaire")
        answered = [f for f in answered if f != forced]
        document = _unanswered(document, forced)
        patient = validate(document, engines.rules, "answer")
    elif field:
        spec = engines.rules.fields.get(field)
        if spec is None:
            raise InputError("answer", field, "not a field of the questionnaire")
        try:
            value = parse_answer("unknown" if unknown else answer, spec)
            updated = _answered(document, spec, value)
            document, patient = updated, validate(updated, engines.rules, "answer")
            answered = [*[f for f in answered if f != field], field]
            again.discard(field)
        except (ValueError, InputError) as error:
            problem = printable(error.problem if isinstance(error, InputError) else str(error))
    steps = await _reasoned(request, lambda held: held.interviewer.next(patient, chosen, again))
    step = next((s for s in steps if s.question), None)
    if forced is not None:
        question = Question.of(engines.rules.fields[forced], engines.rules.caveats(forced, chosen))
        step = dataclasses.replace(step or steps[0], question=question)
    elif step is None and problem is None:
        return await _result(request, document, patient, _named(chosen))
    asked = step.question if step and step.question else None
    return await _shown(
        request,
        "question.html",
        status=422 if problem else 200,
        policy=_named(chosen),
        record=json.dumps(document, ensure_ascii=False),
        steps=steps,
        step=step,
        field=engines.rules.fields[asked.field] if asked else engines.rules.fields[field],
        caveats=asked.caveats if asked else engines.rules.caveats(field, chosen),
        problem=problem,
        answers=[(f, patient.values.get(f)) for f in answered if f in patient.answered],
        trail=answered,
        reask=sorted(again),
    )


def _answered(document: dict[str, Any], field: Field, value: Value | None) -> dict[str, Any]:
    """The document with the clinician's answer to `field`: a pasted QuestionnaireResponse as
    an item of its own (its answers are read from its items), a record at its dotted path."""
    if is_response(document):
        return with_answer(document, field, value)
    return with_value(document, field.path, value)


def _unanswered(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The document without its answer to `path` (Back, Change: asked again)."""
    return without_answer(document, path) if is_response(document) else without_value(document, path)


def _chosen(engines: Engines, policy: str, patient: Patient) -> list[Policy] | None:
    """The policies a page is about: the one chosen, else the one the record names (a
    QuestionnaireResponse's questionnaire names it too), each in the edition in force on the
    record's referral date, else today; None when neither says (ask)."""
    # (a form names its procedure in its canonical, its contained form or llr-asp's tag; its
    # answers are for that one alone, "every procedure" included, as explain -p all reads them)
    named = (patient.policy or patient.answers_for) if policy in ("", "record") else policy
    if not named:
        return None
    chosen = engines.rules.select(named, engines.rules.date_of(patient.values))
    return for_procedure(patient, chosen, every=named == "all")


def _named(chosen: list[Policy]) -> str:
    return chosen[0].id if len(chosen) == 1 else "all"


def _choose(request: Request, action: str, document: dict[str, Any]) -> HTMLResponse:
    """The record names no procedure and none was chosen: ask which, first (the findings in a
    record are not tied to a joint, so only one policy's verdict applies)."""
    return _render(request, "choose.html", action=action, record=json.dumps(document, ensure_ascii=False))


@router.post("/result", response_class=HTMLResponse)
async def result(request: Request, policy: str = Form(""), record: str = Form("{}")) -> HTMLResponse:
    document, patient = await _read(record, _engines(request))
    return await _result(request, document, patient, policy)


@router.post("/record", response_class=HTMLResponse)
async def from_record(
    request: Request, policy: str = Form(""), document: str = Form(""), upload: UploadFile | None = None
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
    return await _result(request, parsed, patient, policy)


@router.post("/example", response_class=HTMLResponse)
async def example(request: Request, example: str = Form(...), policy: str = Form("")) -> HTMLResponse:
    engines = _engines(request)
    if example not in engines.examples:
        raise InputError("example", example, "not one of the bundled examples")
    document = engines.examples[example]
    return await _result(request, dict(document), validate(document, engines.rules, example), policy)


@router.post("/letter")
async def letter(
    request: Request,
    policy: str = Form(""),
    record: str = Form("{}"),
    format: str = Form("text"),
    receipt: Annotated[Optional[list[str]], Form()] = None,
) -> Response:
    """The letter of `explain --format letter` (plain text, to paste into a clinical record) or
    `--format markdown`, as a file. It names the receipts the page's decisions were given (the
    page's form sends them back): a download is not another decision, so it is not receipted
    again, and the activity counts it once. A receipt sent back is used only if this service
    signed it, its log holds it, and it says what deciding these answers again says; otherwise
    (a form of an older page, a receipt made up) the letter's decision gets a receipt of its own."""
    engines = _engines(request)
    _, patient = await _read(record, engines)
    chosen = _chosen(engines, policy, patient) or engines.rules.select("all")
    signer = receipts(request)
    given = (receipt or [])[:8]  # a page has one a policy: a form with more is not a page's

    def decided(held: Engines) -> tuple[list[Any], dict[str, str]]:
        decisions = held.interviewer.decide(patient, chosen)
        return decisions, {
            d.policy.id: signer.reused(given, d, patient) or signer.issue(d, patient) for d in decisions
        }

    decisions, signed = await _reasoned(request, decided)
    return await run_in_threadpool(_letter, engines, patient, decisions, format, signed)


def _letter(
    engines: Engines, patient: Patient, decisions: list[Any], format: str, signed: dict[str, str]
) -> Response:
    today = datetime.date.today()
    if format == "markdown":
        preface = f"*{escape(EVERY_POLICY_PAGE)}*\n\n" if len(decisions) > 1 else ""
        text = preface + "\n---\n\n".join(
            decision_markdown(d, engines.rules, today=today)
            + f"\n\nDecision receipt: {receipt_id(signed[d.policy.id])}\n"
            for d in decisions
        )
        return Response(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": attachment(patient.id, "md")},
        )
    text = plain_letter(
        decisions,
        engines.rules,
        today,
        preface=EVERY_POLICY_PAGE if len(decisions) > 1 else None,
        receipts=signed,
    )
    return Response(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": attachment(patient.id, "txt")},
    )


EVERY_POLICY_PAGE = (
    "Every policy was evaluated, as asked: the findings in a record are not tied to a joint, so "
    "read only the verdict for the procedure requested."
)


def attachment(patient: str, suffix: str = "md") -> str:
    """The Content-Disposition of a patient's letter: a plain ASCII `filename` every client reads,
    and the id as written (`患者-7`, `Ελένη`) in RFC 6266's `filename*` (UTF-8, percent-encoded).
    A header is Latin-1: the id itself there was a 500."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in patient)[:60]
    ascii_name = "".join(c if c.isascii() else "-" for c in name).strip("-") or "patient"
    header = f'attachment; filename="llr-asp-{ascii_name}.{suffix}"'
    if name.isascii():
        return header
    return f"{header}; filename*=UTF-8''{quote(f'llr-asp-{name}.{suffix}', safe='')}"


async def _result(request: Request, document: dict[str, Any], patient: Patient, policy: str) -> HTMLResponse:
    engines = _engines(request)
    chosen = _chosen(engines, policy, patient)
    if chosen is None:
        return _choose(request, "/result", document)

    signer = receipts(request)

    def decided(held: Engines) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
        reasoner = held.interviewer
        decisions = reasoner.decide(patient, chosen)
        changes = {
            d.policy.id: whatif(reasoner, held.whatif, patient, d.policy, seconds=WHATIF_SECONDS)
            for d in decisions
            if d.decision != "eligible"
        }
        return decisions, changes, {d.policy.id: signer.issue(d, patient) for d in decisions}

    decisions, changes, signed = await _reasoned(request, decided)
    return await run_in_threadpool(
        _result_page, request, engines, document, patient, chosen, decisions, changes, signed
    )


def _result_page(
    request: Request,
    engines: Engines,
    document: dict[str, Any],
    patient: Patient,
    chosen: list[Policy],
    decisions: list[Any],
    changes: dict[str, Any],
    signed: dict[str, str],
) -> HTMLResponse:
    today = datetime.date.today()
    unknown = sorted(f for d in decisions for f in (*d.missing, *d.to_settle) if f not in patient.values)
    return _render(
        request,
        "result.html",
        policy=_named(chosen),
        record=json.dumps(document, ensure_ascii=False),
        decisions=decisions,
        changes=changes,
        patient=patient,
        named=bool(document.get("id")),
        today=today,
        reask=[f for f in dict.fromkeys(unknown) if f in patient.answered],
        remaining=list(dict.fromkeys(unknown)),
        letter=plain_letter(
            decisions,
            engines.rules,
            today,
            preface=EVERY_POLICY_PAGE if len(decisions) > 1 else None,
            receipts=signed,
        ),
        receipts=[(d.policy, receipt_id(signed[d.policy.id]), signed[d.policy.id]) for d in decisions],
    )
