"""Measure the glyph widths of the SVG writer's font in Debian's Chromium (llr_asp/views/svg.py keeps
the table this prints). Widths are in thousandths of an em, regular and bold.

    python scripts/glyph_widths.py            # needs Playwright and /usr/bin/chromium

The font is Liberation Sans, which is metric-compatible with Arial and Helvetica, so the one
table serves whichever of the three a reader's machine has. Symbols outside it (✔ ✘ ⚑ ⚠) come
from a fallback font (DejaVu Sans here); they are measured too and rounded up.
"""

from __future__ import annotations

import json
import math

from playwright.sync_api import sync_playwright

FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
EXTRA = "–—‘’“”…≥≤≠→←·×✔✘⚑⚠•"
CHARACTERS = "".join(chr(c) for c in range(32, 127)) + EXTRA

SCRIPT = """([font, chars]) => {
  const canvas = document.createElement('canvas').getContext('2d');
  const out = {};
  for (const weight of ['normal', 'bold']) {
    canvas.font = `${weight} 1000px ${font}`;
    out[weight] = Object.fromEntries([...chars].map(c => [c, canvas.measureText(c).width]));
  }
  return out;
}"""


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        page = browser.new_page()
        page.set_content("<p>measure</p>")
        widths = page.evaluate(SCRIPT, [FONT, CHARACTERS])
        browser.close()
    for weight in ("normal", "bold"):
        table = {c: math.ceil(w) for c, w in widths[weight].items()}
        print(weight, json.dumps(table, ensure_ascii=False))


if __name__ == "__main__":
    main()
