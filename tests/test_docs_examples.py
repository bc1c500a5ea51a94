"""Every shell example of README.md and docs/*.md runs as written against the shipped files.

Each ```sh block runs, command by command, in a temporary copy of the repository with the
installed `llr-asp` and this Python on PATH; a command passes when it ends with the exit code its
comment promises (0 unless it says `exit N`) and prints no traceback. What cannot run here is
skipped with the reason: a tool not on PATH (`needs: dot`), a command marked `not run: …`, a
server whose port is taken. The summary line of the run (tests/conftest.py) says how many
commands ran and how many were skipped, and why. Slow (one process per command): the `processes`
tier, which `.ci/run` runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from docs_examples import PAGES, ROOT, Block, Command, blocks, every_block

BLOCKS = every_block()
COMMANDS = r"(llr-asp|python3?|curl|cat|printf|pip|cp|sed|git)\b"  # how a shell example starts
TIMEOUT = 180  # seconds a command may take: `analyze` and `diff` take a few on a loaded machine
IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", ".ci-venv", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache",
    ".ruff_cache", "*.egg-info", "dist", "build", "keys", "node_modules",
)  # fmt: skip


def test_the_extractor_reads_markers_continuations_and_html_comments() -> None:
    page = "\n".join(
        [
            "```sh",
            "# needs: dot",
            "llr-asp report x -f dot -o - | dot -Tsvg > t.svg   # drawn (exit 3: why)",
            "llr-asp serve --port 8123 \\",
            "    --rules rules/ &   # in the background",
            "kill %1",
            "```",
            "<!-- not run: the network -->",
            "```sh",
            "pip install x",
            "```",
            "```text",
            "llr-asp is not a command here",
            "```",
        ]
    )
    first, second = blocks(page, "p.md")
    report, serve, kill = first.commands
    assert (report.line, report.needs, report.exit, report.shell) == (
        3,
        ("dot",),
        3,
        "llr-asp report x -f dot -o - | dot -Tsvg > t.svg",
    )
    assert serve.text == "llr-asp serve --port 8123 --rules rules/ &   # in the background"
    assert serve.background and not kill.background and serve.needs == ("dot",)
    assert [c.not_run for c in second.commands] == ["the network"]


def test_every_shell_example_is_in_an_sh_block() -> None:
    """A command in a fence without `sh` would escape the test: every fence whose first line
    starts a command says which language it is."""
    untagged = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        inside = False
        for n, line in enumerate(lines):
            if line.startswith("```"):
                command = n + 1 < len(lines) and re.match(COMMANDS, lines[n + 1])
                if not inside and line.strip() == "```" and command:
                    untagged.append(f"{page.relative_to(ROOT)}:{n + 1}")
                inside = not inside
    assert not untagged, f"shell examples in a fence without `sh`: {untagged}"


@contextlib.contextmanager
def _port_lock(port: int) -> Iterator[None]:
    """Blocks of this run (and of other runs on this machine) that serve on one port take turns."""
    with open(Path(tempfile.gettempdir()) / f"llr-asp-docs-port-{port}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _copy(tmp: Path, with_git: bool) -> Path:
    where = tmp / "llr-asp"
    shutil.copytree(ROOT, where, ignore=IGNORE)
    if with_git:
        git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@localhost", "-c", "commit.gpgsign=false"]
        for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a copy"]):
            subprocess.run([*git, *step], cwd=where, check=True, capture_output=True, timeout=60)
    return where


class _Run:
    """The commands of one block, in order, in one copy of the repository."""

    def __init__(self, where: Path, tmp: Path) -> None:
        self.where = where
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
            "COLUMNS": "100",
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.assignments: list[str] = []  # `TOKEN=$(…)`: the shell's variables, for the commands after
        self.servers: list[subprocess.Popen[bytes]] = []
        self.failures: list[str] = []

    def bash(self, script: str) -> list[str]:
        return ["bash", "-c", "set -o pipefail\n" + "\n".join([*self.assignments, script])]

    def run(self, command: Command) -> None:
        if re.fullmatch(r"kill %(\d+)", command.shell):
            self.stop(int(command.shell[6:]) - 1)
            return
        if command.background:
            self.serve(command)
            return
        try:
            done = subprocess.run(
                self.bash(command.shell),
                cwd=self.where,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"{command.page}:{command.line}: `{command.text}` ran past {TIMEOUT} s")
            return
        err = done.stderr.decode(errors="replace")
        if done.returncode != command.exit or "Traceback (most recent call last)" in err:
            self.failures.append(
                f"{command.page}:{command.line}: `{command.text}` exited {done.returncode}"
                f" (expected {command.exit}); stderr: {err.strip()[-800:]}"
            )
        if re.match(r"[A-Za-z_]\w*=", command.shell):
            self.assignments.append(command.shell)

    def serve(self, command: Command) -> None:
        port = int(m.group(1)) if (m := re.search(r"--port[ =](\d+)", command.shell)) else 8000
        server = subprocess.Popen(
            self.bash(command.shell.rstrip("& ")),
            cwd=self.where,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                self.stop(len(self.servers) - 1)
                err = server.stderr.read().decode(errors="replace") if server.stderr else ""
                self.failures.append(f"{command.page}:{command.line}: `{command.text}` did not serve: {err}")
                return
            time.sleep(0.1)

    def stop(self, index: int) -> None:
        server = self.servers[index]
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=15)

    def close(self) -> None:
        for n in range(len(self.servers)):
            self.stop(n)


def _skip(command: Command) -> str | None:
    if command.not_run:
        return f"not run: {command.not_run}"
    absent = [tool for tool in command.needs if shutil.which(tool) is None]
    return f"needs {', '.join(absent)}, which is not installed" if absent else None


@pytest.mark.processes
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_the_examples_run_as_written(
    block: Block, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    ran: list[str] = []
    skipped: list[tuple[str, str]] = []
    todo = [(c, _skip(c)) for c in block.commands]
    runnable = [c for c, reason in todo if reason is None]
    serving = [c for c in runnable if c.background]
    port = 8000 if serving else None
    with _port_lock(port) if port else contextlib.nullcontext():
        busy = port is not None and _listening(port)
        where = _copy(tmp_path, with_git=any("git" in c.needs for c in runnable))
        run = _Run(where, tmp_path)
        try:
            for command, reason in todo:
                if reason is None and busy:
                    reason = f"port {port} is in use on this machine"
                if reason:
                    skipped.append((f"{command.page}:{command.line}", reason))
                    continue
                run.run(command)
                ran.append(f"{command.page}:{command.line}")
        finally:
            run.close()
    record_property("docs_examples", {"ran": ran, "skipped": skipped})
    assert not run.failures, "\n".join(run.failures)
    if not ran:
        pytest.skip("; ".join(sorted({reason for _, reason in skipped})))


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_resolves() -> None:
    """Links to a page, a page's heading or a file of the repository lead somewhere."""
    headings = {
        page: {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", page.read_text(), re.M)}
        for page in PAGES
    }
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # another site
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            if not where.exists() or (anchor and anchor not in headings.get(where, set())):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
