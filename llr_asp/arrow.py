"""`llr_asp.arrow`: the public entry for cohorts as Arrow record batches and Parquet (the
`parquet` extra), e.g. Spark's `df.mapInArrow(llr_asp.arrow.decide_batches, ...)`. The code is
`llr_asp.formats.arrow`."""

from .formats.arrow import (
    OUTPUT,
    decide_batches,
    decide_frames,
    decide_table,
    input_schema,
    read_batches,
    read_parquet,
    spark_ddl,
)

__all__ = [
    "OUTPUT",
    "decide_batches",
    "decide_frames",
    "decide_table",
    "input_schema",
    "read_batches",
    "read_parquet",
    "spark_ddl",
]
