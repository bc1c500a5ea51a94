"""A cohort's summary as one self-contained HTML page (`llr-asp batch --report FILE.html`, and
the API's batch summary): per policy, the patients on an urgent route (first), the decisions,
the funnel through its criteria, the patients each contested reading would decide otherwise,
the answers most often missing, the records that contradict a domain assumption; then the bad
lines. Standard library only."""

from __future__ import annotations

import datetime
from html import escape

from ..engines.batch import Summary
from ..engines.cohort_difference import CLASSES, CohortDifference
from . import charts
from .htmlpage import document
from .wording import counted, unnamed_note, urgent_summary

MARKS = {"eligible": "✔", "not_eligible": "✘", "undetermined": "?"}
WORDS = {"eligible": "eligible", "not_eligible": "not eligible", "undetermined": "undetermined"}


def cohort_fragment(summary: Summary, source: str, today: datetime.date | None = None) -> str:
    """The summary as an `<article>`: `today`, the day it is written (default: today)."""
    day = (today or datetime.date.today()).isoformat()
    out = [
        '<article class="cohort">',
        f"<h1>Cohort: {escape(source)}</h1>",
        f'<p class="made">Decided on {escape(day)} by the rule set '
        f"<code>{escape(summary.rules.digest)}</code> (sha256).</p>",
    ]
    note = unnamed_note(summary.unnamed, list(summary.rules.policies))
    if note:
        out.append(f'<p class="unnamed"><strong>{escape(note)}</strong></p>')
    for policy in summary.policies():
        declared = summary.rules.policies[policy]
        decisions = summary.decisions[policy]
        total = sum(decisions.values())
        urgent = urgent_summary(f"{declared.reference} {declared.title}", summary.urgent_json(policy))
        out += [
            f'<section class="card" aria-labelledby="c-{escape(policy)}">',
            f'<h2 id="c-{escape(policy)}">{escape(declared.reference)} {escape(declared.title)}: '
            f"{total:,} patients</h2>",
            *([f'<p class="urgent"><strong>{escape(urgent)}</strong></p>'] if urgent else []),
            '<ul class="decisions">',
            *(
                f"<li>{MARKS[d]} {WORDS[d]}: <strong>{decisions.get(d, 0):,}</strong>"
                f"{f' ({decisions.get(d, 0) / total:.1%})' if total else ''}</li>"
                for d in MARKS
            ),
            "</ul>",
            "<h3>Through the criteria</h3>",
            f'<figure class="picture">{charts.both(charts.funnel, summary, policy)}</figure>',
        ]
        if summary.contested[policy]:
            out += [
                "<h3>Decided otherwise under a contested reading</h3>",
                f'<figure class="picture">{charts.both(charts.contested, summary, policy)}</figure>',
            ]
        if summary.missing[policy]:
            out += [
                "<h3>The answers most often missing</h3>",
                f'<figure class="picture">{charts.both(charts.missing, summary, policy)}</figure>',
            ]
        if summary.warnings[policy]:
            out += ["<h3>Records that contradict a domain assumption</h3>", "<ul>"]
            out += [
                f"<li>{n:,}: {escape(summary.rules.assumptions[a])}</li>"
                for a, n in summary.warnings[policy].most_common()
            ]
            out.append("</ul>")
        out.append("</section>")
    if summary.error_count:
        out += [f"<h2>{counted(summary.error_count, 'bad line')}</h2>", "<ul>"]
        out += [f"<li>line {e.line}: {escape(e.error)}</li>" for e in summary.errors]
        out.append("</ul>")
        if summary.error_count > len(summary.errors):
            out.append('<p>… every one is in the output, as {"line", "error"}.</p>')
    else:
        out.append("<p>No bad lines.</p>")
    out.append("</article>")
    return "\n".join(out)


def difference_fragment(summary: CohortDifference, source: str, today: datetime.date | None = None) -> str:
    """What a new policy (an edition) does to a cohort, as an `<article>` (`diff OLD NEW --cohort
    FILE --report FILE.html`): the two editions, the changes drawn, and each class with every
    requirement that changed it."""
    day = (today or datetime.date.today()).isoformat()
    changed = summary.patients - summary.unchanged
    out = [
        '<article class="cohort">',
        f"<h1>{escape(summary.old.id)} → {escape(summary.new.id)} on {escape(source)}</h1>",
        f'<p class="made">Decided on {escape(day)} by the rule set <code>{escape(summary.rules)}</code> '
        "(sha256), both editions in one pass per patient.</p>",
        "<ul>",
        f"<li>Old: {escape(summary.old.edition_words())}</li>",
        f"<li>New: {escape(summary.new.edition_words())}</li>",
        f"<li><strong>{changed:,}</strong> of {summary.patients:,} patients decided otherwise; "
        f"{summary.unchanged:,} alike"
        + (f"; {escape(counted(summary.errors, 'bad line'))}" if summary.errors else "")
        + "</li>",
        "</ul>",
        f'<figure class="picture">{charts.changes(summary)}</figure>',
        "<table><thead><tr><th>change</th><th>patients</th><th>requirements that changed them</th></tr>"
        "</thead><tbody>",
    ]
    for kind in CLASSES:
        found = summary.requirements.get(kind)
        said = ", ".join(f"{escape(r)} {n:,}" for r, n in found.most_common()) if found else "-"
        kind_words = escape(kind.replace("_", " "))
        out.append(f"<tr><td>{kind_words}</td><td>{summary.counts[kind]:,}</td><td>{said}</td></tr>")
    out += ["</tbody></table>", "</article>"]
    return "\n".join(out)


def difference_document(summary: CohortDifference, source: str, today: datetime.date | None = None) -> str:
    """What a new policy does to a cohort, as one self-contained HTML file."""
    return document(
        f"{summary.old.id} → {summary.new.id} on {source}", difference_fragment(summary, source, today)
    )


def cohort_document(summary: Summary, source: str, today: datetime.date | None = None) -> str:
    """The summary as one self-contained HTML file."""
    return document(f"Cohort {source}", cohort_fragment(summary, source, today))
