"""The SVG writer: attributes only (the page's CSP forbids inline style), accessible, escaped,
and boxes sized from a glyph-width table of the one font it names."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from llr_asp.views.svg import FONT, WIDTHS, Drawing, element, text, text_width, wrap

NS = "{http://www.w3.org/2000/svg}"


def test_style_is_refused_as_an_element_and_as_an_attribute() -> None:
    with pytest.raises(ValueError, match="no <style>"):
        element("style", "text { fill: red }")
    with pytest.raises(ValueError, match="no style attributes"):
        element("rect", style="fill: red")
    assert element("rect", stroke_width=2, stroke_dasharray="6 3").render() == (
        '<rect stroke-width="2" stroke-dasharray="6 3"/>'
    )


def test_words_and_attributes_are_escaped() -> None:
    drawn = element("g", text(1, 2, 'a < b & "c"'), id='x" onload="alert(1)').render()
    assert drawn.startswith('<g id="x&quot; onload=&quot;alert(1)">')
    root = ET.fromstring(drawn)
    assert root.get("id") == 'x" onload="alert(1)'
    assert root[0].text == 'a < b & "c"'


def test_a_drawing_is_an_image_with_its_name_and_description() -> None:
    drawing = Drawing(100.5, 40, "Title <here>", "What it shows", "pic")
    drawing.add(element("rect", x=0, y=0, width=10, height=10))
    root = ET.fromstring(drawing.render())
    assert root.get("role") == "img" and root.get("font-family") == FONT
    assert root.get("aria-labelledby") == "pic-title" and root.get("aria-describedby") == "pic-desc"
    title, desc = root[0], root[1]
    assert (title.tag, title.get("id"), title.text) == (f"{NS}title", "pic-title", "Title <here>")
    assert (desc.tag, desc.text) == (f"{NS}desc", "What it shows")
    assert root.get("viewBox") == "0 0 100.5 40"


def test_widths_come_from_the_table_and_an_unknown_glyph_is_a_whole_em() -> None:
    # Liberation Sans (Arial's metrics): H 723, i 223 thousandths of an em; bold H 723, i 278
    assert text_width("Hi", 10) == pytest.approx(9.46)
    assert text_width("Hi", 10, bold=True) == pytest.approx(10.01)
    assert text_width("漢", 20) == 20
    assert len(WIDTHS[False]) == len(WIDTHS[True]) > 95  # printable ASCII and the symbols used
    assert text_width("✔ met", 10, True) > text_width("met", 10, True)


def test_wrap_keeps_every_word_and_each_line_within_the_width() -> None:
    words = "Severe pain and impairment endangering independence; conservative care contra-indicated"
    lines = wrap(words, 200, 13)
    assert " ".join(lines) == words and len(lines) > 1
    assert all(text_width(line, 13) <= 200 for line in lines)
    assert wrap("Supercalifragilisticexpialidocious word", 50, 13)[0] == "Supercalifragilisticexpialidocious"
