"""A self-contained HTML document for the files llr-asp writes (the literate policy, the cohort
report): the page's own stylesheet inline, and a Content-Security-Policy as strict as the
service's: that stylesheet only by its hash, no script, nothing fetched, forms only where
they are meant to go."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from ..core.ruleset import PACKAGE

STYLESHEET = PACKAGE / "web" / "static" / "style.css"


def document(title: str, body: str, forms_to: str | None = None) -> str:
    """`body` (HTML) in a whole page titled `title`; forms may post to `forms_to` only."""
    css = STYLESHEET.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    policy = (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
        f"form-action {forms_to or chr(39) + 'none' + chr(39)}; base-uri 'none'"
    )
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en-GB">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)} – llr-asp</title>",
            f"<style>{css}</style>",
            "</head>",
            "<body>",
            '<main id="main" class="width">',
            body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )
