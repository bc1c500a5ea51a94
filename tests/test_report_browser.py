"""The analysts' pages and pictures in a real browser (Debian's Chromium, driven by Playwright):
/policies/{id}, the report file, the decision picture on the result page and the cohort report
render with no console error and no CSP violation; every picture has an accessible name and its
boxes fit their words; a witness button opens that patient's decision.

One server and one browser for the module (those of test_web_page). Screenshots of each picture
go to the test's temporary folder (LLR_ASP_SCREENSHOTS=DIR keeps them).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web_page import browser, server, submit  # noqa: F401 (the module's fixtures)
from typer.testing import CliRunner

from llr_asp.cli import app

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.browser
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
FITS = """svg => {
  const boxes = [...svg.querySelectorAll('rect')].map(r => r.getBBox());
  const overflowing = [];
  for (const t of svg.querySelectorAll('text')) {
    const x = +t.getAttribute('x'), y = +t.getAttribute('y');
    const box = boxes.find(r => x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height);
    const b = t.getBBox();
    if (box && b.x + b.width > box.x + box.width + 0.5) overflowing.push(t.textContent);
  }
  return overflowing;
}"""
runner = CliRunner()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:  # noqa: F811 (the imported fixtures)
    context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900})
    context.add_init_script(WATCH)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.errors = []  # console errors and uncaught exceptions
    opened.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: opened.errors.append(str(e)))
    yield opened
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("LLR_ASP_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def clean(page: Any) -> None:
    """No console error, no uncaught exception, no CSP violation on the page."""
    assert page.errors == []
    assert page.evaluate("window.__violations") == []


def fits(page: Any, selector: str) -> None:
    for svg in page.locator(selector).all():
        assert svg.evaluate(FITS) == [], "a box is narrower than its words"


@pytest.mark.parametrize(
    ("policy", "reference"), [("hip-resurfacing", "ARP 55"), ("knee-resurfacing", "ARP 60")]
)
def test_the_policy_page_renders_cleanly_with_its_tree(
    page: Any, shots: Path, policy: str, reference: str
) -> None:
    page.goto("/")
    submit(
        page.get_by_role("link", name=f"{reference} Policy for")
    )  # the URL and the picture looked at once loaded
    assert page.url.endswith(f"/policies/{policy}")
    tree = page.get_by_role("img", name=f"Requirement tree of {reference}")
    assert tree.is_visible()
    assert "every requirement" not in (tree.get_attribute("aria-describedby") or "")
    assert page.locator("p.sentence").count() > 20
    fits(page, "figure.picture svg")
    page.locator("figure.picture").screenshot(path=str(shots / f"tree-{policy}.png"))
    page.locator(".sentence-block.kind-encoded").nth(3).screenshot(path=str(shots / f"sentence-{policy}.png"))
    page.locator("details.rules summary").first.click()  # collapsible, without JavaScript
    assert page.locator("pre.rules").first.is_visible()
    clean(page)


def test_a_witness_opens_the_decision_it_shows(page: Any, shots: Path) -> None:
    page.goto("/policies/hip-resurfacing")
    name = "witness hip-resurfacing exclusion_outside_criteria no_contraindication"
    submit(page.get_by_role("button", name=f"Open the decision for the witness “{name}”"))
    assert page.url.endswith("/result")  # posted: the record is in the body, not the URL
    assert page.locator("h1").inner_text() == f"Decision for {name}"
    hip = page.locator("section.decision", has_text="ARP 55")
    assert "NOT ELIGIBLE" in hip.locator("h2").inner_text()  # a woman who meets every listed criterion
    clean(page)
    page.goto("/policies/hip-resurfacing")
    reading = "witness hip-resurfacing C4.cut-off"
    submit(page.get_by_role("button", name=f"Open the decision for the witness “{reading}”"))
    assert page.locator("h1").inner_text() == f"Decision for {reading}"
    hip = page.locator("section.decision", has_text="ARP 55").inner_text()
    assert "(C4): A guess at the lost words" in hip and "ON THE ADOPTED READING" in hip  # rests on it
    clean(page)


def test_the_decision_picture_on_the_result_page(page: Any, shots: Path) -> None:
    page.goto("/")
    page.select_option("#example", "route-c4-sfi")
    page.locator("form[action='/example'] input[name=policy][value='hip-resurfacing']").check()
    submit(page.get_by_role("button", name="Show the decision"))
    hip = page.locator("section.decision").first
    hip.get_by_text("The decision as a picture").click()
    name = "ARP 55 decision for route-c4-sfi: ELIGIBLE ON THE ADOPTED READING — the ICB must confirm"
    picture = hip.get_by_role("img", name=name)
    assert picture.is_visible()
    words = picture.locator("text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert "✔ met" in words and any(w.startswith("⚑ contested:") for w in words)
    fits(page, "section.decision svg")
    hip.locator("figure.picture").screenshot(path=str(shots / "decision-route-c4-sfi.png"))
    clean(page)


def test_the_report_file_renders_cleanly_and_its_witnesses_reach_the_service(
    page: Any,
    server: str,  # noqa: F811
    shots: Path,
    tmp_path: Path,
) -> None:
    report = tmp_path / "knee.html"
    result = runner.invoke(app, ["report", "knee-resurfacing", "-o", str(report), "--server", server])
    assert result.exit_code == 0, result.stderr
    page.goto(report.as_uri())
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("Arial")  # its stylesheet
    assert page.get_by_role("img", name="Requirement tree of ARP 60").is_visible()
    fits(page, "svg")
    page.screenshot(path=str(shots / "report-knee.png"))
    clean(page)
    name = "witness knee-resurfacing exclusion_outside_criteria compartments"
    page.get_by_role("button", name=f"Open the decision for the witness “{name}”").click()
    page.wait_for_url(f"{server}/result")
    assert page.locator("h1").inner_text() == f"Decision for {name}"
    knee = page.locator("section.decision", has_text="ARP 60")
    assert "NOT ELIGIBLE" in knee.locator("h2").inner_text()


def test_the_cohort_pictures_render_cleanly(page: Any, shots: Path, tmp_path: Path) -> None:
    source = tmp_path / "cohort.jsonl"
    documents = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    source.write_text("".join(json.dumps(d) + "\n" for d in documents))
    report = tmp_path / "cohort.html"
    result = runner.invoke(app, ["batch", str(source), "-j", "1", "--report", str(report)])
    assert result.exit_code == 0, result.stderr
    page.goto(report.as_uri())
    for policy, reference in (("hip-resurfacing", "ARP 55"), ("knee-resurfacing", "ARP 60")):
        # a record that names a procedure is decided for it only (issue 32): each funnel counts its own
        count = sum(1 for d in documents if d.get("policy") in (None, policy))
        assert page.get_by_role(
            "img", name=re.compile(f"^{reference}: how {count} patients go through")
        ).is_visible()
    assert page.get_by_role("img", name=re.compile("answers most often missing")).count() == 2
    page.locator("figure.picture").first.screenshot(path=str(shots / "funnel-hip.png"))
    page.screenshot(path=str(shots / "cohort.png"), full_page=True)
    clean(page)
