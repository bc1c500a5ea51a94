"""The clinicians' page in a real browser: Debian's headless Chromium, driven by Playwright.

The server runs in this process on 127.0.0.1 (a free port) for the module. Screenshots of the
main screens go to the test's temporary folder (LLR_ASP_SCREENSHOTS=DIR keeps them there).
Skipped, with the reason, where Chromium or Playwright is not installed: `.ci/run` installs
Debian's chromium; never `playwright install`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'llr-asp[web]'")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
)
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None
)
if CHROMIUM is None:
    pytest.skip("no Chromium found: apt-get install -y chromium (Debian's build)", allow_module_level=True)


from serving import serving  # noqa: E402

from llr_asp.web import create_app  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "examples"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(create_app(), log_level="warning", access_log=False) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=server, viewport={"width": 1000, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("LLR_ASP_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def values(example: str) -> dict[str, Any]:
    """The example's answers by dotted field path."""
    document = json.loads((EXAMPLES / f"{example}.json").read_text())
    flat: dict[str, Any] = {}
    for group, fields in document.items():
        if isinstance(fields, dict) and group != "meta":
            flat.update({f"{group}.{name}": value for name, value in fields.items()})
        elif group == "sex":
            flat["sex"] = fields
    return flat


def submit(button: Any) -> None:
    """Click a button (or link) that leads to another page, and wait for that page: a look taken
    meanwhile may see the page before it (a count of questions taken while the document was
    replaced saw none and ended a walk early: seen once in CI)."""
    with button.page.expect_navigation():
        button.click()


def answer_all(page: Any, answers: dict[str, Any], shots: Path | None = None) -> int:
    """Answer each question the page asks from `answers` (absent: "Not known"); the count."""
    asked = 0
    while page.locator("input[name=field]").count():
        if shots is not None and asked == 0:
            page.screenshot(path=str(shots / "question.png"), full_page=True)
        answer_one(page, answers)
        asked += 1
        assert asked < 30, "the questionnaire did not end"
    return asked


def answer_one(page: Any, answers: dict[str, Any]) -> None:
    """Answer the question on the page from `answers` (absent: "Not known")."""
    field = page.locator("input[name=field]").get_attribute("value")
    value = answers.get(field)
    if page.locator("input[type=number]").count():
        if value is None:
            submit(page.get_by_role("button", name="Not known"))
            return
        page.locator("input[type=number]").fill(str(value))
    else:
        choice = (
            "unknown" if value is None else ("yes" if value is True else "no" if value is False else value)
        )
        page.locator(f"input[name=answer][value='{choice}']").check()
    submit(page.get_by_role("button", name="Continue"))


def start(page: Any, policy: str) -> None:
    page.goto("/")
    page.locator(f"form[action='/ask'] input[name=policy][value='{policy}']").check()
    submit(page.locator("form[action='/ask']").get_by_role("button", name="Start"))


def show_example(page: Any, example: str, policy: str = "hip-resurfacing") -> None:
    page.goto("/")
    page.select_option("#example", example)
    page.locator(f"form[action='/example'] input[name=policy][value='{policy}']").check()
    submit(page.get_by_role("button", name="Show the decision"))


def paste(page: Any, record: dict[str, Any]) -> None:
    """A record pasted on the start page, its procedure left to the record ("the one the record
    names", the default)."""
    page.goto("/")
    page.fill("#document", json.dumps(record))
    submit(page.locator("form[action='/record']").get_by_role("button", name="Check this record"))


def first_screen(page: Any) -> str:
    """The text a clinician sees without scrolling."""
    return str(
        page.evaluate(
            """() => { const seen = []; const h = window.innerHeight;
            for (const e of document.querySelectorAll('main h1, main h2, main h3, main p, main li, main button, main .verdict')) {
              const r = e.getBoundingClientRect(); if (r.bottom > 0 && r.top < h && r.height > 0) seen.push(e.innerText); }
            return seen.join('\\n'); }"""
        )
    )


def test_the_questionnaire_reaches_eligible(page: Any, shots: Path) -> None:
    page.goto("/")
    page.screenshot(path=str(shots / "start.png"), full_page=True)
    start(page, "hip-resurfacing")
    asked = answer_all(page, values("route-c1-pain"), shots)
    assert asked < 18  # only what can still change the decision
    heading = page.locator("section.decision h2").inner_text()
    assert heading == "Policy for Hip Resurfacing (ARP 55): ✔ ELIGIBLE"
    assert page.locator("section.decision").count() == 1  # the procedure asked for, only
    page.screenshot(path=str(shots / "eligible.png"), full_page=True)


def test_while_questions_remain_the_page_says_not_decided_yet_before_any_verdict(page: Any) -> None:
    """The C5 walk: after "documented: no" the adopted reading refuses, but the urgent route's
    questions are still to come; a verdict shown first was read as the answer (GP review)."""
    start(page, "hip-resurfacing")
    answers = values("route-c5-independence")
    so_far = []
    while page.locator("input[name=field]").count():
        running = page.locator("section.running p").first.inner_text()
        assert running.startswith("Policy for Hip Resurfacing (ARP 55): Not decided yet — up to"), running
        before, after = running.split(" So far: ")
        assert "ELIGIBLE" not in before and "UNDETERMINED" not in before  # no verdict before it
        so_far.append(after)
        answer_one(page, answers)
    assert any(a.startswith("⚑ NOT ELIGIBLE") for a in so_far), so_far  # the case the GP misread
    assert page.locator("section.decision h2").count() == 1


def test_the_questionnaire_refuses_a_woman_plainly(page: Any, shots: Path) -> None:
    """The hip procedure is contra-indicated in women: a plain refusal, with no reading that
    would fund her (that one is for analysts: the policy's own text refutes it)."""
    start(page, "hip-resurfacing")
    answer_all(page, {**values("route-c1-pain"), "sex": "female"})
    section = page.locator("section.decision")
    assert section.locator("h2").inner_text().endswith("✘ NOT ELIGIBLE")
    assert section.locator(".contested-box").count() == 0
    assert "Individual Funding Request" in section.inner_text()
    assert "✔ met: Not female: the procedure is contra-indicated in women" not in section.inner_text()
    assert "✘ not met: Not female: the procedure is contra-indicated in women" in section.inner_text()
    page.screenshot(path=str(shots / "not-eligible.png"), full_page=True)


def test_a_contested_eligible_is_never_green(page: Any, shots: Path) -> None:
    """The issue's route-c4-radiology-moderate: each of two readings refuses it, so the badge
    says ELIGIBLE ON THE ADOPTED READING, in the contested style, never the green one."""
    show_example(page, "route-c4-radiology-moderate")
    badge = page.locator("section.decision").first.locator("h2 .verdict")
    assert badge.inner_text() == "⚑ ELIGIBLE ON THE ADOPTED READING — the ICB must confirm"
    assert badge.get_attribute("class") == "verdict verdict-contested"
    green = "rgb(0, 127, 59)"
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") != green
    assert page.locator(".verdict-eligible").count() == 0
    page.screenshot(path=str(shots / "eligible-contested.png"), full_page=True)


def test_unknown_answers_leave_it_undetermined_with_what_is_missing(page: Any, shots: Path) -> None:
    start(page, "knee-resurfacing")
    answer_all(page, {})
    section = page.locator("section.decision")
    assert "UNDETERMINED" in section.locator("h2").inner_text()
    assert section.locator("ul.missing li").count() > 0
    page.screenshot(path=str(shots / "undetermined.png"), full_page=True)


def test_answering_the_remaining_questions_asks_the_unknowns_again(page: Any) -> None:
    """A record with a null answer still needed: "Answer the remaining questions" asks it again
    (null and left out both mean not known), and a new answer decides it."""
    record = {**json.loads((EXAMPLES / "route-c1-pain.json").read_text()), "policy": "hip-resurfacing"}
    record["pain"] = {**record["pain"], "severity": None}
    paste(page, record)
    section = page.locator("section.decision")
    assert "UNDETERMINED" in section.locator("h2").inner_text()
    assert "given as not known" in section.inner_text()
    submit(section.get_by_role("button", name="Answer the remaining questions"))
    assert page.locator("input[name=field]").get_attribute("value") == "pain.severity"
    page.locator("input[name=answer][value='severe']").check()
    submit(page.get_by_role("button", name="Continue"))
    assert page.locator("section.decision h2").inner_text().endswith("✔ ELIGIBLE")


def test_a_pasted_knee_record_shows_only_the_knee(page: Any) -> None:
    record = {**json.loads((EXAMPLES / "refused-knee-three-compartments.json").read_text())}
    record["policy"] = "knee-resurfacing"
    paste(page, record)
    headings = page.locator("section.decision h2").all_inner_texts()
    assert headings == ["Policy for Knee Resurfacing (ARP 60): ✘ NOT ELIGIBLE"]


def test_a_record_that_names_no_procedure_is_asked_which_first(page: Any) -> None:
    paste(page, {"id": "p-2", "sex": "female"})
    assert page.locator("h1").inner_text() == "Which procedure is the patient referred for?"
    assert page.locator("section.decision").count() == 0  # no verdict before the procedure is known
    page.locator("input[name=policy][value='knee-resurfacing']").check()
    submit(page.get_by_role("button", name="Continue"))
    assert page.locator("section.decision h2").all_inner_texts()[0].startswith("Policy for Knee Resurfacing")


def test_the_first_screen_holds_the_verdict_and_the_next_step(page: Any) -> None:
    for example, step in (
        ("undetermined-pain-unknown", "Answer the remaining questions"),
        ("route-c5-independence", "ask the ICB to confirm"),
        ("refused-b-four-months", "does not meet the policy's criteria"),
    ):
        show_example(page, example)
        seen = first_screen(page)
        assert "Policy for Hip Resurfacing (ARP 55)" in seen and "What to do next" in seen, example
        assert step in seen, (example, seen)


def test_the_back_link_and_change_keep_the_other_answers(page: Any) -> None:
    start(page, "hip-resurfacing")
    page.locator("input[name=answer][value='male']").check()
    submit(page.get_by_role("button", name="Continue"))
    first = page.locator("input[name=field]").get_attribute("value")
    page.locator("input[name=answer][value='yes']").check()
    submit(page.get_by_role("button", name="Continue"))
    second = page.locator("input[name=field]").get_attribute("value")
    submit(page.get_by_role("button", name="‹ Back to the previous question"))
    assert page.locator("input[name=field]").get_attribute("value") == first  # asked again
    answers = page.locator(".answers").inner_text()
    assert "What is the patient's sex?" in answers and "male" in answers  # the earlier answer kept
    submit(page.get_by_role("button", name="Change the answer to: What is the patient's sex?"))
    assert page.locator("input[name=field]").get_attribute("value") == "sex"
    assert second != first


def test_the_plain_letter_has_no_markdown_escapes_or_field_paths(page: Any) -> None:
    show_example(page, "refused-b-four-months")
    letter = page.locator("#letter-text").input_value()
    assert letter.startswith("Policy for Hip Resurfacing (ARP 55)\n")
    assert "Decision: NOT ELIGIBLE" in letter and "Date: " in letter
    assert "Conservative care: 4 months; the policy needs at least 6 months." in letter
    assert "\\" not in letter and "**" not in letter and "conservative.months" not in letter
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the letter (text)").click()
    downloaded = Path(download.value.path()).read_text()

    def receipt_apart(text: str) -> tuple[str, list[str]]:
        """The letter without its receipt line, and that line: the download names the receipt
        the page's decision was given (one decision, one receipt)."""
        lines = text.strip().splitlines()
        return "\n".join(x for x in lines if not x.startswith("Decision receipt: ")), [
            x for x in lines if x.startswith("Decision receipt: ")
        ]

    (body, [shown]), (again, [given]) = receipt_apart(letter), receipt_apart(downloaded)
    assert body == again and shown == given
    assert shown.endswith("(llr-asp receipt verify checks it)")
    assert download.value.suggested_filename == "llr-asp-refused-b-four-months.txt"


def test_an_example_shows_its_tree_as_nested_lists(page: Any, shots: Path) -> None:
    show_example(page, "route-c5-independence")
    hip = page.locator("section.decision").first
    assert "NOT ELIGIBLE" in hip.locator("h2").inner_text()
    assert hip.locator("ul.tree > li > ul > li").count() == 4  # A, B, C, the contraindication
    assert (
        "⚑ read otherwise by another reading" in hip.inner_text()
        and "(C5): C5 is an urgent route" in hip.inner_text()
    )
    assert "cannot be met" in hip.inner_text()  # what-if names what stands in the way
    page.screenshot(path=str(shots / "example-c5.png"), full_page=True)


def test_a_bad_record_is_refused_in_the_page(page: Any, shots: Path) -> None:
    page.goto("/")
    page.fill("#document", '{"conservative": {"months": "six"}}')
    submit(page.locator("form[action='/record']").get_by_role("button", name="Check this record"))
    alert = page.get_by_role("alert")
    assert (
        'conservative.months: expected a number from 0 to 1200 (or null if unknown), got "six"'
        in alert.inner_text()
    )
    page.screenshot(path=str(shots / "bad-record.png"), full_page=True)


def test_the_letter_downloads_as_markdown(page: Any) -> None:
    show_example(page, "route-c4-sfi")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as Markdown").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith("### Policy for Hip Resurfacing (ARP 55)\n\nPatient: route-c4-sfi. Date: ")
    assert "**Decision: ELIGIBLE ON THE ADOPTED READING — the ICB must confirm**" in text
    assert (
        "The policy text can be read another way" in text
        and download.value.suggested_filename == "llr-asp-route-c4-sfi.md"
    )


def test_keyboard_only(page: Any) -> None:
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.locator("form[action='/ask'] input[name=policy][value='hip-resurfacing']").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_selector("input[name=field][value='sex']", state="attached")
    page.locator("input[name=answer][value='female']").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_selector("section.decision")
    assert "NOT ELIGIBLE" in page.locator("section.decision h2").inner_text()


def test_the_page_loads_nothing_from_another_origin(page: Any, server: str) -> None:
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(request.url.split("/")[2]))
    show_example(page, "route-c1-pain")
    assert origins == {server.split("/")[2]}


KINDS = {  # every kind of result page a clinician meets
    "eligible-robust": ("route-c1-pain", "✔ ELIGIBLE"),
    "eligible-contested": ("route-c4-sfi", "ELIGIBLE ON THE ADOPTED READING"),
    "refused": ("refused-b-four-months", "✘ NOT ELIGIBLE"),
    "refused-contested": ("route-c5-independence", "NOT ELIGIBLE ON THE ADOPTED READING"),
    "undetermined": ("undetermined-new-referral", "UNDETERMINED"),
}


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_screens_of_every_result_kind(browser: Any, server: str, shots: Path, size: tuple[int, int]) -> None:
    """Each kind at a desktop and a phone size: the verdict is on the first screen, whole (not
    cut), and nothing is wider than the screen; screenshots kept for review."""
    width, height = size
    context = browser.new_context(base_url=server, viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        for kind, (example, words) in KINDS.items():
            show_example(page, example)
            verdict = page.locator("section.decision h2 .verdict").first
            box = verdict.bounding_box()
            assert box is not None and box["y"] + box["height"] <= height, kind
            assert words in verdict.inner_text(), kind
            step = page.locator("section.decision .next-step h3").first.bounding_box()
            assert step is not None and step["y"] + step["height"] <= height, kind  # the next step too
            assert page.evaluate("document.documentElement.scrollWidth") <= width, kind
            page.screenshot(path=str(shots / f"result-{kind}-{width}.png"))
    finally:
        context.close()


def test_a_card_link_opens_the_page_with_its_procedure_chosen(page: Any) -> None:
    """A CDS card links to /?policy=ID: the questionnaire's procedure is chosen beforehand (no
    patient data in the URL); an unknown id chooses nothing."""
    page.goto("/?policy=knee-resurfacing")
    assert page.locator("form[action='/ask'] input[name=policy][value='knee-resurfacing']").is_checked()
    page.goto("/?policy=elbow")
    assert page.locator("form[action='/ask'] input[name=policy]:checked").count() == 0
