"""The shell examples of README.md and docs/*.md, read as a reader would copy them.

An example is a command of a ```sh block: its lines joined where one ends in a backslash, comment
lines left out. What a command needs is said in its comment, in words a reader can use too:

- `(exit N: why)` — the command ends with exit code N, not 0;
- `needs: TOOL` — a program that must be on PATH (`dot`, `git`, `java`), else it is skipped;
- `not run: REASON` — never run (it installs from the network, asks a person, runs the suite);
- a command ending in `&` starts a server in the background, and `kill %1` stops it.

A marker on a comment line of its own applies to every command below it in its block; an HTML
comment `<!-- not run: REASON -->` on the line above a block applies to all of it (so that the
README's quick start stays clean to copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\S*)\s*$")
_COMMENT = re.compile(r"(?:^|\s)#\s(.*)$")
_EXIT = re.compile(r"\bexit (\d+)\b")
_NEEDS = re.compile(r"\bneeds: ([\w.+-]+)")
_NOT_RUN = re.compile(r"\bnot run: ([^)]*)")
_HTML_NOT_RUN = re.compile(r"^<!--\s*not run: (.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Command:
    """One example: where it is, its text as written, and what its comment says of it."""

    page: str
    line: int
    text: str
    """The command as written, its comment included."""
    shell: str
    """The command without its comment."""
    exit: int = 0
    needs: tuple[str, ...] = ()
    not_run: str | None = None

    @property
    def background(self) -> bool:
        return self.shell.endswith("&") and not self.shell.endswith("&&")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    commands: tuple[Command, ...]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _markers(comment: str) -> dict[str, object]:
    found: dict[str, object] = {}
    if m := _EXIT.search(comment):
        found["exit"] = int(m.group(1))
    if needs := _NEEDS.findall(comment):
        found["needs"] = tuple(needs)
    if m := _NOT_RUN.search(comment):
        found["not_run"] = m.group(1).strip()
    return found


def blocks(text: str, page: str) -> list[Block]:
    """Every ```sh block of a Markdown page, as commands."""
    lines = text.splitlines()
    found: list[Block] = []
    n = 0
    while n < len(lines):
        fence = _FENCE.match(lines[n])
        if not fence or not fence.group(1):
            n += 1
            continue
        language, start = fence.group(1), n
        above = _HTML_NOT_RUN.match(lines[n - 1]) if n else None
        n += 1
        body: list[tuple[int, str]] = []
        while n < len(lines) and not lines[n].startswith("```"):
            body.append((n + 1, lines[n]))
            n += 1
        n += 1
        if language != "sh":
            continue
        inherited: dict[str, object] = {"not_run": above.group(1)} if above else {}
        commands: list[Command] = []
        pending: list[str] = []
        first = 0
        for number, line in body:
            if not pending and line.lstrip().startswith("#"):
                inherited |= _markers(line)
                continue
            if not line.strip():
                continue
            first = first or number
            if line.endswith("\\"):
                pending.append(line[:-1])
                continue
            whole = " ".join(part.strip() for part in [*pending, line])
            comment = _COMMENT.search(whole)
            shell = whole[: comment.start()].rstrip() if comment else whole
            markers = inherited | (_markers(comment.group(1)) if comment else {})
            commands.append(Command(page, first, whole, shell, **markers))  # type: ignore[arg-type]
            pending, first = [], 0
        found.append(Block(page, start + 1, tuple(commands)))
    return found


def every_block() -> list[Block]:
    return [b for page in PAGES for b in blocks(page.read_text(), str(page.relative_to(ROOT)))]
