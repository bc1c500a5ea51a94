"""Benchmark for issue 27, "Cohorts where the data lives" (not a test: machines are shared and
noisy).

Writes one cohort of random patients (as bench_batch.py writes them) twice, as JSON Lines and as
Parquet (a struct column per group of fields, zstd, row groups of 64K rows), then measures in one run:
1. `llr-asp batch COHORT.parquet --out OUT.parquet` against `llr-asp batch COHORT.jsonl --out
   OUT.jsonl`, each a whole process with its workers (every policy, --jobs J): patients per second,
   and peak memory of the process tree, both as the sum of resident sets (what bench_batch.py
   reports; it counts pages the workers share with the main process once per process) and as the
   sum of proportional set sizes (shared pages split between the processes that map them). The
   memory is also sampled over the run: a streamed run's peak is reached early and stays flat,
   which is what makes a figure for a larger cohort an extrapolation rather than a guess.
   Goal: Parquet at least as fast per row as JSON Lines; <= 300 MB on 10 million rows.
2. Spark: `spark.read.parquet(COHORT).mapInArrow(decide_batches, spark_ddl())` written to
   Parquet on local[J], after a warm-up job (the JVM started, each Python worker's screener
   built), against the `batch -j J` Parquet run of 1. Goal: within 1.3x.

Run: python benchmarks/bench_arrow.py [--rows 1000000] [--jobs 2] [--no-spark]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from bench_batch import cohort
from timing import installed_cli

from llr_asp import load_rules
from llr_asp.formats.arrow import input_schema

RULES = load_rules()


def to_parquet(source: Path, target: Path, group: int = 65536) -> None:
    """The JSON Lines cohort as Parquet, a row group at a time: a struct column per group of
    fields (msk: struct<assessed, ...>), as Spark keeps nested data (Spark reads a dotted column
    name as a struct's child), each typed as the rules declare it."""
    groups: dict[str, list[pa.Field]] = {}
    for field in input_schema(RULES):
        if field.name != "policy":
            group, _, name = field.name.rpartition(".")
            groups.setdefault(group, []).append(field.with_name(name) if group else field)
    schema = pa.schema([*groups.pop(""), *(pa.field(g, pa.struct(fields)) for g, fields in groups.items())])
    with source.open() as lines, pq.ParquetWriter(target, schema, compression="zstd") as writer:
        rows: list[dict[str, Any]] = []
        for line in lines:
            rows.append(json.loads(line))
            if len(rows) == group:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def memory(pids: list[int], key: str) -> int:
    """The sum of a /proc memory figure (kB lines: VmRSS in status, Pss in smaps_rollup), in bytes."""
    total = 0
    for pid in pids:
        name = "status" if key == "VmRSS" else "smaps_rollup"
        try:
            text = Path(f"/proc/{pid}/{name}").read_text()
            total += (
                int(next(line.split()[1] for line in text.splitlines() if line.startswith(key + ":"))) * 1024
            )
        except (OSError, StopIteration):
            continue
    return total


def cpu(pid: int) -> float:
    """Seconds of CPU (user and system) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_batch(command: list[str]) -> dict[str, Any]:
    """Wall seconds, CPU seconds and memory of one batch run: the CPU time of each process of the
    tree (its last sample, every 50 ms: a shared machine's other load lengthens the wall time,
    much less the CPU time), peak RSS sum (every 50 ms), peak PSS sum (every 500 ms), and the
    PSS peak over each fifth of the run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss, samples, tick, used = 0, [], 0, {}
    while process.poll() is None:
        pids = tree(process.pid)
        used.update({pid: seconds for pid in pids if (seconds := cpu(pid))})
        rss = max(rss, memory(pids, "VmRSS"))
        if tick % 10 == 0:
            samples.append((time.perf_counter() - start, memory(pids, "Pss")))
        tick += 1
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if process.returncode not in (0, 1):
        raise SystemExit(f"batch failed with exit code {process.returncode}: {' '.join(command)}")
    fifths = [
        max((m for t, m in samples if k * elapsed / 5 <= t < (k + 1) * elapsed / 5), default=0)
        for k in range(5)
    ]
    return {
        "seconds": elapsed,
        "cpu": sum(used.values()),
        "rss": rss,
        "pss": max(m for _, m in samples),
        "fifths": fifths,
    }


def spark_run(source: Path, target: Path, jobs: int, warm: Path) -> float:
    """Seconds of the mapInArrow job on `source`, after the same job on `warm`."""
    import sys

    from pyspark.sql import SparkSession

    from llr_asp.arrow import decide_batches, spark_ddl

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(f"local[{jobs}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.files.maxPartitionBytes", "1m")  # a partition per row group or two
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def job(path: Path, out: Path) -> float:
        begun = time.perf_counter()
        frame = spark.read.parquet(str(path))
        frame.mapInArrow(decide_batches, spark_ddl()).write.mode("overwrite").parquet(str(out))
        return time.perf_counter() - begun

    job(warm, target.with_name("warm-out"))
    try:
        return job(source, target)
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-spark", action="store_true", help="Skip the Spark comparison.")
    options = parser.parse_args()
    cli = installed_cli()
    rows, jobs = options.rows, options.jobs
    with tempfile.TemporaryDirectory() as work:
        jsonl, parquet = Path(work, "cohort.jsonl"), Path(work, "cohort.parquet")
        cohort(jsonl, rows)
        to_parquet(jsonl, parquet)
        mib = {p.suffix: p.stat().st_size / 2**20 for p in (jsonl, parquet)}
        print(
            f"cohort: {rows:,} patients, {mib['.jsonl']:.0f} MB as JSON Lines, "
            f"{mib['.parquet']:.1f} MB as Parquet"
        )
        runs = {}
        for name, source, out in [
            ("Parquet -> Parquet", parquet, "out.parquet"),
            ("JSON Lines -> JSON Lines", jsonl, "out.jsonl"),
        ]:
            target = Path(work, out)
            runs[name] = run = run_batch(
                [cli, "batch", str(source), "--out", str(target), "--jobs", str(jobs)]
            )
            fifths = " ".join(f"{m / 2**20:.0f}" for m in run["fifths"])
            print(
                f"{name:25} -j {jobs}: {run['seconds']:6.1f} s, {rows / run['seconds']:7,.0f} patients/s, "
                f"{run['cpu'] / rows * 1e6:4.0f} CPU-us a patient; "
                f"peak memory {run['rss'] / 2**20:4.0f} MB (sum of RSS), "
                f"{run['pss'] / 2**20:4.0f} MB (sum of PSS; "
                f"peak PSS by fifth of the run: {fifths} MB); output {target.stat().st_size / 2**20:.1f} MB"
            )
        ratio = runs["Parquet -> Parquet"]["seconds"] / runs["JSON Lines -> JSON Lines"]["seconds"]
        used = runs["Parquet -> Parquet"]["cpu"] / runs["JSON Lines -> JSON Lines"]["cpu"]
        print(
            f"Parquet takes {ratio:.2f}x the wall time and {used:.2f}x the CPU time of JSON Lines (goal <= 1)"
        )
        if not options.no_spark:
            warm = Path(work, "warm.parquet")
            pq.write_table(pq.read_table(parquet).slice(0, 20_000), warm)
            seconds = spark_run(parquet, Path(work, "spark-out"), jobs, warm)
            batch = runs["Parquet -> Parquet"]["seconds"]
            print(
                f"Spark local[{jobs}] mapInArrow, after a warm-up: {seconds:6.1f} s, "
                f"{rows / seconds:7,.0f} patients/s; "
                f"{seconds / batch:.2f}x batch -j {jobs} (goal <= 1.3)"
            )


if __name__ == "__main__":
    main()
