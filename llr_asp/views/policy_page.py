"""The literate policy written out: an HTML fragment (the service's /policies/{id} page and the
report file share it), a self-contained HTML document (`llr-asp report`), and Markdown with the
picture as an SVG file beside it (`--format markdown`).

Standard library only: the CLI writes the report without the web stack. Every string from the
rules, the source text or a witness is escaped. Collapsible parts are `<details>`; nothing needs
JavaScript. A witness opens that patient's decision through a POST form (the record travels in
the body, never in a URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from ..core.decision import plain
from ..core.ruleset import Policy, show
from ..engines.analysis import Finding
from ..engines.literate import Literate, Quote, Sentence, literate, refuted_by, scope
from .htmlpage import document
from .markdown import escape as md
from .pictures import FORM_WORDS, SIGNS, ident, policy_tree, test_words

KIND_WORDS = {
    "title": "the policy's title",
    "background": "background",
    "definition": "a definition",
    "heading": "a heading",
    "connective": "a connective",
    "metadata": "metadata",
    "page": "the web page, not policy text",
}
SEVERITY_MARKS = {"error": "✘", "warning": "⚠", "note": "•"}
NARROW = 330
"""The width (px) the pictures are drawn to for a phone's screen (390 px less the page's margins);
the stylesheet shows that drawing, or the wide one, by the width of the screen."""


def _h(value: object) -> str:
    return escape(str(value), quote=True)


# -- HTML ----------------------------------------------------------------------------------------


def html_fragment(page: Literate, action: str = "/result") -> str:
    """The literate policy as an `<article>`: witnesses post to `action`."""
    policy = page.policy
    counts = page.counts()
    severities = {s: sum(1 for f in page.findings if f.severity == s) for s in SEVERITY_MARKS}
    out = [
        f'<article class="literate" id="policy-{_h(ident(policy.id))}">',
        f"<h1>{_h(policy.reference)} {_h(policy.title)}: the policy and its encoding</h1>",
        '<p class="lead">Every sentence of the published text, in order, with the rules that encode it, '
        "its readings, defects and the findings of <code>llr-asp analyze</code>, each with a witness "
        "patient whose decision you can open.</p>",
        '<dl class="facts">',
        f"<dt>Commissioner</dt><dd>{_h(policy.commissioner)}</dd>",
        f"<dt>Review date</dt><dd>{_h(policy.review)}</dd>",
        f"<dt>Source text</dt><dd><code>{_h(policy.source)}</code></dd>",
        f"<dt>Taken from</dt><dd>{_provenance(policy)}</dd>",
        *(f"<dt>{_h(term)}</dt><dd>{_h(words)}</dd>" for term, words in _editions(page)),
        f"<dt>Rule set</dt><dd><code>{_h(page.rules.digest[:16])}</code></dd>",
        f"<dt>Sentences</dt><dd>{counts['encoded']} encoded, {counts['explained']} not encoded with the "
        f"reason, <strong>{counts['unexplained']} not encoded with no reason given</strong></dd>",
        "<dt>Findings</dt><dd>"
        + ", ".join(f"{SEVERITY_MARKS[s]} {n} {s}{'s' if n != 1 else ''}" for s, n in severities.items())
        + "</dd>",
        "</dl>",
    ]
    numbers = _numbers(page)
    anchors = {rid: f"#r-{ident(rid)}" for rid in numbers}
    combinations = [f for f in page.findings if f.kind == "contested_combination"]
    overall = page.policy_findings()
    after = [s for s in page.sentences if not s.policy_text]
    routes = _route_points(policy)
    contents = [
        ("facts", "The policy and its source"),
        *([("overall", "About the policy as a whole")] if overall else []),
        ("tree", "The requirement tree"),
        *([("routes", "The routes, and what each needs")] if routes else []),
        ("fields", "Index: each answer, the requirements that read it, their sentences"),
        *([("combinations", "Contested readings that combine")] if combinations else []),
        ("text", "The policy text, sentence by sentence"),
        *([("after-policy", "After the policy text: the web page")] if after else []),
        *([("unmatched", "Declared in the rules, not found in the source text")] if page.unmatched else []),
    ]
    out[3:3] = [_contents(contents, anchors), '<h2 id="facts">The policy and its source</h2>']
    if not page.found:
        out.append(
            f'<p class="warning" role="note"><strong>⚠ The source text {_h(policy.source)} could not be '
            "read:</strong> the sentences below are those the rules quote, in the order of the tree.</p>"
        )
    if overall:
        out += ['<h2 id="overall">About the policy as a whole</h2>', '<ul class="findings">']
        out += [_finding(f, action) for f in overall]
        out.append("</ul>")
    out += [
        '<h2 id="tree">The requirement tree</h2>',
        '<figure class="picture">',
        f'<div class="wide">{policy_tree(policy, anchors)}</div>',
        f'<div class="narrow">{policy_tree(policy, anchors, NARROW)}</div>',
        "<figcaption>Drawn from the rules: every requirement with its id, its form and what it tests; "
        "each box links to the sentence it encodes. "
        "⚑ marks a contested reading, ⚠ a defect of the published sentence.</figcaption>",
        "</figure>",
        *(_routes(policy, point, anchors) for point in routes),
        _field_index(page, numbers),
    ]
    if combinations:
        out.append(_combinations(page, combinations, action))
    out.append('<h2 id="text">The policy text, sentence by sentence</h2>')
    for number, sentence in enumerate(page.sentences, 1):
        if sentence.policy_text:
            out.append(_sentence(page, sentence, number, action))
    if after:
        first = page.sentences.index(after[0]) + 1
        out.append(
            '<details class="after-policy" id="after-policy">'
            f"<summary>After the policy text: {len(after)} sentences of the "
            "web page it was copied from (not policy text)</summary>"
        )
        out += [_sentence(page, s, first + n, action) for n, s in enumerate(after)]
        out.append("</details>")
    if page.unmatched:
        out += [
            '<h2 id="unmatched">⚠ Declared in the rules, not found in the source text</h2>',
            '<ul class="unmatched">',
            *(f"<li><code>{_h(what)}</code>: “{_h(text)}”</li>" for what, text in page.unmatched),
            "</ul>",
        ]
    out.append("</article>")
    return "\n".join(out)


def _provenance(policy: Policy) -> str:
    """Where and when the source text was taken (source_taken/3), or that the rules do not say."""
    if policy.taken is None:
        return "<strong>not recorded</strong>: declare it with <code>source_taken/3</code>"
    where, date = policy.taken
    place = (
        f'<a class="url" href="{_h(where)}">{_h(where)}</a>' if where.startswith("https://") else _h(where)
    )
    return f"{place}, on {_h(date)} (<code>source_taken/3</code>)"


def _editions(page: Literate) -> list[tuple[str, str]]:
    """The edition this page shows and the family's others, each with its days in force (none
    for a policy that is not dated: it has no editions)."""
    policy = page.policy
    if not policy.dated:
        return []
    editions = page.rules.families[policy.family]
    others = [p for p in editions if p.id != policy.id]
    at = editions.index(policy)
    previous = editions[at - 1] if at else None
    changed = previous and [
        f"{rid} ({policy.requirements[rid].label if rid in policy.requirements else 'no longer asked'})"
        for rid in policy.changed_from(previous)
    ]
    return [
        ("Edition", policy.edition_words()),
        *(("Other edition", f"{p.edition_words()} (llr-asp report {p.id})") for p in others),
        *([(f"Changed from {previous.id}", "; ".join(changed))] if previous and changed else []),
    ]


def _numbers(page: Literate) -> dict[str, int]:
    """Each requirement the page shows, with the number of the sentence it is shown at."""
    found: dict[str, int] = {}
    for number, sentence in enumerate(page.sentences, 1):
        for rid in sentence.requirements:
            found.setdefault(rid, number)
    return found


def _contents(contents: list[tuple[str, str]], anchors: dict[str, str]) -> str:
    """The table of contents: the page's parts, then every requirement, each a link."""
    items = "".join(f'<li><a href="#{_h(key)}">{_h(words)}</a></li>' for key, words in contents)
    requirements = " ".join(f'<a href="{_h(href)}">{_h(rid)}</a>' for rid, href in anchors.items())
    return (
        '<nav class="toc" aria-labelledby="contents"><h2 id="contents">Contents</h2>'
        f"<ol>{items}</ol>"
        f'<p class="jump"><strong>Requirements:</strong> {requirements}</p></nav>'
    )


def _route_points(policy: Policy) -> list[str]:
    """The ANY OF requirements directly under the policy's root: the choices of route."""
    root = policy.requirements[policy.root]
    return [p for p in root.parts if policy.requirements[p].form == "any_of"]


def _conditions(policy: Policy, rid: str, choice: bool = False) -> list[tuple[str, bool]]:
    """The conditions under `rid`, in order, each with whether an ANY OF below `rid` holds it
    (one of several tests is enough)."""
    requirement = policy.requirements[rid]
    if requirement.test is not None:
        return [(rid, choice)]
    below = choice or requirement.form == "any_of"
    return [c for part in requirement.parts for c in _conditions(policy, part, below)]


def needs(policy: Policy, rid: str, top: bool = True) -> str:
    """What requirement `rid` needs, in one line: its tests joined by AND / OR, a named part
    with its id (`SFI (… OR …)`)."""
    requirement = policy.requirements[rid]
    if requirement.test is not None:
        return test_words(requirement) or rid
    joined = (" AND " if requirement.form == "all_of" else " OR ").join(
        needs(policy, part, False) for part in requirement.parts
    )
    return joined if top else f"{rid} ({joined})"


def _routes(policy: Policy, point: str, anchors: dict[str, str]) -> str:
    """The parts of an ANY OF under the root (the routes) × the answers they read: per cell the
    test, marked where one of several tests is enough; then what each route needs, in words."""
    routes = policy.requirements[point].parts
    tested = {r: _conditions(policy, r) for r in routes}
    fields = list(
        dict.fromkeys(policy.requirements[c].test.field for r in routes for c, _ in tested[r])  # type: ignore[union-attr]
    )

    def named(route: str) -> str:
        link = anchors.get(route)
        return f'<a href="{_h(link)}">{_h(route)}</a>' if link else _h(route)

    head = "".join(f'<th scope="col">{named(r)}</th>' for r in routes)
    rows = []
    for field in fields:
        cells = []
        for route in routes:
            said = []
            for rid, choice in tested[route]:
                test = policy.requirements[rid].test
                if test is not None and test.field == field:
                    said.append(f"{SIGNS[test.op]} {show(test.value)}" + (" (or)" if choice else ""))
            cells.append(f'<td data-label="{_h(route)}">{_h("; ".join(said))}</td>')
        rows.append(f'<tr><th scope="row"><code>{_h(field)}</code></th>{"".join(cells)}</tr>')
    words = "".join(
        f'<dt>{named(r)} <span class="route-label">{_h(policy.requirements[r].label)}</span></dt>'
        f"<dd><code>{_h(needs(policy, r))}</code></dd>"
        for r in routes
    )
    return (
        '<h2 id="routes">The routes, and what each needs</h2>'
        f"<p>{_h(point)} ({_h(policy.requirements[point].label)}) is met by any one of its "
        f"{len(routes)} routes. Each column is a route, each row an answer it reads, drawn from "
        "the rules. <strong>(or)</strong>: one of the tests so marked in the column is enough, as "
        "the list below says in words; every other test is needed.</p>"
        f'<table class="routes"><thead><tr><th scope="col">Answer</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<dl class="needs">{words}</dl>'
    )


def _field_index(page: Literate, numbers: dict[str, int]) -> str:
    """Each answer the policy reads: its question, the requirements that test it and the
    sentences they encode."""
    policy = page.policy
    rules = page.rules
    readers: dict[str, list[str]] = {}
    for rid, requirement in policy.requirements.items():
        if requirement.test is not None:
            readers.setdefault(requirement.test.field, []).append(rid)
    ordered = [f for f in rules.fields if f in readers] + sorted(set(readers) - set(rules.fields))
    items = []
    for field in ordered:
        question = rules.fields[field].question if field in rules.fields else ""
        said = []
        for rid in readers[field]:
            requirement = policy.requirements[rid]
            number = numbers.get(rid)
            name = f'<a href="#r-{_h(ident(rid))}">{_h(rid)}</a>' if number else _h(rid)
            where = ""
            if number:
                text = " ".join(page.sentences[number - 1].text.split())
                short = text if len(text) <= 70 else text[:67].rsplit(" ", 1)[0] + " …"
                where = f' → <a href="#s-{number}">sentence {number}</a>: “{_h(short)}”'
            said.append(f"<li>{name} <code>{_h(test_words(requirement) or '')}</code>{where}</li>")
        items.append(
            f'<li id="field-{_h(ident(field))}"><code>{_h(field)}</code>'
            f'<span class="question">{_h(question)}</span><ul>{"".join(said)}</ul></li>'
        )
    return (
        '<h2 id="fields">Index: each answer, the requirements that read it, their sentences</h2>'
        f'<ul class="field-index">{"".join(items)}</ul>'
    )


def _combined(finding: Finding) -> list[str]:
    """The contested points a combination finding takes together (its witness says them)."""
    said = str(((finding.witness or {}).get("meta") or {}).get("witness", ""))
    said = said.removeprefix("decided otherwise under ").removesuffix(" together")
    return [x for x in said.split(" + ") if x]


def _combinations(page: Literate, findings: list[Finding], action: str) -> str:
    """The combinations of contested readings that decide patients otherwise where no part of
    them does, as a readings × readings table, each cell the combinations of its two readings
    (numbered), then each combination with its witness."""
    policy = page.policy
    taken = [_combined(f) for f in findings]
    points = [x for x in policy.readings if any(x in t for t in taken)]
    number = {x: n for n, x in enumerate(points, 1)}
    head = "".join(f'<th scope="col"><abbr title="{_h(x)}">{number[x]}</abbr></th>' for x in points)
    rows = []
    for x in points:
        cells = []
        for y in points:
            if x == y:
                cells.append('<td class="diagonal">—</td>')
                continue
            links = [
                f'<a href="#combination-{n}"{" class=pair" if len(t) == 2 else ""}>{n}</a>'
                for n, t in enumerate(taken, 1)
                if x in t and y in t
            ]
            cells.append(f"<td>{' '.join(links)}</td>")
        alternative = _clinical(policy, x)
        rows.append(
            f'<tr><th scope="row">{number[x]}. <a href="#reading-{_h(ident(x))}">{_h(x)}</a>'
            f'<span class="route-label">{_h(alternative)}</span></th>{"".join(cells)}</tr>'
        )
    listed = []
    for n, (finding, combined) in enumerate(zip(findings, taken), 1):
        readings = " + ".join(combined)
        listed.append(
            f'<li id="combination-{n}"><p><strong>{n}. {_h(readings)}</strong> '
            f"({'two' if len(combined) == 2 else 'three'} readings): {_h(finding.message)}</p>"
            f"{_witness(finding, action)}</li>"
        )
    return (
        '<h2 id="combinations">Contested readings that combine</h2>'
        "<p>Clinical alternatives that, taken together, decide some patients otherwise while no "
        "part of them does. Row and column: a contested point read its other way; in the cell, "
        "the combinations that take both (<strong>bold</strong>: the two alone; plain: with a "
        "third), each numbered as in the list below, with its witness.</p>"
        f'<table class="matrix"><thead><tr><th scope="col">Reading</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<ol class="combinations">{"".join(listed)}</ol>'
    )


def _clinical(policy: Policy, point: str) -> str:
    """The clinical alternative of contested point `point`, in words."""
    reading = policy.readings[point]
    chosen = next((a for a in reading.alternatives if a.clinical), None)
    return chosen.text if chosen else reading.adopted


def _sentence(page: Literate, sentence: Sentence, number: int, action: str) -> str:
    kind = sentence.kind
    out = [
        f'<section class="sentence-block kind-{_h(kind)}" id="s-{number}" aria-label="Sentence {number}">',
        f'<p class="sentence">{_h(sentence.text)}</p>',
    ]
    if kind == "encoded":
        out.append(_encoding(page, sentence))
        for reading in page.readings(sentence):
            out.append(_reading(page, reading, action))
        for rid in sentence.requirements:
            requirement = page.policy.requirements[rid]
            for note in requirement.interpretations:
                found = page.note_finding("interpretation", rid, note)
                out.append(
                    f'<div class="interpretation"><p><span class="tag">Interpretation</span> '
                    f"<strong>{_h(rid)}</strong>: {_h(note)}</p>{_witness(found, action)}</div>"
                )
            for defect in requirement.defects:
                found = page.note_finding("text_defect", rid, defect)
                out.append(
                    f'<div class="defect"><p><span class="defect-mark">⚠ Text defect</span> '
                    f"<strong>{_h(rid)}</strong>: {_h(defect)}</p>{_witness(found, action)}</div>"
                )
        findings = page.findings_about(sentence)
        if findings:
            out.append('<ul class="findings">')
            out += [_finding(f, action) for f in findings]
            out.append("</ul>")
        for reading, alternative in page.refutes(sentence):
            out.append(_refutes(reading, alternative))
    elif kind == "unexplained":
        out.append(
            '<p class="why unexplained"><strong>⚠ Not encoded, and the rules give no reason.</strong> '
            "Encode it, or declare why not with <code>unencoded/4</code>.</p>"
        )
    else:
        label = "Not encoded" if kind != "title" else "Encoded"
        said = _h(KIND_WORDS.get(kind, kind))
        out.append(f'<p class="why"><strong>{label}: {said}.</strong> {_h(sentence.why or "")}</p>')
        out += [_refutes(reading, alternative) for reading, alternative in page.refutes(sentence)]
    out.append("</section>")
    return "\n".join(out)


def _refutes(reading: Any, alternative: Any) -> str:
    return (
        f'<p class="refutes">The rules cite it (<code>refuted/4</code>) against the reading '
        f'<a href="#reading-{_h(ident(reading.id))}">{_h(reading.id)}</a>: {_h(alternative.id)}, '
        "which it refutes for clinical use.</p>"
    )


def _encoding(page: Literate, sentence: Sentence) -> str:
    policy = page.policy
    items = []
    for rid in sentence.requirements:
        requirement = policy.requirements[rid]
        parts = f": {', '.join(requirement.parts)}" if requirement.parts else ""
        test = f" <code>{_h(test_words(requirement) or '')}</code>" if requirement.test else ""
        background = ' <span class="tag">from the background text</span>' if requirement.background else ""
        items.append(
            f'<li id="r-{_h(ident(rid))}"><strong>{_h(rid)}</strong> '
            f'<span class="form">{FORM_WORDS[requirement.form]}</span>'
            f"{_h(parts)}{test} — {_h(requirement.label)}{background}</li>"
        )
    quotes = [q for rid in sentence.requirements for q in page.quotes.get(rid, ())]
    return (
        '<div class="encoding"><p class="encoded-by"><strong>Encoded by</strong></p>'
        f'<ul class="requirements">{"".join(items)}</ul>'
        f"{_rules(quotes, 'The rules that encode it')}</div>"
    )


def _rules(quotes: Iterable[Quote], title: str) -> str:
    """Quoted rules, by file, in file order, each with its line number."""
    chosen = sorted(set(quotes), key=lambda q: (q.file, q.line))
    if not chosen:
        return ""
    files = sorted({q.file for q in chosen})
    listing = []
    for file in files:
        listing.append(f'<p class="rule-file"><code>{_h(file)}</code></p><pre class="rules"><code>')
        last = None
        for quote in (q for q in chosen if q.file == file):
            if last is not None and quote.line > last + 1:
                listing.append("⋮\n")
            for n, line in enumerate(quote.text.split("\n")):
                listing.append(f"{quote.line + n:>4}  {_h(line)}\n")
            last = quote.line + quote.text.count("\n")
        listing.append("</code></pre>")
    where = ", ".join(files)
    return (
        f'<details class="rules"><summary>{_h(title)} ({len(chosen)} rule{"s" if len(chosen) != 1 else ""}, '
        f"{_h(where)})</summary>{''.join(listing)}</details>"
    )


def _reading(page: Literate, reading: Any, action: str) -> str:
    out = [
        f'<div class="reading" id="reading-{_h(ident(reading.id))}">',
        f'<p><span class="flag">⚑ Contested reading</span> <strong>{_h(reading.id)}</strong> '
        f"(of {_h(reading.requirement)}). <strong>Adopted:</strong> {_h(reading.adopted)}</p>",
        '<ul class="alternatives">',
    ]
    for alternative in reading.alternatives:
        scope_words = f"scope: {scope(alternative)}"
        found = page.reading_finding(reading, alternative)
        effect = ""
        if found is not None:
            tail = found.message.split(" Under it ", 1)
            effect = f"Under it {tail[1]}" if len(tail) == 2 else found.message.rsplit(". ", 1)[-1]
        quotes = page.variant_quotes.get((reading.id, alternative.id), ())
        refuted = refuted_by(alternative)
        out.append(
            f"<li><strong>Alternative {_h(alternative.id)}</strong> "
            f'<span class="scope">{_h(scope_words)}</span>: {_h(alternative.text)}'
            + (
                f'<p class="refuted">Refuted for clinical use by the policy\'s own text: “{_h(refuted)}”</p>'
                if refuted
                else ""
            )
            + (f'<p class="effect">{_h(effect)}</p>' if effect else "")
            + _witness(found, action)
            + _rules(quotes, "Its rules")
            + "</li>"
        )
    out += ["</ul>", "</div>"]
    return "\n".join(out)


def _finding(finding: Finding, action: str) -> str:
    mark = SEVERITY_MARKS[finding.severity]
    where = ""
    if finding.file:
        line = f":{finding.line}" if finding.line else ""
        where = f' <span class="where">at <code>{_h(finding.file)}{line}</code></span>'
    return (
        f'<li class="finding severity-{_h(finding.severity)}">'
        f'<p><span class="severity">{mark} {_h(finding.severity)}</span> '
        f"<code>{_h(finding.kind)}</code> {_h(finding.message)}{where}</p>{_witness(finding, action)}</li>"
    )


def _witness(finding: Finding | None, action: str) -> str:
    """A form that opens the witness's decision (POST: the record travels in the body), and
    the record itself, to copy."""
    if finding is None or finding.witness is None:
        return ""
    witness = finding.witness
    record = json.dumps(witness, ensure_ascii=False)
    policy = witness.get("policy") or finding.policy or "all"
    name = witness.get("id", "the witness")
    return (
        f'<div class="witness">{_decided(finding)}<form method="post" action="{_h(action)}">'
        f'<input type="hidden" name="policy" value="{_h(policy)}">'
        f'<input type="hidden" name="record" value="{_h(record)}">'
        f'<button class="link-button" type="submit">Open the decision for the witness “{_h(name)}”</button>'
        "</form>"
        "<details><summary>The witness record (JSON, to copy)</summary>"
        f'<pre class="record"><code>{_h(json.dumps(witness, indent=2, ensure_ascii=False))}</code></pre>'
        "</details></div>"
    )


def _decided(finding: Finding) -> str:
    """The witness's decision on the adopted reading and under the reading(s) the finding is
    about (as `analyze` found them). The decision page shows the adopted reading with the
    clinical alternatives only: an analysis reading's decision is given here."""
    meta = (finding.witness or {}).get("meta") or {}
    decided = meta.get("decided") if isinstance(meta, dict) else None
    if not isinstance(decided, dict) or not {"adopted", "under"} <= decided.keys():
        return ""
    said = str(meta.get("witness", "")).removeprefix("decided otherwise under ").removesuffix(" together")
    return (
        f'<p class="decided">This witness is <strong>{_h(plain(str(decided["adopted"])).upper())}</strong> '
        f"on the adopted reading and <strong>{_h(plain(str(decided['under'])).upper())}</strong> under "
        f"{_h(said)}. The decision it opens is on the adopted reading, with the clinical "
        "alternatives named where they change it.</p>"
    )


def html_document(page: Literate, server: str = "http://127.0.0.1:8000") -> str:
    """One self-contained HTML file, whose witness buttons open the decision in the `llr-asp
    serve` at `server` (the only place its forms may post to)."""
    target = server.rstrip("/")
    footer = (
        '<p class="footer">Written by llr-asp from the rule set '
        f"<code>{_h(page.rules.digest[:16])}</code>. "
        f"The witness buttons open a decision in <code>llr-asp serve</code> at {_h(target)}; each "
        "witness record can also be copied and given to <code>llr-asp explain</code>.</p>"
    )
    title = f"{page.policy.reference} {page.policy.title}: the policy and its encoding"
    return document(title, html_fragment(page, f"{target}/result") + "\n" + footer, target)


# -- Markdown ------------------------------------------------------------------------------------


def markdown(page: Literate, picture: str) -> str:
    """The literate policy as Markdown; `picture`: the file name of the requirement tree's SVG,
    written beside it."""
    policy = page.policy
    counts = page.counts()
    lines = [
        f"# {md(policy.reference)} {md(policy.title)}: the policy and its encoding",
        "",
        f"{md(policy.commissioner)} · review date {policy.review} · source `{policy.source}` · "
        f"rule set `{page.rules.digest[:16]}`",
        "",
        *(line for term, words in _editions(page) for line in (f"{term}: {md(words)}", "")),
        f"{counts['encoded']} sentences encoded, {counts['explained']} not encoded with the reason, "
        f"**{counts['unexplained']} not encoded with no reason given**.",
        "",
        f"![Requirement tree of {md(policy.reference)}]({picture})",
        "",
    ]
    overall = page.policy_findings()
    if overall:
        lines += ["## About the policy as a whole", ""]
        for finding in overall:
            lines += _md_finding(finding)
    combinations = [f for f in page.findings if f.kind == "contested_combination"]
    if combinations:
        lines += ["## Contested readings that combine", ""]
        for finding in combinations:
            lines += _md_finding(finding)
    lines += ["## The policy text, sentence by sentence", ""]
    shown_after = False
    for sentence in page.sentences:
        if not sentence.policy_text and not shown_after:
            lines += ["## After the policy text: the web page it was copied from", ""]
            shown_after = True
        lines += _md_sentence(page, sentence)
    if page.unmatched:
        lines += ["## Declared in the rules, not found in the source text", ""]
        lines += [f"- `{what}`: “{md(text)}”" for what, text in page.unmatched]
        lines.append("")
    return "\n".join(lines)


def _md_sentence(page: Literate, sentence: Sentence) -> list[str]:
    lines = [*(f"> {md(' '.join(line.split()))}" for line in sentence.text.splitlines() if line.strip()), ""]
    if sentence.kind == "unexplained":
        return [*lines, "**⚠ Not encoded, and the rules give no reason.**", ""]
    if sentence.kind != "encoded":
        label = "Encoded" if sentence.kind == "title" else "Not encoded"
        said = KIND_WORDS.get(sentence.kind, sentence.kind)
        return [*lines, f"*{label}: {said}.* {md(sentence.why or '')}", ""]
    for rid in sentence.requirements:
        requirement = page.policy.requirements[rid]
        test = f" `{test_words(requirement)}`" if requirement.test else ""
        parts = f": {', '.join(requirement.parts)}" if requirement.parts else ""
        form = FORM_WORDS[requirement.form]
        lines.append(f"- **{md(rid)}** {form}{md(parts)}{test} — {md(requirement.label)}")
    lines.append("")
    lines += _md_rules([q for rid in sentence.requirements for q in page.quotes.get(rid, ())])
    for reading in page.readings(sentence):
        lines.append(
            f"⚑ **Contested reading {md(reading.id)}** (of {md(reading.requirement)}). "
            f"Adopted: {md(reading.adopted)}"
        )
        lines.append("")
        for alternative in reading.alternatives:
            scope_words = f"scope: {scope(alternative)}"
            lines.append(f"- Alternative **{md(alternative.id)}** ({scope_words}): {md(alternative.text)}")
            refuted = refuted_by(alternative)
            if refuted:
                lines.append(f"  Refuted for clinical use by the policy's own text: “{md(refuted)}”")
            found = page.reading_finding(reading, alternative)
            if found is not None:
                lines += _md_witness(found, "  ")
        lines.append("")
    for rid in sentence.requirements:
        requirement = page.policy.requirements[rid]
        for note in requirement.interpretations:
            lines += [f"*Interpretation* ({md(rid)}): {md(note)}", ""]
        for defect in requirement.defects:
            lines += [f"⚠ *Text defect* ({md(rid)}): {md(defect)}", ""]
            found = page.note_finding("text_defect", rid, defect)
            if found is not None:
                lines += _md_witness(found, "")
    for finding in page.findings_about(sentence):
        lines += _md_finding(finding)
    return lines


def _md_rules(quotes: list[Quote]) -> list[str]:
    lines: list[str] = []
    for quote in sorted(set(quotes), key=lambda q: (q.file, q.line)):
        lines += ["```prolog", f"% {quote.file}:{quote.line}", quote.text, "```"]
    return [*lines, ""] if lines else []


def _md_finding(finding: Finding) -> list[str]:
    mark = SEVERITY_MARKS[finding.severity]
    said = f"{mark} **{finding.severity}** `{finding.kind}`: {md(finding.message)}"
    return [said, "", *_md_witness(finding, "")]


def _md_witness(finding: Finding, indent: str) -> list[str]:
    if finding.witness is None:
        return []
    record = json.dumps(finding.witness, ensure_ascii=False)
    return [
        f"{indent}Witness (save it and run `llr-asp explain` on it):",
        "",
        f"{indent}```json",
        f"{indent}{record}",
        f"{indent}```",
        "",
    ]


REPORT_SUFFIX = {"html": "html", "markdown": "md", "dot": "dot", "svg": "svg"}
"""The file a report format writes by default: POLICY.html, .md, .dot or .svg."""


def report_files(rules: Any, policy: str, format: str, target: Path, server: str) -> dict[Path, str]:
    """The files `llr-asp report` writes, by path: the page (html), the Markdown with the tree's
    SVG beside it (markdown), the tree as Graphviz source (dot) or as a picture (svg)."""
    from .pictures import policy_dot

    [chosen] = rules.select(policy)  # a family: its edition in force today
    if format == "dot":
        return {target: policy_dot(chosen)}
    if format == "svg":
        return {target: policy_tree(chosen) + "\n"}
    page = literate(rules, policy)
    if format == "html":
        return {target: html_document(page, server)}
    picture = target.with_name(f"{target.stem}-tree.svg")
    return {picture: policy_tree(page.policy) + "\n", target: markdown(page, picture.name)}
