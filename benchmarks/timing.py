"""What the whole-process benchmarks share: the installed command, and wall-clock timing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time


def installed_cli() -> str:
    """The `llr-asp` console script, or exit saying how to install it."""
    return shutil.which("llr-asp") or sys.exit("llr-asp is not installed: pip install -e .")


def wall(command: list[str]) -> float:
    """Seconds one run of `command` takes, output discarded."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
