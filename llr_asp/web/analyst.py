"""For policy analysts: the literate policy at /policies/{id} (the page `llr-asp report` writes,
in the service's own layout), and the summary of a cohort at /api/v1/batch/summary (the JSON of
`llr-asp batch --summary-json`, or with format=html the pictures of `--report`).

A witness on the policy page opens its decision through the clinicians' /result form (POST:
the record travels in the body). The literate page runs `analyze` once per rule set and day and
is kept; a cohort is read as /api/v1/batch reads it, decided chunk by chunk on the engines'
thread, so other requests are answered between chunks.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from ..core.documents import Document
from ..core.errors import UsageError
from ..core.ruleset import RuleSet
from ..engines.batch import CHUNK, Result, Summary, chunks
from ..engines.literate import literate
from ..formats.readers import read_jsonl
from ..views.cohort_page import cohort_fragment
from ..views.policy_page import html_fragment
from .api import PolicyQuery, _spooled, admitted, engines
from .engines import Engines
from .page import templates
from .responses import JSON

router = APIRouter()
_pages: dict[tuple[str, str, str, datetime.date], str] = {}
_building = threading.Lock()


def literate_page(rules: RuleSet, policy: str) -> str:
    """The literate policy as HTML, built once per rule set, policy and day (`analyze` is most
    of a second; the findings of a day do not change)."""
    key = (rules.digest, str(rules.directory), policy, datetime.date.today())
    with _building:
        if key not in _pages:
            _pages[key] = html_fragment(literate(rules, policy), "/result")
            while len(_pages) > 8:
                del _pages[next(iter(_pages))]
        return _pages[key]


@router.get("/policies/{policy}", response_class=HTMLResponse, include_in_schema=False)
def policy_page(request: Request, policy: str) -> HTMLResponse:
    rules = engines(request).rules
    chosen = rules.select(policy)
    if len(chosen) != 1:
        raise UsageError("one policy at a time: /policies/<id> (see /api/v1/policies)")
    body = Markup(literate_page(rules, chosen[0].id))  # built from escaped parts
    context = {"rules": rules, "policy": chosen[0], "body": body}
    return templates.TemplateResponse(request, "policy.html", context)


@router.post(
    "/api/v1/batch/summary",
    summary="Decide a cohort and summarise it, as `llr-asp batch --summary-json` (format=html: `--report`)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One patient record per line (JSON Lines); at most 100 MiB.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
    response_model=None,
)
async def batch_summary(
    request: Request,
    policy: str | None = PolicyQuery,
    format: Literal["json", "html"] = Query(
        "json", description="json: the summary; html: a page with its pictures (the funnel per policy)."
    ),
) -> Response:
    held = engines(request)
    chosen = held.screener.policies(policy)  # an unknown policy: 404 before anything is read
    summary = Summary(held.rules)

    def screening(chunk: list[tuple[int, Document]]) -> Callable[[Engines], list[Result]]:
        return lambda held: held.screener.screen(chunk, "line", chosen)

    state = admitted(request)  # a cohort as batch takes one: its bound and its slot
    try:
        with await _spooled(request) as cohort:
            for chunk in chunks(read_jsonl(cohort), CHUNK):
                for result in await held.run(screening(chunk)):
                    summary.add(result)
    finally:
        state.batches -= 1
    if format == "html":
        body = Markup(cohort_fragment(summary, "the cohort sent"))  # built from escaped parts
        return templates.TemplateResponse(request, "cohort.html", {"rules": held.rules, "body": body})
    return JSON(summary.to_json())
