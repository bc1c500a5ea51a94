"""A small SVG writer: elements with attributes only, standard library only.

Pictures are drawn with presentation attributes (`fill`, `stroke`, `font-weight`), never a
`style` element or attribute, so that they render under a Content-Security-Policy that forbids
inline style (the page's); `Drawing` gives every picture `role="img"`, a `<title>` and a
`<desc>`, and words are `<text>`, which a reader can select, copy and search.

Boxes are sized to their words by `text_width`, from a table of glyph widths for the one font
the pictures name: Liberation Sans, which is metric-compatible with Arial and Helvetica (so the
table holds for whichever of the three a reader has). The table was measured in Chromium by
scripts/glyph_widths.py; a character outside it counts as a full em, which errs wide.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union
from xml.sax.saxutils import escape

FONT = "Liberation Sans, Arial, Helvetica, sans-serif"

# Advance widths in thousandths of an em of the printable ASCII characters, space (32) to
# tilde (126), then of the few others the pictures use (scripts/glyph_widths.py)
_ASCII = (
    "278 278 355 557 557 890 667 191 334 334 390 584 278 334 278 278 557 557 557 557 557 557 557 557 557 "
    "557 278 278 584 584 584 557 1016 667 667 723 723 667 611 778 723 278 500 667 557 834 723 778 667 778 "
    "723 667 611 723 667 944 667 667 611 278 278 278 470 557 334 557 557 500 557 557 278 557 557 223 223 "
    "500 223 834 557 557 557 557 334 500 278 557 500 723 500 500 500 334 260 334 584"
)
_ASCII_BOLD = (
    "278 334 475 557 557 890 723 238 334 334 390 584 278 334 278 278 557 557 557 557 557 557 557 557 557 "
    "557 334 334 584 584 584 611 976 723 723 723 723 667 611 778 723 278 557 723 611 834 723 778 667 778 "
    "723 667 611 723 667 944 667 667 611 334 278 334 584 557 334 557 611 557 611 557 334 611 611 278 278 "
    "557 278 890 611 611 611 611 390 557 334 611 557 778 557 557 500 390 280 390 584"
)
_OTHERS = {"–": 557, "—": 1000, "…": 1000, "≥": 549, "≤": 549, "≠": 549, "→": 1000, "←": 1000}
_OTHERS |= {"·": 278, "×": 584, "✔": 838, "✘": 838, "⚑": 897, "⚠": 897, "•": 351}
_QUOTES = {"‘": (223, 278), "’": (223, 278), "“": (334, 500), "”": (334, 500)}  # regular, bold


def _table(ascii_widths: str, bold: bool) -> dict[str, int]:
    widths = {chr(32 + n): int(w) for n, w in enumerate(ascii_widths.split())}
    widths |= _OTHERS
    widths |= {c: pair[bold] for c, pair in _QUOTES.items()}
    return widths


WIDTHS = {False: _table(_ASCII, False), True: _table(_ASCII_BOLD, True)}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width of `text` set in FONT at `size` pixels: the sum of its glyphs' advances."""
    return _units(text, bold) * size / 1000


@functools.lru_cache(maxsize=8192)
def _units(text: str, bold: bool) -> int:
    """The advance of `text` in thousandths of an em (labels recur: each is summed once)."""
    widths = WIDTHS[bold]
    return sum(widths.get(c, 1000) for c in text)


def wrap(text: str, width: float, size: float, bold: bool = False) -> list[str]:
    """`text` broken at spaces into lines no wider than `width` (a word wider than the line
    keeps a line of its own). Widths add up glyph by glyph, so each word is measured once."""
    space = text_width(" ", size, bold)
    lines: list[str] = []
    line: list[str] = []
    used = 0.0
    for word in text.split():
        measured = text_width(word, size, bold)
        if line and used + space + measured > width:
            lines.append(" ".join(line))
            line, used = [word], measured
        else:
            used = used + space + measured if line else measured
            line.append(word)
    return [*lines, " ".join(line)] if line else lines


QUOTE = {'"': "&quot;"}
Child = Union["Element", str]
Attribute = Union[str, int, float]


@dataclass
class Element:
    """An SVG element: its tag, attributes and children (elements or text)."""

    tag: str
    attributes: dict[str, Attribute] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def add(self, *children: Child) -> Element:
        self.children.extend(children)
        return self

    def render(self) -> str:
        attributes = "".join(
            f' {name}="{escape(_xml(value), QUOTE) if isinstance(value, str) else _value(value)}"'
            for name, value in self.attributes.items()
        )
        if not self.children:
            return f"<{self.tag}{attributes}/>"
        inner = "".join(c.render() if isinstance(c, Element) else escape(_xml(c)) for c in self.children)
        return f"<{self.tag}{attributes}>{inner}</{self.tag}>"


NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 does not allow (a control character in a patient id made the picture
invalid XML, and the page's SVG unreadable: issue 38)."""


def _xml(text: str) -> str:
    """`text` with every character XML cannot hold replaced by U+FFFD."""
    return NOT_XML.sub("\ufffd", text) if not text.isprintable() else text


def element(tag: str, *children: Child, **attributes: Attribute) -> Element:
    """An element; attribute names are written with `-` for `_` (`font_size` -> font-size).

    A `style` element or attribute is refused: the pictures must render under a policy
    that forbids inline style."""
    if tag == "style":
        raise ValueError("no <style> elements: pictures use presentation attributes only")
    named = {name.rstrip("_").replace("_", "-"): value for name, value in attributes.items()}
    if "style" in named:
        raise ValueError("no style attributes: pictures use presentation attributes only")
    return Element(tag, named, list(children))


def text(
    x: float, y: float, words: str, size: float = 13, bold: bool = False, **attributes: Attribute
) -> Element:
    """Words at (x, y) (the baseline), in the pictures' font."""
    extra: dict[str, Attribute] = {"font_weight": "bold"} if bold else {}
    return element("text", words, x=_number(x), y=_number(y), font_size=size, **extra, **attributes)


def _number(value: float) -> Attribute:
    return int(value) if float(value).is_integer() else round(value, 2)


def _value(value: Attribute) -> str:
    return str(_number(value)) if isinstance(value, float) else str(value)


class Drawing:
    """One picture: a root `<svg>` with `role="img"`, its accessible name (`<title>`) and
    description (`<desc>`), in the pictures' font."""

    def __init__(self, width: float, height: float, title: str, description: str, ident: str) -> None:
        self.width = width
        self.height = height
        self.title = title
        self.description = description
        self.ident = ident
        self.children: list[Element] = []

    def add(self, *children: Element) -> None:
        self.children.extend(children)

    def extend(self, children: Iterable[Element]) -> None:
        self.children.extend(children)

    def root(self) -> Element:
        width, height = _number(self.width), _number(self.height)
        return element(
            "svg",
            element("title", self.title, id=f"{self.ident}-title"),
            element("desc", self.description, id=f"{self.ident}-desc"),
            *self.children,
            xmlns="http://www.w3.org/2000/svg",
            width=width,
            height=height,
            viewBox=f"0 0 {width} {height}",
            role="img",
            aria_labelledby=f"{self.ident}-title",
            aria_describedby=f"{self.ident}-desc",
            font_family=FONT,
            font_size=13,
            fill="#212b32",
            id=self.ident,
        )

    def render(self) -> str:
        return self.root().render()
