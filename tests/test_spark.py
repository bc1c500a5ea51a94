"""The Spark tier: `decide_batches` run by a real Spark (local mode, two cores) through
`mapInArrow` over a Parquet file of generated patients decides every row as `llr-asp batch`
decides it on the same file; `decide_frames` does the same through `mapInPandas`.

Needs pyspark, pandas (pyspark's Arrow functions import it) and a Java runtime (Debian's
openjdk-17-jre-headless): `.ci/run` installs them; elsewhere this file is skipped, saying which
is absent."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_arrow import cohort
from typer.testing import CliRunner

from llr_asp.cli import app

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings("ignore::FutureWarning")]

pytest.importorskip("pyspark", reason="pyspark is not installed (the Spark tier; .ci/run installs it)")
pytest.importorskip("pandas", reason="pandas is not installed (pyspark's mapInArrow needs it)")
pa = pytest.importorskip("pyarrow", reason="the parquet extra (pyarrow) is not installed")
pq = pytest.importorskip("pyarrow.parquet")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("no Java runtime for Spark (Debian: openjdk-17-jre-headless)", allow_module_level=True)

from llr_asp.arrow import decide_batches, decide_frames, spark_ddl  # noqa: E402

ROWS = 2000


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import this llr_asp
    session = (
        SparkSession.builder.master("local[2]")
        .appName("llr-asp-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated patients as struct columns, as a Spark table holds them; one not a patient."""
    documents = cohort(ROWS, seed=11)
    documents[17]["pain"] = {"severity": "Severe"}
    path = tmp_path_factory.mktemp("spark") / "cohort.parquet"
    pq.write_table(pa.Table.from_pylist(documents), path)
    return path


@pytest.fixture(scope="module")
def cohort_table(cohort_file: Path) -> Path:
    """The same rows as a table of two part files, as Spark writes one: two partitions."""
    table = pq.read_table(cohort_file)
    directory = cohort_file.parent / "table"
    directory.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), directory / "part-00000.parquet")
    pq.write_table(table.slice(half), directory / "part-00001.parquet")
    return directory


def by_patient(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Rows by (patient, policy), without what names where they came from (line, error's source)."""
    keyed = {}
    for row in rows:
        row = {k: v for k, v in row.items() if k != "line"}
        if row.get("error"):
            row["error"] = row["error"].split(": ", 1)[1]  # after "<source>:<line>"
        if row.get("contested"):
            row["contested"] = [{k: v for k, v in c.items() if v is not None} for c in row["contested"]]
        keyed[row["patient"], row.get("policy")] = {k: v for k, v in row.items() if v is not None}
    return keyed


def batch_rows(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "batch.parquet"
    result = CliRunner().invoke(app, ["batch", str(path), "--out", str(out), "-j", "1"])
    assert result.exit_code == 1, result.output  # the one bad row
    return pq.read_table(out).to_pylist()  # type: ignore[no-any-return]


def test_map_in_arrow_decides_every_row_as_batch_does(
    spark: Any, cohort_file: Path, cohort_table: Path, tmp_path: Path
) -> None:
    frame = spark.read.parquet(str(cohort_table))
    decided = frame.mapInArrow(decide_batches, spark_ddl())
    rows = [row.asDict(recursive=True) for row in decided.collect()]
    assert decided.rdd.getNumPartitions() == 2
    expected = by_patient(batch_rows(cohort_file, tmp_path))
    got = by_patient(rows)
    assert len(rows) == len(expected) == 2 * ROWS - 1  # two policies a patient; the bad row once
    assert got == expected
    assert got["p17", None]["error"].startswith("pain.severity: expected one of")


def test_map_in_pandas_decides_as_batch_does(spark: Any, cohort_file: Path, tmp_path: Path) -> None:
    frame = spark.read.parquet(str(cohort_file)).limit(300)
    decided = frame.mapInPandas(lambda frames: decide_frames(frames, policy="knee-resurfacing"), spark_ddl())
    got = {r.patient: (r.decision, r.robust, list(r.missing)) for r in decided.collect() if r.error is None}
    expected = {
        r["patient"]: (r["decision"], r["robust"], r["missing"])
        for r in batch_rows(cohort_file, tmp_path)
        if r["policy"] == "knee-resurfacing" and r["patient"] in got
    }
    assert len(got) >= 299 and got == expected  # (an error row, such as p17's, has no decision)
