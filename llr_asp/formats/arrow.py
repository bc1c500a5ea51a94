"""Cohorts where the data lives: Arrow record batches and Parquet files in and out (the
`parquet` extra, pyarrow).

- `read_batches`: Arrow rows as patient documents (a reader of `llr_asp.formats.readers`). The columns
  are the field declarations' dotted paths (`msk.assessed`), struct columns of them (`msk`
  with a child `assessed`), or both; `id`, `policy`, and `meta` or `meta.*` (ignored). A null
  is unknown. Values keep their Arrow types, which validation judges as strictly as JSON's; a
  column no value of which could be valid (a string column for a true/false field) or that is
  not a field is refused before any row is read, naming the column and the fix.
- `OUTPUT`: the result columns, a batch line's (`Screening.to_json`, its `urgent` as the flat
  columns `formats.results.URGENT` declares for CSV too) with `error` for a row that is not a
  valid patient and `rules`, the rule set's hash. `result_batch` builds them.
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
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..core.documents import Numbered
from ..core.errors import InputError
from ..core.ruleset import Field, RuleSet, load_rules
from ..engines.batch import CHUNK, LineError, Result, Screener, decide_chunks
from .results import URGENT, flat

BATCH_ROWS = 8192  # rows of input read at a time
OUTPUT_ROWS = 1024  # results turned into a record batch at a time (their JSON objects: 2-4 KB each)
GROUP_BYTES = 16 << 20  # output held before a Parquet row group is written
GROUP_ROWS = 64 * 1024  # ... or this many rows, whichever comes first

_TEXT = pa.string()
_TEXTS = pa.list_(_TEXT)
OUTPUT = pa.schema(
    [
        pa.field("line", pa.int64()),
        pa.field("patient", _TEXT),
        pa.field("policy", _TEXT),
        pa.field("reference", _TEXT),
        pa.field("decision", _TEXT),
        *(pa.field(c.name, _TEXTS if c.listed else _TEXT) for c in URGENT),
        pa.field("robust", pa.bool_()),
        pa.field("possible", _TEXTS),
        pa.field("stopped_by", _TEXTS),
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
        pa.field("warnings", pa.list_(pa.struct([pa.field("assumption", _TEXT), pa.field("text", _TEXT)]))),
        pa.field("error", _TEXT),
        pa.field("rules", _TEXT),
        pa.field(
            "edition",
            pa.struct(
                [
                    pa.field("policy", _TEXT),
                    pa.field("family", _TEXT),
                    pa.field("in_force_from", _TEXT),
                    pa.field("rules", _TEXT),
                ]
            ),
        ),
    ]
)
"""The result columns: one row per input row and policy it is decided for (the row's `policy`,
else every one, unless a policy is asked for), in input order (DESIGN §6)."""

MEANING = {
    "line": "the input row, counted from 1 (in Spark: within the partition)",
    "patient": "the record's id (on an error row too, where it could be read)",
    "policy": "the policy id",
    "reference": "the policy's reference, e.g. ARP 55",
    "decision": "eligible | not_eligible | undetermined, under the adopted reading",
    **{c.name: c.meaning for c in URGENT},
    "robust": "whether every combination of the clinical readings gives this decision",
    "possible": "the decisions reached under some combination of the clinical readings",
    "stopped_by": "the requirements that refuse the patient or leave the decision open (the parts of "
    "the decision whose status is its own); empty when eligible",
    "failed": "every requirement not met, parts of parts too, in tree order",
    "missing": "the unknown fields whose answer can still change the decision",
    "contested": "the subset-minimal sets of clinical alternatives under which the decision "
    "differs: one alternative (reading, requirement, alternative) or a combination "
    "(requirements, alternatives); readings and decision always",
    "warnings": "the domain assumptions the record contradicts",
    "error": "why the row is not a valid patient (the other columns are then null)",
    "rules": "the sha256 of the rule set that decided",
    "edition": "the edition of the policy that decided: policy (its id), family (the id users name), "
    "in_force_from (YYYY-MM-DD; null: from the start) and rules (sha256)",
}


def result_batch(results: Sequence[Result], digest: str) -> pa.RecordBatch:
    """The results as a record batch of `OUTPUT`: each row a batch line, the very JSON object
    `llr-asp batch` writes to JSON Lines (`to_json`) read by Arrow's JSON reader, with the
    rule set's hash and, on an error row, the patient's id where it could be read. (Arrow's
    reader, not `pa.array` over Python lists: that imports pandas where it is installed, 50 MB.)"""
    lines = []
    for result in results:
        row = flat(result.to_json())
        if isinstance(result, LineError) and result.patient is not None:
            row["patient"] = result.patient
        row["rules"] = digest
        line = _encode(row)
        if not line.isascii() and _unencodable(line):  # a lone surrogate, from a JSON escape
            line = _encode(_printable(row))
        lines.append(line)
    if not lines:
        return pa.RecordBatch.from_arrays(
            [c.combine_chunks() for c in OUTPUT.empty_table().columns], schema=OUTPUT
        )
    data = "\n".join(lines).encode()
    table = pa_json.read_json(pa.BufferReader(data), read_options=_READ, parse_options=_PARSE)
    [batch] = table.combine_chunks().to_batches()
    return batch


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_READ = pa_json.ReadOptions(use_threads=False, block_size=1 << 30)
_PARSE = pa_json.ParseOptions(explicit_schema=OUTPUT, unexpected_field_behavior="error")


def _unencodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _printable(value: Any) -> Any:
    """`value` with each string that is not valid Unicode written with backslash escapes (Parquet
    strings are UTF-8; JSON Lines keeps the JSON escape)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


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
        "of": "llr-asp batch --out FILE.parquet, and llr_asp.formats.arrow.decide_batches",
        "rows": "one per input row and policy it is decided for (the row's policy, else every "
        "policy, unless one is asked for), in input order; an error row has line, patient "
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
        "of": "llr-asp batch FILE.parquet, and the record batches of llr_asp.formats.arrow.decide_batches",
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
        pa.field("policy", _TEXT, metadata={"meaning": "the policy to decide the row for (none: every one)"}),
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


Convert = Callable[[pa.Array], pa.Array]


@dataclass(frozen=True)
class _Column:
    """A leaf column: where it sits (its top-level column and the struct children leading to
    it), where its values go in the patient document, and how they are converted."""

    index: int
    children: tuple[str, ...]
    keys: tuple[str, ...]  # e.g. ("msk", "assessed"); ("id",)
    convert: Convert | None = None


class ArrowReader:
    """Arrow rows as patient documents. The columns are checked once per schema (a bad one is an
    InputError naming it); each row then becomes the document a JSON record of it would be,
    with a null as null (unknown). The rows are regrouped into one struct column shaped as the
    document, which Arrow turns into Python dicts itself."""

    def __init__(self, rules: RuleSet, source: str) -> None:
        self.rules = rules
        self.source = source
        self._plans: dict[pa.Schema, list[_Column]] = {}

    def documents(self, batch: pa.RecordBatch, first: int) -> list[Numbered]:
        """The batch's rows as numbered documents, the first numbered `first`."""
        plan = self._plans.get(batch.schema)
        if plan is None:
            plan = self._plans[batch.schema] = self.plan(batch.schema)
        tree: dict[str, Any] = {}
        for column in plan:
            array = batch.column(column.index)
            for child in column.children:  # a struct's nulls become its children's
                array = _child(array, child)
            node = tree
            for key in column.keys[:-1]:
                node = node.setdefault(key, {})
            node[column.keys[-1]] = array if column.convert is None else column.convert(array)
        rows = range(first, first + batch.num_rows)
        if not tree:
            return [(line, {}) for line in rows]
        documents = _struct(tree).to_pylist()
        for key in ("id", "policy"):  # a null names no patient, no policy (JSON's null is refused)
            if key in tree and tree[key].null_count:
                for document in documents:
                    if document[key] is None:
                        del document[key]
        return list(zip(rows, documents))

    def plan(self, schema: pa.Schema) -> list[_Column]:
        """How each column of `schema` is read; InputError for a column that cannot be."""
        plan: list[_Column] = []
        seen: set[str] = set()
        for index, top in enumerate(schema):
            for children, path, kind in _leaves(top):
                if path == "meta" or path.startswith("meta."):
                    continue
                if path in seen:
                    problem = "given twice (a column and a struct's child); keep one"
                    raise InputError(self.source, path, problem)
                seen.add(path)
                plan.append(_Column(index, children, tuple(path.split(".")), self._convert(path, kind)))
        return plan

    def _convert(self, path: str, kind: pa.DataType) -> Convert | None:
        """How the column at `path` is converted (None: as it is); InputError for a column that
        is not a field, or whose type cannot hold the field's values."""
        if pa.types.is_null(kind):
            return None  # every value unknown
        if path == "id":
            if pa.types.is_integer(kind):  # an integer identifier names the patient by its digits
                return _cast(pa.string())
            return self._fits(path, kind, _is_text(kind), "a string column")
        if path == "policy":
            return self._fits(path, kind, _is_text(kind), "a string column")
        field = self.rules.fields.get(path)
        if field is None:
            raise InputError(self.source, path, _not_a_field(path, self.rules))
        if field.type == "bool":
            return self._fits(path, kind, pa.types.is_boolean(kind), "a boolean column")
        if field.type in ("number", "integer"):
            if pa.types.is_integer(kind) or kind == pa.float64():
                return None
            numeric = pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            wanted = "an integer column" if field.type == "integer" else "a numeric column"
            self._fits(path, kind, numeric, wanted)
            return _cast(pa.float64())  # decimals, float32: judged as numbers, as JSON's are
        return self._fits(path, kind, _is_text(kind), "a string column")

    def _fits(self, path: str, kind: pa.DataType, fits: bool, wanted: str) -> Convert | None:
        """No conversion, for a column that fits; an InputError for one that does not."""
        if not fits:
            field = self.rules.fields.get(path)
            takes = f" (it takes {_takes(field)})" if field is not None else ""
            problem = f"the column is {kind} where the field needs {wanted}{takes}; cast the column to it"
            raise InputError(self.source, path, problem)
        return None


def _cast(kind: pa.DataType) -> Convert:
    return lambda array: array.cast(kind)


def _child(array: pa.StructArray, name: str) -> pa.Array:
    """A struct's child with the struct's own nulls as the child's (a null struct: all unknown)."""
    if array.null_count == 0:
        return array.field(name)
    return array.flatten()[array.type.get_field_index(name)]


def _struct(tree: dict[str, Any]) -> pa.StructArray:
    names = list(tree)
    arrays = [_struct(v) if isinstance(v, dict) else v for v in tree.values()]
    return pa.StructArray.from_arrays(arrays, names)


def _leaves(top: pa.Field) -> Iterator[tuple[tuple[str, ...], str, pa.DataType]]:
    """A top-level column's leaves: (the struct children leading to it, its dotted path, its type).
    A struct column is opened, except meta."""
    if pa.types.is_struct(top.type) and top.name != "meta":
        for child in top.type:
            for children, path, kind in _leaves(child):
                yield (child.name, *children), f"{top.name}.{path}", kind
        return
    yield (), top.name, top.type


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
    for chunk in row_chunks(batches, source):
        yield from chunk.documents(rules)


@dataclass(frozen=True)
class ArrowRows:
    """A chunk of rows for a worker process (`batch.Rows`): pickled as Arrow IPC of the rows
    alone, a fraction of the cost of pickling the documents, or of a slice's whole buffers."""

    batch: pa.RecordBatch
    first: int  # the number of its first row
    source: str

    def documents(self, rules: RuleSet) -> list[Numbered]:
        key = (rules.digest, self.source)
        reader = _readers.get(key)
        if reader is None:
            reader = _readers[key] = ArrowReader(rules, self.source)
        return reader.documents(self.batch, self.first)

    def __reduce__(self) -> tuple[Any, tuple[bytes, int, str]]:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.batch.schema) as stream:
            stream.write_batch(self.batch)
        return _rows, (sink.getvalue().to_pybytes(), self.first, self.source)


def _rows(data: bytes, first: int, source: str) -> ArrowRows:
    return ArrowRows(pa.ipc.open_stream(data).read_next_batch(), first, source)


_readers: dict[tuple[str, str], ArrowReader] = {}  # a process's readers, each keeping its column plans


def row_chunks(
    batches: Iterable[pa.RecordBatch], source: str, size: int | None = None
) -> Iterator[ArrowRows]:
    """Record batches cut into chunks of at most `size` (CHUNK) rows, numbered from 1 across them."""
    size = size or CHUNK
    first = 1
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield ArrowRows(batch.slice(start, size), first + start, source)
        first += batch.num_rows


def read_parquet(path: Path, rules: RuleSet) -> tuple[int, Iterator[ArrowRows]]:
    """The number of rows of a Parquet file and its rows in chunks (`batch.decide_chunks`),
    read a record batch at a time. An unreadable file, or a column that cannot be read, is an
    InputError, raised before any row is read."""
    source = str(path)
    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(source, "", "file not found; give the path of a Parquet file") from None
    except (OSError, pa.ArrowException) as error:
        problem = f"not a Parquet file ({_cause(error)}); give one, or --input-format jsonl or csv"
        raise InputError(source, "", problem) from None
    ArrowReader(rules, source).plan(handle.schema_arrow)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from handle.iter_batches(batch_size=BATCH_ROWS)
        except (OSError, pa.ArrowException) as error:
            problem = f"cannot read the Parquet file ({_cause(error)}); is it damaged or cut short?"
            raise InputError(source, "", problem) from None
        finally:
            handle.close()

    return handle.metadata.num_rows, row_chunks(batches(), source)


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
        if len(self._pending) >= OUTPUT_ROWS:
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
    policy: str | None = None,
    rules: Union[str, Path, None] = None,
    source: str = "arrow",
) -> Iterator[pa.RecordBatch]:
    """Record batches of patients in, record batches of `OUTPUT` out: one row per input row and
    policy it is decided for, in order, an error row for a row that is not a valid patient.
    `policy`: a policy id or "all", for every row; None (the default): the policy a row names
    (its `policy` column), else every policy. The shape of Spark's
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
    frames: Iterable[Any], policy: str | None = None, rules: Union[str, Path, None] = None
) -> Iterator[Any]:
    """`decide_batches` for pandas data frames: Spark's `mapInPandas` shape."""
    for frame in frames:
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        for result in decide_batches([batch], policy, rules, "pandas"):
            yield result.to_pandas()


def decide_table(
    data: Any, policy: str | None = None, rules: Union[str, Path, None] = None, jobs: int = 1
) -> pa.Table:
    """Decide an Arrow table, a RecordBatchReader or record batches (Polars' `to_arrow()`,
    DuckDB's `arrow()`, pyarrow's own) on `jobs` processes; the results as an Arrow table
    (`pl.from_arrow`, or a DuckDB query over it)."""
    batches = data.to_batches(BATCH_ROWS) if isinstance(data, pa.Table) else data
    if jobs <= 1:
        return pa.Table.from_batches(list(decide_batches(batches, policy, rules)), OUTPUT)
    directory = None if rules is None else Path(rules)
    digest = load_rules(directory).digest
    results = decide_chunks(row_chunks(batches, "arrow"), policy, directory, jobs, "arrow")
    return pa.Table.from_batches(list(_grouped(results, digest)), OUTPUT)


def _grouped(results: Iterable[Result], digest: str) -> Iterator[pa.RecordBatch]:
    pending: list[Result] = []
    for result in results:
        pending.append(result)
        if len(pending) >= OUTPUT_ROWS:
            yield result_batch(pending, digest)
            pending = []
    if pending:
        yield result_batch(pending, digest)
