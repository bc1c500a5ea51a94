"""The package shows its layers (DESIGN §9) and keeps them: the import-linter contract in
pyproject.toml lets every import point down only (shells, formats, views, engines, core)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "engines", "views", "formats", "web", "cli")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on the package under `root` (imported from there, not installed)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_module_stands_in_a_layer_folder() -> None:
    package = ROOT / "llr_asp"
    loose = sorted(
        p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py", "arrow.py")
    )
    assert loose == [], f"modules outside a layer folder: {loose}"
    for layer in LAYERS:
        assert (package / layer / "__init__.py").is_file(), layer


def test_every_import_points_down_the_layers() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_up_a_layer_breaks_the_contract(tmp_path: Path) -> None:
    """The contract bites: the core importing a view (a plausible slip) fails it, naming the import."""
    shutil.copytree(ROOT / "llr_asp", tmp_path / "llr_asp", ignore=shutil.ignore_patterns("__pycache__"))
    decision = tmp_path / "llr_asp" / "core" / "decision.py"
    decision.write_text(decision.read_text() + "\nfrom ..views.wording import headline  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "llr_asp.core.decision -> llr_asp.views.wording" in result.stdout
