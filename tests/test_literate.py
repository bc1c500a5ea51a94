"""The literate policy (`llr-asp report`, /policies/{id}): every sentence of the source text in
order, what encodes it (quoted from the .lp files), its readings, defects and findings with
witnesses; a sentence nothing encodes says why, or that the rules give no reason."""

from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_rules import SHOULDER, copy_rules
from typer.testing import CliRunner

from llr_asp import Reasoner, RuleError, RuleSet, load_rules, validate
from llr_asp.cli import app
from llr_asp.core.decision import plain
from llr_asp.core.ruleset import show
from llr_asp.engines.analysis import analyze
from llr_asp.engines.literate import Literate, literate, split
from llr_asp.views.pictures import SIGNS, ident, policy_rows
from llr_asp.views.policy_page import html_document, html_fragment, markdown

POLICIES = ["hip-resurfacing", "knee-resurfacing"]
runner = CliRunner()


@pytest.fixture(scope="module")
def pages(rules: RuleSet) -> dict[str, Literate]:
    return {p: literate(rules, p) for p in POLICIES}


class Sentences(HTMLParser):
    """The text of every element of class "sentence", in order; and the forms' fields."""

    def __init__(self) -> None:
        super().__init__()
        self.sentences: list[str] = []
        self.forms: list[dict[str, str]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "sentence" in (attributes.get("class") or "").split():
            self._depth = 1
            self.sentences.append("")
        elif self._depth:
            self._depth += 1
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or ""})
        if tag == "input" and self.forms:
            self.forms[-1][attributes.get("name") or ""] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.sentences[-1] += data


def parsed(html: str) -> Sentences:
    parser = Sentences()
    parser.feed(html)
    return parser


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("policy", POLICIES)
def test_every_sentence_of_the_source_appears_in_order(
    rules: RuleSet, pages: dict[str, Literate], policy: str
) -> None:
    page = pages[policy]
    source = (rules.directory / rules.policies[policy].source).read_text(encoding="utf-8")
    assert squeezed("".join(s.text for s in page.sentences)) == squeezed(source)
    shown = parsed(html_fragment(page)).sentences
    assert squeezed("".join(shown)) == squeezed(source)
    assert len(shown) == len(page.sentences)


@pytest.mark.parametrize("policy", POLICIES)
def test_every_sentence_the_rules_quote_is_found_and_every_sentence_is_accounted_for(
    pages: dict[str, Literate], policy: str
) -> None:
    page = pages[policy]
    assert page.unmatched == ()
    assert page.counts()["unexplained"] == 0
    encoded = {rid for s in page.sentences for rid in s.requirements}
    assert encoded == set(page.policy.requirements)  # every requirement is beside its sentence
    assert all(s.policy_text for s in page.sentences[: page.sentences.index(_first_page(page))])


def _first_page(page: Literate) -> object:
    return next(s for s in page.sentences if not s.policy_text)


def test_the_sentences_a_clinical_review_found_missing_are_shown_with_their_reason(
    pages: dict[str, Literate],
) -> None:
    hip = {" ".join(s.text.split()): s for s in pages["hip-resurfacing"].sentences}  # no-break spaces
    cap = hip[
        "In hip resurfacing, the femoral head is not removed, but is instead trimmed and capped with a smooth metal covering."
    ]
    socket = hip[
        "The damaged bone and cartilage within the socket is removed and replaced with a metal shell, just as in a traditional total hip replacement."
    ]
    for sentence in (cap, socket):
        assert sentence.kind == "background" and "contraindication in females" in (sentence.why or "")
    knee = next(s for s in pages["knee-resurfacing"].sentences if "retains the healthy" in s.text)
    assert knee.kind == "definition" and "one or two" in (knee.why or "")
    html = html_fragment(pages["knee-resurfacing"])
    assert "Not encoded: a definition." in html


def test_a_sentence_nothing_explains_is_shown_as_such(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    hip = rules_dir / "hip_resurfacing.lp"
    text = hip.read_text()
    start = text.index('unencoded("hip-resurfacing",\n    "The damaged bone')
    end = text.index("\n\n", start)
    hip.write_text(text[:start] + text[end:])  # the socket sentence loses its declaration
    rules = load_rules(rules_dir)
    page = literate(rules, "hip-resurfacing", findings=[])
    [lost] = [s for s in page.sentences if s.kind == "unexplained"]
    assert lost.text.startswith("The damaged bone") and page.counts()["unexplained"] == 1
    assert "Not encoded, and the rules give no reason." in html_fragment(page)


def test_text_split_declared_and_found() -> None:
    rules = load_rules()
    hip = rules.policies["hip-resurfacing"]
    sentences, unmatched = split("Eligibility\nAND ANDES OR\n– x. Y", hip, [("AND", "connective", "why")])
    assert [(s.text, s.kind) for s in sentences] == [
        ("Eligibility", "unexplained"),
        ("AND", "connective"),
        ("ANDES OR", "unexplained"),  # a declared sentence is matched between word boundaries only
        ("– x.", "unexplained"),  # a bullet's dash joins its sentence
        ("Y", "unexplained"),
    ]
    assert ("text/3 of A", " ".join(hip.requirements["A"].text.split())) in unmatched  # type: ignore[union-attr]


def test_the_rules_are_quoted_from_their_files_with_their_lines(
    rules: RuleSet, pages: dict[str, Literate]
) -> None:
    page = pages["knee-resurfacing"]
    for rid, quotes in page.quotes.items():
        for quote in quotes:
            lines = (rules.directory / quote.file).read_text().splitlines()
            assert (
                quote.text.split("\n") == lines[quote.line - 1 : quote.line - 1 + quote.text.count("\n") + 1]
            )
            assert f'"{rid}"' in quote.text or "part(" in quote.text
    [declaration] = [q for q in page.quotes["C4"] if q.text.startswith("all_of(")]
    assert declaration.file == "msk_threshold.lp" and "variant" not in declaration.text
    cut_off = page.variant_quotes["C4.cut-off", "persistent-pain"]
    assert cut_off and all('variant(V, P, "C4.cut-off", "persistent-pain")' in q.text for q in cut_off)
    assert any(q.file == "knee_resurfacing.lp" for q in page.variant_quotes["C.structure", "c5-c6-apart"])
    html = html_fragment(page)
    assert "The rules that encode it (" in html and "Its rules (" in html


@pytest.mark.parametrize("policy", POLICIES)
def test_every_finding_is_on_the_page_with_a_witness_that_opens_its_decision(
    pages: dict[str, Literate], policy: str
) -> None:
    page = pages[policy]
    html = html_fragment(page, "/result")
    forms = parsed(html).forms
    witnessed = {json.loads(f["record"])["id"]: f for f in forms}
    for finding in page.findings:
        if finding.witness is None:
            assert finding.kind in ("review_due", "contested_reading"), finding.kind
            continue
        form = witnessed[finding.witness["id"]]  # each witness has its button
        assert form["action"] == "/result" and json.loads(form["record"]) == finding.witness
        assert form["policy"] == policy
    for finding in page.findings:
        if finding.kind not in ("text_defect", "interpretation", "contested_reading"):
            assert _escaped(finding.message) in html, finding.message
    for reading in page.policy.readings.values():
        assert f'id="reading-{reading.id.replace(".", "-")}"' in html
        for alternative in reading.alternatives:
            assert page.reading_finding(reading, alternative) is not None, (reading.id, alternative.id)


def _escaped(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def test_each_alternative_shows_its_scope_and_the_sentence_that_refutes_it(
    pages: dict[str, Literate],
) -> None:
    page = pages["hip-resurfacing"]
    html = html_fragment(page)
    for reading in page.policy.readings.values():
        for alternative in reading.alternatives:
            assert f"scope: {alternative.scope}</span>" in html
    refuted = page.policy.readings["contraindication.criterion"].alternatives[0].refuted
    assert refuted is not None and f"Refuted for clinical use by the policy's own text: “{refuted}”" in html
    cited = [s for s in page.sentences if page.refutes(s)]
    assert [s.kind for s in cited] == ["background", "background"]  # the cap and the socket sentences
    assert html.count('against the reading <a href="#reading-contraindication-criterion">') == 2


def test_the_document_is_self_contained_under_a_strict_policy(pages: dict[str, Literate]) -> None:
    document = html_document(pages["hip-resurfacing"], "http://127.0.0.1:9999")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', document)
    assert policy is not None
    said = policy.group(1).replace("&#x27;", "'")
    assert "default-src 'none'" in said and "form-action http://127.0.0.1:9999" in said
    assert "script" not in document.lower().replace("javascript", "")  # no script at all
    assert 'action="http://127.0.0.1:9999/result"' in document
    assert ' style="' not in document and "<link" not in document


def test_a_rule_set_without_the_source_text_still_reports(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    (rules_dir / "shoulder_test.lp").write_text(SHOULDER)  # its source file does not exist
    page = literate(load_rules(rules_dir), "shoulder-test", findings=[])
    assert not page.found
    assert [s.text for s in page.sentences] == [
        "Funded when pain is severe and six months of measures failed."
    ]
    assert "could not be read" in html_fragment(page)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('unencoded("hip-resurfacing", "Share This Post", header, "x").', "unknown kind of sentence"),
        ('unencoded("nope", "Category", heading, "x").', "unencoded sentence of an undeclared policy"),
        ('source_ends("hip-resurfacing", "Skip to content").', "policy text has more than one end"),
        (
            'source_taken("nope", "a shelf", "2026-01-01").',
            "provenance of the source of an undeclared policy",
        ),
        ('source_taken("hip-resurfacing", "a shelf", "2026-01-01").', "more than one provenance"),
    ],
)
def test_the_new_declarations_are_checked(tmp_path: Path, text: str, problem: str) -> None:
    rules_dir = copy_rules(tmp_path)
    (rules_dir / "x.lp").write_text("\n" + text + "\n")
    with pytest.raises(RuleError) as error:
        load_rules(rules_dir)
    assert any(
        problem in p.problem and (p.file, p.line) == (str(rules_dir / "x.lp"), 2)
        for p in error.value.problems
    ), error.value.problems


def test_report_writes_html_markdown_with_its_picture_and_dot(tmp_path: Path, rules: RuleSet) -> None:
    html = tmp_path / "hip.html"
    result = runner.invoke(app, ["report", "hip-resurfacing", "-o", str(html)])
    assert result.exit_code == 0, result.stderr
    assert html.read_text().startswith("<!doctype html>") and f"wrote {html}" in result.stderr
    md = tmp_path / "knee.md"
    result = runner.invoke(app, ["report", "knee-resurfacing", "-f", "markdown", "-o", str(md)])
    assert result.exit_code == 0, result.stderr
    text = md.read_text()
    assert "![Requirement tree of ARP 60](knee-tree.svg)" in text
    assert (tmp_path / "knee-tree.svg").read_text().startswith("<svg")
    assert "> Knee Resurfacing (also known as Partial Knee Resurfacing" in text
    assert '```json\n{"id": "witness knee-resurfacing' in text
    result = runner.invoke(app, ["report", "knee-resurfacing", "-f", "dot", "-o", "-"])
    assert result.exit_code == 0 and result.stdout.startswith('digraph "knee-resurfacing"')
    result = runner.invoke(app, ["report", "knee-resurfacing", "-f", "svg", "-o", "-"])
    assert result.exit_code == 0 and result.stdout.startswith("<svg")


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["report", "all"], "report takes one policy"),
        (["report", "shoulder"], 'unknown policy "shoulder"'),
        (["report", "hip-resurfacing", "-f", "markdown", "-o", "-"], "give --out FILE.md"),
        (["report", "hip-resurfacing", "--server", "localhost:8000"], "--server localhost:8000"),
    ],
)
def test_report_refuses_what_it_cannot_do_in_one_line(arguments: list[str], problem: str) -> None:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and problem in result.stderr and result.stderr.count("\n") == 1


def test_markdown_quotes_every_sentence(pages: dict[str, Literate]) -> None:
    text = markdown(pages["hip-resurfacing"], "tree.svg")
    quoted = [line[2:] for line in text.splitlines() if line.startswith("> ")]
    source = "".join(s.text for s in pages["hip-resurfacing"].sentences)
    unescaped = re.sub(r"\\(.)", r"\1", "".join(quoted))
    assert squeezed(unescaped) == squeezed(source)


def test_findings_come_from_analyze(rules: RuleSet, pages: dict[str, Literate]) -> None:
    _, findings = analyze(rules.directory, "hip-resurfacing")
    assert list(pages["hip-resurfacing"].findings) == [
        f for f in findings if f.policy in ("hip-resurfacing", None)
    ]


# -- the page as analysts find their way in it (issue 36) ---------------------------------------


class Links(HTMLParser):
    """Every id, every in-page link (HTML and SVG) and the text of the contents."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.svg_links: list[str] = []
        self._svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._svg += tag == "svg"
        if found.get("id"):
            self.ids.append(found["id"] or "")
        href = found.get("href") or ""
        if tag == "a" and href.startswith("#"):
            (self.svg_links if self._svg else self.links).append(href[1:])

    def handle_endtag(self, tag: str) -> None:
        self._svg -= tag == "svg"


def links(page: Literate) -> Links:
    parsed = Links()
    parsed.feed(html_fragment(page))
    return parsed


@pytest.mark.parametrize("policy", POLICIES)
def test_every_tree_box_links_to_its_sentence_and_every_link_resolves(
    pages: dict[str, Literate], policy: str
) -> None:
    page = pages[policy]
    parsed = links(page)
    assert len(parsed.ids) == len(set(parsed.ids)), "an id twice"
    assert set(parsed.links + parsed.svg_links) <= set(parsed.ids)
    shown = {rid for s in page.sentences for rid in s.requirements}
    assert shown == set(page.policy.requirements)  # every requirement has its sentence on the page
    boxes = [f"r-{ident(r.id)}" for r in policy_rows(page.policy)]
    assert sorted(parsed.svg_links) == sorted(boxes * 2)  # every box of both drawings, wide and narrow
    contents = {"facts", "tree", "routes", "fields", "combinations", "text"}
    assert contents <= set(parsed.links)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_routes_table_is_drawn_from_the_rules(pages: dict[str, Literate], policy: str) -> None:
    page = pages[policy]
    html = html_fragment(page)
    table = html[html.index('<table class="routes">') : html.index("</table>", html.index('class="routes"'))]
    routes = page.policy.requirements["C"].parts
    assert re.findall(r'<th scope="col"><a href="#r-[^"]+">([^<]+)</a></th>', table) == list(routes)
    for route in routes:  # each route's column holds exactly the tests of its conditions
        column = 1 + routes.index(route)
        cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)[column] for row in table.split("<tr>")[2:]]
        tests = sorted(
            f"{SIGNS[r.test.op]} {show(r.test.value)}" for r in page.policy.below(route) if r.test is not None
        )
        said = sorted(t.replace(" (or)", "") for cell in cells if cell for t in cell.split("; "))
        assert said == [escape(t) for t in tests], route
    assert "SFI (function.prevents_work_or_education = true OR" in html  # C2 and C4 in words


@pytest.mark.parametrize("policy", POLICIES)
def test_the_field_index_names_each_answer_its_question_readers_and_sentences(
    pages: dict[str, Literate], policy: str
) -> None:
    page = pages[policy]
    html = html_fragment(page)
    index = html[html.index('<ul class="field-index">') :]
    for field in page.policy.fields():
        item = index[index.index(f'id="field-{ident(field)}"') :]
        item = item[: item.index("</ul></li>")]
        assert escape(page.rules.fields[field].question) in item
        readers = [r.id for r in page.policy.requirements.values() if r.test and r.test.field == field]
        assert re.findall(r'<li><a href="#r-[^"]+">([^<]+)</a>', item) == readers
        assert "sentence " in item


def test_combinations_are_a_table_of_readings(pages: dict[str, Literate]) -> None:
    page = pages["hip-resurfacing"]
    html = html_fragment(page)
    combinations = [f for f in page.findings if f.kind == "contested_combination"]
    assert len(combinations) >= 2
    matrix = html[html.index('<table class="matrix">') : html.index('<ol class="combinations">')]
    for n, finding in enumerate(combinations, 1):  # each is in the cells of each two of its readings
        taken = finding.witness["meta"]["witness"].split(" under ")[1].removesuffix(" together").split(" + ")
        pairs = len(taken) * (len(taken) - 1)
        assert len(re.findall(rf'href="#combination-{n}"', matrix)) == pairs, taken
    assert html.count("Together they decide") == len(combinations)  # once each: not per sentence


@pytest.mark.parametrize("policy", POLICIES)
def test_a_reading_witness_says_its_decision_under_that_reading(
    pages: dict[str, Literate], reasoner: Reasoner, policy: str
) -> None:
    page = pages[policy]
    html = html_fragment(page)
    readings = [
        f for f in page.findings if f.kind in ("contested_reading", "contested_combination") and f.witness
    ]
    assert any(  # an analysis-only reading: the decision page never shows it, so this one does
        not a.clinical for r in page.policy.readings.values() for a in r.alternatives
    )
    for finding in readings:
        decided = finding.witness["meta"]["decided"]
        [decision] = reasoner.decide(validate(finding.witness, reasoner.rules, "w"), [page.policy])
        assert decision.decision == decided["adopted"]  # what opening it shows
        assert decided["under"] != decided["adopted"]
        said = (
            f"This witness is <strong>{plain(decided['adopted']).upper()}</strong> on the adopted reading "
            f"and <strong>{plain(decided['under']).upper()}</strong> under"
        )
        assert said in html


@pytest.mark.parametrize("policy", POLICIES)
def test_the_source_says_where_and_when_it_was_taken(pages: dict[str, Literate], policy: str) -> None:
    page = pages[policy]
    where, date = page.policy.taken or ("", "")
    assert where.startswith("https://leicesterleicestershireandrutland.icb.nhs.uk/") and date == "2026-11-21"
    assert f'<dt>Taken from</dt><dd><a class="url" href="{where}">{where}</a>, on {date}' in html_fragment(
        page
    )


def test_a_provenance_from_the_rules_is_escaped(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "hip_resurfacing.lp"
    text = path.read_text()
    text = re.sub(
        r'source_taken\("hip-resurfacing", "[^"]+"', 'source_taken("hip-resurfacing", "<b>shelf</b>"', text
    )
    path.write_text(text)
    html = html_fragment(literate(load_rules(rules_dir), "hip-resurfacing", findings=[]))
    assert "<b>shelf" not in html and "&lt;b&gt;shelf&lt;/b&gt;, on 2026-11-21" in html
