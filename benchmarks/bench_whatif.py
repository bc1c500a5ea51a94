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

from timing import installed_cli, interleaved

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
        times = interleaved({"explain": explain, "whatif": whatif}, runs)
        a, b = statistics.median(times["explain"]), statistics.median(times["whatif"])
        print(f"  {name}: explain {a * 1e3:6.1f} ms, whatif {b * 1e3:6.1f} ms, ratio {b / a:4.2f}x")


if __name__ == "__main__":
    main()
