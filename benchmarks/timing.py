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


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Wall seconds of `runs` runs of each command, taken in turn so that a noisy spell of the
    machine falls on all alike; one warm-up run each first (file cache, .pyc files)."""
    for command in commands.values():
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(wall(command))
    return times
