"""Layout as people read it: in a terminal of 80 columns, ids a user types are never split and a
list item keeps its indent however it wraps; written to a file or a pipe, nothing is wrapped at
a terminal's width. Each command runs as a process, in a pseudo-terminal sized 80 columns or
with its output piped, and without $COLUMNS, as a user's shell runs it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from llr_asp import Node, Reasoner, load_rules, validate

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
RULES = load_rules()
ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"NO_COLOR": "1"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = pytest.mark.processes


def in_terminal(*args: str, columns: int = 80) -> list[str]:
    """The lines `llr-asp ARGS` shows in a pseudo-terminal `columns` wide (styles removed)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    command = [sys.executable, "-m", "llr_asp", *args]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env={**ENV, "TERM": "xterm"}
    )
    os.close(child)
    shown = b""
    while True:
        ready = select.select([main], [], [], 60)[0]
        assert ready, "no output for 60 s"
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    return ANSI.sub("", shown.decode()).replace("\r\n", "\n").splitlines()


def piped(*args: str) -> list[str]:
    """The lines `llr-asp ARGS > file` writes."""
    result = subprocess.run(
        [sys.executable, "-m", "llr_asp", *args], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_policies_never_split_an_id_at_80_columns() -> None:
    lines = in_terminal("policies")
    assert max(len(line) for line in lines) <= 80
    table = "\n".join(lines)
    for policy in RULES.policies.values():
        assert re.search(rf"\b{re.escape(policy.id)}\b", table), table
        assert policy.reference in table


def test_analyze_never_splits_a_kind_or_id_at_80_columns() -> None:
    lines = in_terminal("analyze")
    table = [line for line in lines if line.startswith("│")]
    assert table and all(len(line) <= 80 for line in table)
    kinds = {cell.strip() for line in table for cell in line.split("│")[3:4]}
    report = json.loads("\n".join(piped("analyze", "-f", "json")))
    assert kinds - {""} == {f["kind"] for f in report["findings"]}  # whole, on their own line
    witnesses = [line for line in lines if line.startswith("    witness: ")]
    assert witnesses and all(json.loads(w.split("witness: ", 1)[1]) for w in witnesses)  # whole


def test_lists_keep_their_indent_when_they_wrap() -> None:
    """The answers still needed (with their caveats) and the contested readings: every line a
    wrapped item continues on starts under the item's first character."""
    undetermined = in_terminal(
        "explain", str(EXAMPLES / "undetermined-pain-unknown.json"), "-p", "knee-resurfacing"
    )
    start = undetermined.index("Still needed to decide:")
    needed = undetermined[start + 1 : start + 6]
    assert needed[0].startswith("  • ")
    assert all(line.startswith("      ") for line in needed[1:5]), needed  # the caveats, wrapped
    contested = in_terminal("explain", str(EXAMPLES / "route-c4-sfi.json"), "-p", "knee-resurfacing")
    start = next(n for n, line in enumerate(contested) if line.startswith("  ⚑ "))
    items = contested[start : start + 5]
    first = [line for line in items if line.startswith("  ⚑ ")]
    assert len(first) == 2 and all(line.startswith(("  ⚑ ", "    ")) for line in items[:5]), items


def test_output_to_a_file_is_not_wrapped() -> None:
    """`explain > file`: each requirement's sentence on one line, however long."""
    lines = piped("explain", str(EXAMPLES / "refused-b-four-months.json"), "-p", "hip-resurfacing", "--full")
    sentences = {n.text for n in nodes("refused-b-four-months", "hip-resurfacing") if n.text}
    longest = max(sentences, key=len)
    assert len(longest) > 80
    assert any(line.endswith(f"“{longest}”") for line in lines)
    assert max(len(line) for line in lines) > 100


def nodes(example: str, policy: str) -> list[Node]:
    """Every requirement of `policy`'s tree for an example."""
    patient = validate(json.loads((EXAMPLES / f"{example}.json").read_text()), RULES, example)
    [decision] = Reasoner(RULES).decide(patient, [RULES.policies[policy]])
    return decision.tree.walk()
