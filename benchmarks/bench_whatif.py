"""Benchmark for the issue "For clinicians: what would change the answer" (not a test: machines
are shared and noisy).

`llr-asp whatif` as a whole process against `llr-asp explain` on the same patient, interleaved;
target: within 1.6x.

Run: python benchmarks/bench_whatif.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from timing import installed_cli, wall

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "undetermined-pain-unknown.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    cli = installed_cli()
    pairs = {
        "text": ([cli, "explain", str(EXAMPLE)], [cli, "whatif", str(EXAMPLE)]),
        "json": ([cli, "explain", str(EXAMPLE), "-f", "json"], [cli, "whatif", str(EXAMPLE), "-f", "json"]),
    }
    print(f"whole process, {runs} interleaved runs each (medians; target whatif <= 1.6x explain):")
    for name, (explain, whatif) in pairs.items():
        wall(explain), wall(whatif)  # warm caches
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(runs):
            times[0].append(wall(explain))
            times[1].append(wall(whatif))
        a, b = statistics.median(times[0]), statistics.median(times[1])
        print(f"  {name}: explain {a * 1e3:6.1f} ms, whatif {b * 1e3:6.1f} ms, ratio {b / a:4.2f}x")


if __name__ == "__main__":
    main()
