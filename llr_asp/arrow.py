"""Cohorts where the data lives: Arrow record batches and Parquet files in and out (the
`parquet` extra, pyarrow).

- `read_batches`: Arrow rows as patient documents (a reader of `llr_asp.readers`). The columns
  are the field declarations' dotted paths (`msk.assessed`), struct columns of them (`msk`
  with a child `assessed`), or both; `id`, `policy`, and `meta` or `meta.*` (ignored). A null
  is unknown. Values keep their Arrow types, which validation judges as strictly as JSON's; a
  column no value of which could be valid (a string column for a true/false field) or that is
  not a field is refused before any row is read, naming the column and the fix.
- `OUTPUT`: the result columns, a batch line's (`Screening.to_json`) with `error` for a row
  that is not a valid patient and `rules`, the rule set's hash. `result_batch` builds them.
- `decide_batches`: Spark's `mapInArrow` shape, record batches in and out, with the screener
  built once per process and kept in this module (what Spark pickles is the function's name).
  `decide_frames` is the same for `mapInPandas`; `decide_table` for Polars, DuckDB or pandas
  users on one machine, on every core.
- `read_parquet`, `ParquetOutput`: the files `llr-asp batch` reads and writes, streamed by
  record batches and row groups, so that memory stays flat whatever the file's size.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

import pyarrow as pa
import pyarrow.parquet as pq

from .batch import CHUNK, LineError, Result, Screener, iterate_decisions
from .errors import InputError
from .readers import Numbered
from .ruleset import Field, RuleSet, load_rules

BATCH_ROWS = 8192  # rows of input read at a time, and of output built at a time
GROUP_BYTES = 64 << 20  # output held before a Parquet row group is written
GROUP_ROWS = 256 * 1024  # ... or this many rows, whichever comes first

_TEXT = pa.string()
_TEXTS = pa.list_(_TEXT)
OUTPUT = pa.schema(
    [
        pa.field("line", pa.int64()),
        pa.field("patient", _TEXT),
        pa.field("policy", _TEXT),
        pa.field("reference", _TEXT),
        pa.field("decision", _TEXT),
        pa.field("robust", pa.bool_()),
        pa.field("possible", _TEXTS),
        pa.field("failed", _TEXTS),
        pa.field("missing", _TEXTS),
        pa.field(
            "contested",
            pa.list_(
                pa.struct(
                    [
                        pa.field("reading", _TEXT),
                        pa.field("readings", _TEXTS),
                        pa.field("requirement", _TEXT),
                        pa.field("requirements", _TEXTS),
                        pa.field("alternative", _TEXT),
                        pa.field("alternatives", _TEXTS),
                        pa.field("decision", _TEXT),
                    ]
                )
            ),
        ),
        pa.field("to_settle", _TEXTS),
        pa.field("warnings", pa.list_(pa.struct([pa.field("assumption", _TEXT), pa.field("text", _TEXT)]))),
        pa.field("error", _TEXT),
        pa.field("rules", _TEXT),
    ]
)
"""The result columns: one row per input row and policy, in input order (DESIGN §6)."""

MEANING = {
    "line": "the input row, counted from 1 (in Spark: within the partition)",
    "patient": "the record's id (on an error row too, where it could be read)",
    "policy": "the policy id",
    "reference": "the policy's reference, e.g. ARP 55",
    "decision": "eligible | not_eligible | undetermined, under the adopted reading",
    "robust": "whether every combination of the clinical readings gives this decision",
    "possible": "the decisions reached under some combination of the clinical readings",
    "failed": "the requirements not met, in tree order",
    "missing": "the unknown fields whose answer can still change the decision",
    "contested": "the subset-minimal sets of clinical alternatives under which the decision "
    "differs: one alternative (reading, requirement, alternative) or a combination "
    "(requirements, alternatives); readings and decision always",
    "to_settle": "unknown fields, besides missing, whose answer could settle the readings",
    "warnings": "the domain assumptions the record contradicts",
    "error": "why the row is not a valid patient (the other columns are then null)",
    "rules": "the sha256 of the rule set that decided",
}


def result_batch(results: Sequence[Result], digest: str) -> pa.RecordBatch:
    """The results as a record batch of `OUTPUT`: each row a batch line (`to_json`)."""
    rows = []
    for result in results:
        row = result.to_json()
        if isinstance(result, LineError) and result.patient is not None:
            row["patient"] = result.patient
        row["rules"] = digest
        rows.append(row)
    return pa.RecordBatch.from_pylist(rows, schema=OUTPUT)


def spark_ddl(schema: pa.Schema = OUTPUT) -> str:
    """The schema as a Spark DDL string, for `mapInArrow(decide_batches, spark_ddl())`."""
    return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in schema)


def _spark_type(kind: pa.DataType) -> str:
    if pa.types.is_list(kind):
        return f"ARRAY<{_spark_type(kind.value_type)}>"
    if pa.types.is_struct(kind):
        return "STRUCT<" + ", ".join(f"`{f.name}`: {_spark_type(f.type)}" for f in kind) + ">"
    return {"int64": "BIGINT", "string": "STRING", "bool": "BOOLEAN", "double": "DOUBLE"}[str(kind)]


def output_description() -> dict[str, Any]:
    """`OUTPUT` in words, as `llr-asp schema --output parquet` prints it."""
    return {
        "of": "llr-asp batch --out FILE.parquet, and llr_asp.arrow.decide_batches",
        "rows": "one per input row and policy, in input order; an error row has line, patient "
        "(where the id could be read), error and rules, the rest null",
        "columns": [{"name": f.name, "type": str(f.type), "meaning": MEANING[f.name]} for f in OUTPUT],
        "metadata": {"llr-asp.rules": "the sha256 of the rule set, as the rules column"},
        "spark": spark_ddl(),
    }


def input_description(rules: RuleSet) -> dict[str, Any]:
    """`input_schema` in words, as `llr-asp schema --input parquet` prints it."""
    columns = []
    for f in input_schema(rules):
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        columns.append({"name": f.name, "type": str(f.type), **meta})
    return {
        "of": "llr-asp batch FILE.parquet, and the record batches of llr_asp.arrow.decide_batches",
        "rows": "one patient each; every column may be left out and every value null (unknown)",
        "columns": columns,
        "also": "struct columns of the same paths (msk: struct<assessed: bool, ...>); integer, float "
        "or decimal columns for numbers; dictionary or large strings for text; an integer id; "
        "meta and meta.* columns, ignored",
    }


# -- input ------------------------------------------------------------------------------------

_FIELD_TYPES = {"bool": pa.bool_(), "number": pa.float64(), "integer": pa.int64()}


def input_schema(rules: RuleSet) -> pa.Schema:
    """The input columns a cohort file may have, from the field declarations: `id`, `policy`,
    then each field by its dotted path (every column may be left out, every value null)."""
    columns = [
        pa.field("id", _TEXT, metadata={"meaning": "names the patient in the output"}),
        pa.field("policy", _TEXT, metadata={"meaning": "the policy to evaluate by default"}),
    ]
    for field in rules.fields.values():
        kind = _FIELD_TYPES.get(field.type, _TEXT)
        columns.append(
            pa.field(field.path, kind, metadata={"meaning": field.question, "takes": _takes(field)})
        )
    return pa.schema(columns)


def _takes(field: Field) -> str:
    if field.values:
        return "one of " + ", ".join(field.values)
    if field.type == "bool":
        return "true or false"
    whole = "a whole number" if field.type == "integer" else "a number"
    return f"{whole} from {field.minimum} to {field.maximum}"


Convert = Callable[[pa.Array], list[Any]]


@dataclass(frozen=True)
class _Column:
    """Where a column's values go in the patient document, and how they are read."""

    keys: tuple[str, ...]  # e.g. ("msk", "assessed"); ("id",)
    convert: Convert


class ArrowReader:
    """Arrow rows as patient documents. The columns are checked once per schema (a bad one is an
    InputError naming it); each row then becomes the document a JSON record of it would be."""

    def __init__(self, rules: RuleSet, source: str) -> None:
        self.rules = rules
        self.source = source
        self._plans: dict[pa.Schema, list[tuple[int, tuple[str, ...], _Column]]] = {}

    def documents(self, batch: pa.RecordBatch, first: int) -> list[Numbered]:
        """The batch's rows as numbered documents, the first numbered `first`."""
        plan = self._plans.get(batch.schema)
        if plan is None:
            plan = self._plans[batch.schema] = self.plan(batch.schema)
        columns: list[tuple[tuple[str, ...], list[Any]]] = []
        for index, children, column in plan:
            array: Any = batch.column(index)
            for child in children:  # a field inside a struct column (its nulls made the child's)
                array = array.field(child) if array.null_count == 0 else _flattened(array, child)
            columns.append((column.keys, column.convert(array)))
        rows = batch.num_rows
        documents: list[dict[str, Any]] = [{} for _ in range(rows)]
        for keys, values in columns:
            if len(keys) == 1:
                [key] = keys
                for document, value in zip(documents, values):
                    if value is not None:
                        document[key] = value
            elif len(keys) == 2:
                group, name = keys
                for document, value in zip(documents, values):
                    if value is not None:
                        node = document.get(group)
                        if node is None:
                            document[group] = {name: value}
                        else:
                            node[name] = value
            else:
                for document, value in zip(documents, values):
                    if value is not None:
                        _put(document, keys, value)
        return list(zip(range(first, first + rows), documents))

    def plan(self, schema: pa.Schema) -> list[tuple[int, tuple[str, ...], _Column]]:
        """How each column of `schema` is read; InputError for a column that cannot be."""
        plan: list[tuple[int, tuple[str, ...], _Column]] = []
        seen: set[str] = set()
        for index, top in enumerate(schema):
            for children, path, kind in _leaves(top):
                column = self._column(path, kind)
                if column is None:
                    continue
                if path in seen:
                    raise InputError(
                        self.source, path, "given twice (a column and a struct's child); keep one"
                    )
                seen.add(path)
                plan.append((index, children, column))
        return plan

    def _column(self, path: str, kind: pa.DataType) -> _Column | None:
        """How the column at `path` is read, None for a meta column; InputError for a column that
        is not a field, or whose type cannot hold the field's values."""
        if path == "meta" or path.startswith("meta."):
            return None
        keys = tuple(path.split("."))
        if path == "id":
            if pa.types.is_integer(kind):  # an integer identifier names the patient as its digits
                return _Column(keys, lambda a: [None if v is None else str(v) for v in a.to_pylist()])
            return self._typed(keys, path, kind, _is_text(kind), "a string column")
        if path == "policy":
            return self._typed(keys, path, kind, _is_text(kind), "a string column")
        field = self.rules.fields.get(path)
        if field is None:
            raise InputError(self.source, path, _not_a_field(path, self.rules))
        if field.type == "bool":
            return self._typed(keys, path, kind, pa.types.is_boolean(kind), "a boolean column")
        if field.type in ("number", "integer"):
            numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            wanted = "an integer column" if field.type == "integer" else "a numeric column"
            if numeric and not (pa.types.is_integer(kind) or kind == pa.float64()):
                return _Column(keys, lambda a: a.cast(pa.float64()).to_pylist())  # decimals, float32
            return self._typed(keys, path, kind, numeric, wanted)
        return self._typed(keys, path, kind, _is_text(kind), "a string column")

    def _typed(self, keys: tuple[str, ...], path: str, kind: pa.DataType, fits: bool, wanted: str) -> _Column:
        if not (fits or pa.types.is_null(kind)):
            field = self.rules.fields.get(path)
            takes = f" (it takes {_takes(field)})" if field is not None else ""
            problem = f"a {kind} column where the field needs {wanted}{takes}; cast the column to it"
            raise InputError(self.source, path, problem)
        return _Column(keys, _values)


def _values(array: pa.Array) -> list[Any]:
    return array.to_pylist()  # type: ignore[no-any-return]


def _flattened(array: pa.StructArray, child: str) -> pa.Array:
    """A struct's child with the struct's own nulls as the child's (a null struct: all unknown)."""
    index = array.type.get_field_index(child)
    return array.flatten()[index]


def _leaves(top: pa.Field) -> Iterator[tuple[tuple[str, ...], str, pa.DataType]]:
    """A top-level column's leaves: (the struct children leading to it, its dotted path, its type).
    A struct column is opened unless it is meta or itself a field."""
    if pa.types.is_struct(top.type) and top.name != "meta":
        for child in top.type:
            for children, path, kind in _leaves(child):
                yield (child.name, *children), f"{top.name}.{path}", kind
        return
    yield (), top.name, top.type


def _put(document: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = document
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or str(kind) == "string_view")


def _not_a_field(path: str, rules: RuleSet) -> str:
    close = difflib.get_close_matches(path, ["id", "policy", *rules.fields], n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return (
        f"not a field; {hint}columns are dotted field paths or struct columns of them, meta.* for "
        "anything else (see `llr-asp schema --input parquet`)"
    )


def read_batches(
    batches: Iterable[pa.RecordBatch], rules: RuleSet, source: str = "arrow"
) -> Iterator[Numbered]:
    """Numbered patient documents of Arrow record batches, rows counted from 1 across them."""
    reader = ArrowReader(rules, source)
    line = 1
    for batch in batches:
        yield from reader.documents(batch, line)
        line += batch.num_rows


def read_parquet(path: Path, rules: RuleSet) -> tuple[int, Iterator[Numbered]]:
    """The number of rows of a Parquet file and its rows as numbered documents, read a record
    batch at a time. An unreadable file, or a column that cannot be read, is an InputError."""
    source = str(path)
    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(source, "", "file not found; give the path of a Parquet file") from None
    except (OSError, pa.ArrowException) as error:
        problem = f"not a Parquet file ({_cause(error)}); give one, or --input-format jsonl or csv"
        raise InputError(source, "", problem) from None
    ArrowReader(rules, source).plan(handle.schema_arrow)  # refuse a bad column before anything runs

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from handle.iter_batches(batch_size=BATCH_ROWS)
        except (OSError, pa.ArrowException) as error:
            problem = f"cannot read the Parquet file ({_cause(error)}); is it damaged or cut short?"
            raise InputError(source, "", problem) from None
        finally:
            handle.close()

    return handle.metadata.num_rows, read_batches(batches(), rules, source)


def _cause(error: BaseException) -> str:
    """The first sentence of pyarrow's message."""
    text = str(error).strip()
    return text.splitlines()[0].split(". ")[0].rstrip(".")[:120] if text else type(error).__name__


# -- output -----------------------------------------------------------------------------------


class ParquetOutput:
    """Results written as Parquet (zstd), a row group at a time: memory stays flat. The rule
    set's hash is in every row (`rules`) and in the file's metadata (`llr-asp.rules`)."""

    def __init__(self, sink: Union[str, Path, IO[bytes]], digest: str) -> None:
        self.digest = digest
        schema = OUTPUT.with_metadata({"llr-asp.rules": digest})
        self._writer = pq.ParquetWriter(sink, schema, compression="zstd")
        self._pending: list[Result] = []
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0

    def write(self, result: Result) -> None:
        self._pending.append(result)
        if len(self._pending) >= BATCH_ROWS:
            self._batch()

    def _batch(self) -> None:
        if self._pending:
            batch = result_batch(self._pending, self.digest)
            self._pending = []
            self._batches.append(batch)
            self._rows += batch.num_rows
            self._bytes += batch.nbytes
        if self._rows >= GROUP_ROWS or self._bytes >= GROUP_BYTES:
            self._group()

    def _group(self) -> None:
        if self._batches:
            self._writer.write_table(pa.Table.from_batches(self._batches, OUTPUT), row_group_size=self._rows)
        self._batches, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        """Write what is held and the file's footer."""
        self._batch()
        self._group()
        self._writer.close()

    def __enter__(self) -> ParquetOutput:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()
        else:  # the run failed: the file is abandoned (never renamed into place), the writer released
            with contextlib.suppress(Exception):
                self._writer.close()


# -- Spark, pandas, Polars and DuckDB ---------------------------------------------------------

_screeners: dict[str | None, Screener] = {}
"""The screener of each rule set directory, built once per process: Spark pickles
`decide_batches` by its name and runs it in reused Python workers, which keep this module."""


def screener(rules: Union[str, Path, None] = None) -> Screener:
    """The process's screener for the rule set in `rules` (None: the bundled one)."""
    key = None if rules is None else str(rules)
    found = _screeners.get(key)
    if found is None:
        found = _screeners[key] = Screener.load(None if rules is None else Path(rules))
    return found


def decide_batches(
    batches: Iterable[pa.RecordBatch],
    policy: str | None = "all",
    rules: Union[str, Path, None] = None,
    source: str = "arrow",
) -> Iterator[pa.RecordBatch]:
    """Record batches of patients in, record batches of `OUTPUT` out: one row per input row and
    policy, in order, an error row for a row that is not a valid patient. The shape of Spark's
    `mapInArrow`: `df.mapInArrow(decide_batches, spark_ddl())`. One process: Spark runs one on
    each partition; rows are counted from 1 in each call."""
    held = screener(rules)
    chosen = held.policies(policy)
    reader = ArrowReader(held.rules, source)
    line = 1
    for batch in batches:
        documents = reader.documents(batch, line)
        line += batch.num_rows
        results: list[Result] = []
        for start in range(0, len(documents), CHUNK):
            results += held.screen(documents[start : start + CHUNK], source, chosen)
        if results:
            yield result_batch(results, held.rules.digest)


def decide_frames(
    frames: Iterable[Any], policy: str | None = "all", rules: Union[str, Path, None] = None
) -> Iterator[Any]:
    """`decide_batches` for pandas data frames: Spark's `mapInPandas` shape."""
    for frame in frames:
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        for result in decide_batches([batch], policy, rules, "pandas"):
            yield result.to_pandas()


def decide_table(
    data: Any, policy: str | None = "all", rules: Union[str, Path, None] = None, jobs: int = 1
) -> pa.Table:
    """Decide an Arrow table, a RecordBatchReader or record batches (Polars' `to_arrow()`,
    DuckDB's `arrow()`, pyarrow's own) on `jobs` processes; the results as an Arrow table
    (`pl.from_arrow`, or a DuckDB query over it)."""
    batches = data.to_batches(BATCH_ROWS) if isinstance(data, pa.Table) else data
    if jobs <= 1:
        return pa.Table.from_batches(list(decide_batches(batches, policy, rules)), OUTPUT)
    directory = None if rules is None else Path(rules)
    ruleset = load_rules(directory)
    results = iterate_decisions(read_batches(batches, ruleset), policy, directory, jobs, "arrow")
    return pa.Table.from_batches(list(_grouped(results, ruleset.digest)), OUTPUT)


def _grouped(results: Iterable[Result], digest: str) -> Iterator[pa.RecordBatch]:
    pending: list[Result] = []
    for result in results:
        pending.append(result)
        if len(pending) >= BATCH_ROWS:
            yield result_batch(pending, digest)
            pending = []
    if pending:
        yield result_batch(pending, digest)
