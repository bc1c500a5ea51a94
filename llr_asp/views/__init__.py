"""Views for people: the terminal (Rich), the plain wording every surface shares, the letter,
Markdown, HTML pages and the pictures (our own SVG writer). Built on the engines and the core."""
