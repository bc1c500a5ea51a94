"""Files llr-asp writes keep the permissions a user expects: a file replaced keeps its mode (a
tracked, shared file does not turn private), a new file gets the umask's, and the sample
private key of scripts/cds_token.py is its owner's alone."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llr_asp.cli import app

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "route-c1-pain.json"
runner = CliRunner()


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process's umask for the test; the old one is put back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def batch_out(tmp_path: Path, target: Path) -> None:
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text(EXAMPLE.read_text().replace("\n", " ") + "\n")
    result = runner.invoke(app, ["batch", str(cohort), "-j", "1", "--out", str(target)])
    assert result.exit_code == 0, result.stderr


def batch_summary(tmp_path: Path, target: Path) -> None:
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text(EXAMPLE.read_text().replace("\n", " ") + "\n")
    result = runner.invoke(app, ["batch", str(cohort), "-j", "1", "--summary-json", str(target)])
    assert result.exit_code == 0, result.stderr
    assert "policies" in json.loads(target.read_text())


def ask_save(tmp_path: Path, target: Path) -> None:
    result = runner.invoke(app, ["ask", "-p", "hip-resurfacing", "--save", str(target)], input="female\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(target.read_text())["sex"] == "female"


def update_baseline(tmp_path: Path, target: Path) -> None:
    if target.exists():  # a baseline being updated: the shipped one (writing keeps the mode)
        target.write_text((ROOT / "rules" / "check-baseline.json").read_text())
    result = runner.invoke(app, ["check", "--update-baseline", "--baseline", str(target), "-f", "json"])
    assert result.exit_code in (0, 1), result.stderr  # a new baseline has empty reasons: a failure
    assert "findings" in json.loads(target.read_text())


WRITERS = {
    "batch --out": batch_out,
    "batch --summary-json": batch_summary,
    "ask --save": ask_save,
    "check --update-baseline": update_baseline,
}
PARAMS = [pytest.param(w, marks=[pytest.mark.whole] if w.startswith("check") else []) for w in WRITERS]
"""The writers; `check`'s (seconds a run) in the whole tier."""


@pytest.mark.parametrize("writer", PARAMS)
def test_a_replaced_file_keeps_its_mode(writer: str, tmp_path: Path, umask: Callable[[int], None]) -> None:
    target = tmp_path / "output.json"
    target.write_text("{}\n")
    os.chmod(target, 0o664)  # group-writable, as a shared or tracked file may be
    umask(0o077)  # however private the umask of the run
    WRITERS[writer](tmp_path, target)
    assert mode(target) == 0o664
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("writer", PARAMS)
def test_a_new_file_gets_the_umasks_mode(writer: str, tmp_path: Path, umask: Callable[[int], None]) -> None:
    target = tmp_path / "output.json"
    umask(0o027)
    WRITERS[writer](tmp_path, target)
    assert mode(target) == 0o640  # 0666 less the umask, not mkstemp's 0600


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_sample_private_key_is_its_owners_alone(tmp_path: Path, umask: Callable[[int], None]) -> None:
    pytest.importorskip("jwt", reason="the web extra (pyjwt) is not installed")
    keys = tmp_path / "keys"
    umask(0o000)  # however open the umask
    script = ROOT / "scripts" / "cds_token.py"
    made = subprocess.run(
        [sys.executable, str(script), "--keys", str(keys)], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert mode(keys / "private.pem") == 0o600 and mode(keys / "jwks.json") == 0o666
    ignored = subprocess.run(["git", "check-ignore", "-q", "keys/private.pem"], cwd=ROOT, timeout=30)
    assert ignored.returncode == 0, "keys/ is not in .gitignore"
