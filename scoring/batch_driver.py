"""Streaming batch scoring: the Azure ML batch driver and the local `mlops batch-score`.

One code path for both. Each CSV (with a header) or Parquet file is read in bounded chunks
(pyarrow's streaming CSV reader, Parquet record batches), every chunk is validated with the same
rules as the online API (exact numbers only, no missing values, finite) and scored through the
bundle's predict function, and the scored rows are written as they come, so memory does not grow
with the input. Each output row is an input row with its source first and the model's outputs
last; the columns are the model's contract, read from its bundle (`prediction` for a regressor,
one probability per class for a classifier):

    source_file, <feature 1>, ..., <feature n>, <output 1>[, ...]

A bad value stops the file with a message naming file, row and column; nothing is half-written:
output goes to a hidden temporary file that is renamed into place only when complete.

On Azure ML the deployment uses `output_action: summary_only` and this driver writes its own
files to the job's output folder, `AZUREML_BI_OUTPUT_PATH` (the documented custom-output
pattern: Learn, "Customize outputs in batch deployments" (how-to-deploy-model-custom-output),
and azureml-examples `cli/endpoints/batch/deploy-models/custom-outputs-parquet`). `run()` writes
one Parquet part per input file, named after the file plus a hash of its path: all executors
write to that folder at once (same page, the concurrency warning), and a retried mini-batch
rewrites the same part. `run()` returns the processed files, as the page requires (a list or a
DataFrame); Azure ML writes that summary to the deployment's `output_file_name`, which the
download ignores. `pipelines/azure/batch.py` merges the parts with `merge_parts()` into the
same CSV or Parquet file `score_files()` writes locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Azure ML loads this file by path; make the `scoring` package beside it importable.
_CODE_ROOT = str(Path(__file__).resolve().parent.parent)
if _CODE_ROOT not in sys.path:
    sys.path.append(_CODE_ROOT)

import contextlib  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, BinaryIO, Protocol  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pa_csv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from scoring.model_bundle import expected_digest_from_env  # noqa: E402
from scoring.runtime import (  # noqa: E402
    LoadedModel,
    ModelLoadError,
    load_model,
    model_dir_from_env,
    quiet_numpy,
)
from scoring.schema import (  # noqa: E402
    BAD_REQUEST,
    MIN_ROWS,
    InputError,
    ModelContract,
    rows_to_matrix,
)

SOURCE_COLUMN = "source_file"
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
PARQUET_SUFFIXES = (".parquet", ".pq")
# The Azure ML job's output folder (Learn, how-to-deploy-model-custom-output).
OUTPUT_PATH_VARIABLE = "AZUREML_BI_OUTPUT_PATH"
PART_SUFFIX = ".scored.parquet"

# Bounded chunks: a few MB each, whatever the file's size.
CHUNK_ROWS = 32_768
CSV_BLOCK_BYTES = 4 << 20
# Read Parquet column chunks through a buffered stream, page by page: without it a whole row
# group (pyarrow writes up to 1Mi rows per group by default) is held in memory at once.
PARQUET_BUFFER_BYTES = 1 << 20


def output_columns(contract: ModelContract) -> tuple[str, ...]:
    """The columns of a scored table: source file, the features, the model's outputs."""
    return (SOURCE_COLUMN, *contract.features, *contract.outputs)


def output_schema(columns: tuple[str, ...]) -> pa.Schema:
    """The Arrow schema of scored rows: the source as text, every other column a float64."""
    return pa.schema(
        [pa.field(columns[0], pa.string())] + [pa.field(name, pa.float64()) for name in columns[1:]]
    )


_LOG = logging.getLogger("scoring.batch")
_model: LoadedModel | None = None
_output_dir: Path | None = None


# -- Azure ML entry points --------------------------------------------------------------------


def steady_memory_pool() -> None:
    """Arrow's allocations from jemalloc, whose footprint stays flat over a long run.

    With pyarrow's default pool (mimalloc), the peak memory of a 10,000,000-row run rose by
    ~30 MB two thirds of the way through (at the same chunks every run) while Arrow's own
    allocations stayed at 33 MB: the allocator kept pages it no longer used, and the peak then
    depended on the file's length (1.15 times the 1,000,000-row peak). From jemalloc the
    10,000,000-row peak is within 2% of the 1,000,000-row one (docs/performance.md). Builds
    without jemalloc (pyarrow's Windows wheels) keep their default pool.
    """
    with contextlib.suppress(NotImplementedError, pa.ArrowNotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def init() -> None:
    """Azure ML batch entry point: verify and load the model, find the job's output folder."""
    global _model, _output_dir
    steady_memory_pool()
    try:
        _model = load_model(model_dir_from_env(), expected_digest_from_env())
    except ModelLoadError as error:
        _LOG.critical("batch scoring init failed, refusing to score: %s", error)
        raise
    output = os.environ.get(OUTPUT_PATH_VARIABLE, "").strip()
    if not output:
        raise RuntimeError(
            f"{OUTPUT_PATH_VARIABLE} is not set; deploy the driver with output_action "
            "summary_only on an Azure ML batch endpoint"
        )
    _output_dir = Path(output)
    _output_dir.mkdir(parents=True, exist_ok=True)
    _LOG.info(
        "model bundle %s verified (digest %s), served by %s",
        _model.bundle,
        _model.digest[:12],
        _model.contract.serving,
    )


def run(mini_batch: list[str]) -> list[str]:
    """Azure ML batch entry point: score each file into its own part; return the files done."""
    if _model is None or _output_dir is None:
        raise RuntimeError("init() must run before run()")
    done = []
    for name in mini_batch:
        path = Path(name)
        target = _output_dir / part_name(path)
        try:
            with AtomicOutput(target, output_columns(_model.contract)) as sink:
                rows = score_file(_model, path, path.name, sink)
        except InputError as error:
            _LOG.error("rejected %s: %s", path.name, error.message)
            raise
        _LOG.info("scored %s: %d rows -> %s", path.name, rows, target.name)
        done.append(path.name)
    return done


def part_name(path: Path) -> str:
    """The output part of one input file: its name plus a hash of its full path (unique)."""
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:12]
    return f"{path.name}.{digest}{PART_SUFFIX}"


# -- reading and validating -------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Validated rows of one file and how far into the file they reach (0..1)."""

    matrix: np.ndarray
    first_row: int  # 0-based index of the chunk's first data row in its file
    fraction: float


def read_chunks(path: Path, source: str, features: tuple[str, ...]) -> Iterator[Chunk]:
    """Validated feature matrices of one file, chunk by chunk; InputError naming file and row."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            BAD_REQUEST,
            f"{source}: unsupported file type {path.suffix or '(none)'!r}; use .csv or .parquet",
        )
    batches = (
        _csv_batches(path, source, features)
        if kind == "csv"
        else _parquet_batches(path, source, features)
    )
    rows = 0
    for batch, fraction in batches:
        if batch.num_rows:
            yield Chunk(_batch_matrix(batch, source, rows, features), rows, fraction)
            rows += batch.num_rows
    if rows < MIN_ROWS:
        raise InputError(BAD_REQUEST, f"{source!r} is empty; send at least {MIN_ROWS} row")


def _check_columns(names: list[str], source: str, features: tuple[str, ...]) -> None:
    missing = [feature for feature in features if feature not in names]
    unexpected = [name for name in names if name not in features]
    if missing or unexpected or len(names) != len(set(names)):
        details = []
        if missing:
            details.append(f"missing {', '.join(missing)}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected)}")
        raise InputError(
            BAD_REQUEST,
            f"{source}: the columns must be exactly the model's {len(features)} features "
            f"({'; '.join(details) or 'duplicated columns'})",
        )


def _unreadable(source: str, error: Exception) -> InputError:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(BAD_REQUEST, f"{source}: cannot be read: {detail}")


class _RaggedRows:
    """pyarrow's invalid-row handler: remembers the first row whose value count is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.error: InputError | None = None

    def __call__(self, row: Any) -> str:
        if self.error is None:
            where = f"row {row.number - 1}" if row.number else "a row"  # line 1 is the header
            self.error = InputError(
                BAD_REQUEST,
                f"{self.source} {where} has {row.actual_columns} values but the header has "
                f"{row.expected_columns} columns; every row needs one value per column",
            )
        return "error"


def _open_csv(
    stream: BinaryIO, column_type: pa.DataType, ragged: _RaggedRows, features: tuple[str, ...]
) -> Any:
    return pa_csv.open_csv(
        stream,
        # Single-threaded: the invalid-row handler then gets the row's line number.
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=ragged),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(features, column_type), strings_can_be_null=True
        ),
    )


def _csv_batches(
    path: Path, source: str, features: tuple[str, ...]
) -> Iterator[tuple[pa.RecordBatch, float]]:
    size = max(path.stat().st_size, 1)
    ragged = _RaggedRows(source)
    with path.open("rb") as stream:
        try:
            reader = _open_csv(stream, pa.float64(), ragged, features)
            _check_columns(reader.schema.names, source, features)
            for batch in reader:
                yield batch, min(stream.tell() / size, 1.0)
        except pa.ArrowInvalid as error:
            if ragged.error is not None:
                raise ragged.error from None
            if str(error).startswith("Empty CSV file"):
                raise InputError(BAD_REQUEST, f"{source}: the file is empty") from None
            if "conversion error" in str(error):
                _explain_csv_values(path, source, features)
            raise _unreadable(source, error) from None
        except OSError as error:
            raise _unreadable(source, error) from None


def _parquet_batches(
    path: Path, source: str, features: tuple[str, ...]
) -> Iterator[tuple[pa.RecordBatch, float]]:
    try:
        file = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER_BYTES, pre_buffer=False)
        _check_columns(file.schema_arrow.names, source, features)
        total = max(file.metadata.num_rows, 1)
        done = 0
        for batch in file.iter_batches(
            batch_size=CHUNK_ROWS, columns=list(features), use_threads=False
        ):
            done += batch.num_rows
            yield batch, done / total
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(source, error) from None


def _is_number(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )


def _batch_matrix(
    batch: pa.RecordBatch, source: str, first_row: int, features: tuple[str, ...]
) -> np.ndarray:
    """The chunk as a float64 matrix in the features' order, with the online API's rules."""
    columns = [batch.column(name) for name in features]
    if not all(_is_number(column.type) for column in columns):
        _explain_rows(batch.select(list(features)).to_pylist(), source, first_row, features)
    matrix = np.empty((batch.num_rows, len(features)), dtype=np.float64)
    for index, column in enumerate(columns):
        if pa.types.is_null(column.type):
            matrix[:, index] = np.nan
        else:
            matrix[:, index] = column.to_numpy(zero_copy_only=False)  # nulls become NaN
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column_index = (int(index) for index in np.argwhere(bad)[0])
        where = f"{source} row {first_row + row + 1}, column {features[column_index]}"
        if np.isnan(matrix[row, column_index]):
            raise InputError(BAD_REQUEST, f"{where} is missing; every feature needs a value")
        raise InputError(
            BAD_REQUEST, f"{where} is too large (overflows to infinity); send finite numbers"
        )
    return matrix


def _explain_rows(
    records: list[dict[str, Any]], source: str, first_row: int, features: tuple[str, ...]
) -> None:
    """Raise the online API's message for the first value that is not a number."""
    rows = [[record[name] for name in features] for record in records]
    for index, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is None or (type(value) is float and value != value):  # null or NaN
                raise InputError(
                    BAD_REQUEST,
                    f"{source} row {first_row + index + 1}, column {features[column]} is "
                    "missing; every feature needs a value",
                )

    def locate(row: int, column: int) -> str:
        return f"{source} row {first_row + row + 1}, column {features[column]}"

    rows_to_matrix(rows, max_rows=None, features=features, locate=locate, what=source)
    raise InputError(BAD_REQUEST, f"{source}: the feature columns must hold numbers")


_BOOLEANS = {"true": True, "false": False}


def _explain_csv_values(path: Path, source: str, features: tuple[str, ...]) -> None:
    """A CSV value did not parse as a number: find it (file, row, column) and say what it is."""
    ragged = _RaggedRows(source)
    first_row = 0
    with path.open("rb") as stream:
        for batch in _open_csv(stream, pa.string(), ragged, features):
            for column, name in enumerate(features):
                values = batch.column(name)
                bad = _first_unparsable(values)
                if bad is None:
                    continue
                text = values[bad].as_py()
                value: Any = _BOOLEANS.get(text.strip().lower(), text)
                row: list[Any] = [0.0] * len(features)
                row[column] = value

                def locate(_row: int, at: int, line: int = first_row + bad + 1) -> str:
                    return f"{source} row {line}, column {features[at]}"

                rows_to_matrix([row], max_rows=None, features=features, locate=locate, what=source)
            first_row += batch.num_rows


def _first_unparsable(values: pa.Array) -> int | None:
    """Index of the first string that pyarrow cannot read as a float64 (bisecting on prefixes)."""

    def parses(length: int) -> bool:
        try:
            pc.cast(values.slice(0, length), pa.float64())
        except pa.ArrowInvalid:
            return False
        return True

    if parses(len(values)):
        return None
    low, high = 0, len(values)  # the prefix of length `high` fails, of length `low` parses
    while high - low > 1:
        middle = (low + high) // 2
        if parses(middle):
            low = middle
        else:
            high = middle
    return high - 1


# -- scoring ----------------------------------------------------------------------------------


def predict_chunk(model: LoadedModel, chunk: Chunk, source: str) -> np.ndarray:
    """The chunk's outputs, one row per input row; InputError naming a row that is not finite."""
    try:
        with quiet_numpy():
            return model.score(chunk.matrix).reshape(len(chunk.matrix), -1)
    except InputError:
        with quiet_numpy():
            outputs = np.asarray(model.predict(chunk.matrix), dtype=np.float64)
        finite = np.isfinite(outputs.reshape(len(chunk.matrix), -1)).all(axis=1)
        row = chunk.first_row + int(np.argmin(finite)) + 1
        raise InputError(
            BAD_REQUEST,
            f"{source} row {row}: the prediction is not a finite number; its inputs are far "
            "outside the range the model was trained on",
        ) from None


class Sink(Protocol):
    """Where scored rows go, chunk by chunk: per row, the inputs then the outputs."""

    def write(self, source: str, values: np.ndarray) -> None: ...

    def close(self) -> None: ...


def score_file(
    model: LoadedModel,
    path: Path,
    source: str,
    sink: Sink,
    on_chunk: Callable[[int, float], None] | None = None,
) -> int:
    """Stream one file through validation and the model into `sink`; return its row count."""
    rows = 0
    for chunk in read_chunks(path, source, model.contract.features):
        outputs = predict_chunk(model, chunk, source)
        sink.write(source, np.column_stack((chunk.matrix, outputs)))
        rows += len(chunk.matrix)
        if on_chunk is not None:
            on_chunk(len(chunk.matrix), chunk.fraction)
    return rows


# -- writing ----------------------------------------------------------------------------------


def _csv_field(value: str) -> str:
    """One CSV field quoted as Python's csv module (and pandas) quote it: only when needed."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([value])
    return buffer.getvalue()[:-1]


def csv_lines(prefix: str, values: np.ndarray) -> pa.Array:
    """One CSV line per row: `prefix` (a field, already quoted) then the row's floats, written
    as Python's repr writes them (as pandas' CSV writer did), vectorised.

    pyarrow's cast gives the same shortest round-trip digits but its own notation: 1.0 as "1",
    -0.0 as "-0", 1e-05 as "0.00001", 45419699185.48361 as "4.541969918548361e+10". Rows with
    a value where the two can differ (integral, magnitude below 1e-4 or from 1e10 on) are
    written with repr instead; in between they agree (tests/scoring/test_batch_driver.py
    checks both against repr). Those rows are few in real data (1-2 % of diabetes-like rows).
    """
    columns = [pc.cast(pa.array(values[:, index]), pa.string()) for index in range(values.shape[1])]
    lines = pc.binary_join_element_wise(pa.scalar(prefix, pa.string()), *columns, ",")
    magnitude = np.abs(values)
    odd = ((magnitude < 1e-4) | (magnitude >= 1e10) | (values == np.trunc(values))).any(axis=1)
    if not odd.any():
        return lines
    fixed = [",".join([prefix, *map(repr, row)]) for row in values[odd].tolist()]
    return pc.replace_with_mask(lines, pa.array(odd), pa.array(fixed, type=pa.string()))


class CsvSink:
    """CSV with a header, written as pandas' `to_csv(index=False)` writes it."""

    def __init__(self, stream: BinaryIO, columns: tuple[str, ...]) -> None:
        self._stream = stream
        self._stream.write((",".join(_csv_field(name) for name in columns) + "\n").encode())
        self._fields: dict[str, str] = {}

    def write(self, source: str, values: np.ndarray) -> None:
        if source not in self._fields:
            self._fields[source] = _csv_field(source)
        lines = csv_lines(self._fields[source], values)
        text = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)]), lines), "\n")
        self._stream.write(text[0].as_buffer())
        self._stream.write(b"\n")

    def close(self) -> None:
        self._stream.flush()


class ParquetSink:
    """Parquet, one row group per chunk."""

    def __init__(self, stream: BinaryIO, columns: tuple[str, ...]) -> None:
        self._schema = output_schema(columns)
        self._writer = pq.ParquetWriter(stream, self._schema)

    def write(self, source: str, values: np.ndarray) -> None:
        columns = [pa.array(np.full(len(values), source, dtype=object), pa.string())]
        columns += [pa.array(values[:, index]) for index in range(values.shape[1])]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def is_parquet(path: Path) -> bool:
    """Whether an output file is Parquet (by its suffix); anything else is CSV."""
    return path.suffix.lower() in PARQUET_SUFFIXES


class AtomicOutput:
    """A sink for `path` (CSV or Parquet by suffix) that appears only if the block completes.

    Rows go to a hidden temporary file beside `path`, renamed over it on success and removed on
    any error, so readers never see half a file.
    """

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns
        self.partial = path.with_name(f".{path.name}.{os.getpid()}.partial")

    def __enter__(self) -> Sink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = self.partial.open("wb")
        try:
            self._sink: Sink = (
                ParquetSink(self._stream, self.columns)
                if is_parquet(self.path)
                else CsvSink(self._stream, self.columns)
            )
        except BaseException:
            self._discard()
            raise
        return self._sink

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            self._sink.close()
            self._stream.close()
            self.partial.replace(self.path)
        finally:
            self._discard()

    def _discard(self) -> None:
        sink = getattr(self, "_sink", None)
        if sink is not None:
            with contextlib.suppress(Exception):  # a half-written Parquet footer: discarded
                sink.close()
        self._stream.close()
        self.partial.unlink(missing_ok=True)


# -- local folders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a batch run is: files done, rows scored, bytes of input behind us."""

    files_done: int
    files_total: int
    rows: int
    bytes_done: float
    bytes_total: int


@dataclass(frozen=True)
class Summary:
    """What a batch run did."""

    files: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class _Tracker:
    """Counts rows and input bytes for the progress callback."""

    def __init__(
        self, files: int, total_bytes: int, progress: Callable[[Progress], None] | None
    ) -> None:
        self.files, self.total_bytes, self.progress = files, total_bytes, progress
        self.files_done = 0
        self.rows = 0
        self.bytes_done = 0
        self.size = 0  # of the file being scored

    def chunk(self, rows: int, fraction: float) -> None:
        self.rows += rows
        self._report(self.bytes_done + self.size * fraction)

    def file_done(self) -> None:
        self.files_done += 1
        self.bytes_done += self.size
        self._report(self.bytes_done)

    def _report(self, bytes_done: float) -> None:
        if self.progress is not None:
            self.progress(
                Progress(self.files_done, self.files, self.rows, bytes_done, self.total_bytes)
            )


def input_files(input_dir: Path) -> list[Path]:
    """Every non-hidden file under a folder, in a stable order."""
    return sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(input_dir).parts)
    )


def score_sources(
    model: LoadedModel,
    sources: Iterable[tuple[Path, str]],
    output_file: Path,
    progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Score (path, source name) pairs into one output file, atomically; return the summary."""
    steady_memory_pool()
    started = time.perf_counter()
    files = list(sources)
    sizes = [path.stat().st_size for path, _ in files]
    tracker = _Tracker(len(files), sum(sizes), progress)
    with AtomicOutput(output_file, output_columns(model.contract)) as sink:
        for (path, source), size in zip(files, sizes, strict=True):
            tracker.size = size
            score_file(model, path, source, sink, tracker.chunk)
            tracker.file_done()
    return Summary(files=len(files), rows=tracker.rows, seconds=time.perf_counter() - started)


def score_files(
    bundle_dir: Path,
    input_dir: Path,
    output_file: Path,
    expected_digest: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Score every CSV/Parquet file under `input_dir` into `output_file`.

    The bundle is verified first (against `expected_digest` when given). The output is CSV with
    a header, or Parquet when `output_file` ends in .parquet or .pq. Raises ModelLoadError or
    InputError (with file, row and column) and writes nothing if any file is invalid.
    """
    model = load_model(bundle_dir, expected_digest)
    files = input_files(input_dir)
    if not files:
        raise InputError(BAD_REQUEST, f"{input_dir} holds no files to score")
    sources = [(path, path.relative_to(input_dir).as_posix()) for path in files]
    return score_sources(model, sources, output_file, progress)


def merge_parts(parts_dir: Path, output_file: Path) -> Summary:
    """Concatenate the parts `run()` wrote (one per input file) into one CSV or Parquet file.

    Parts are taken in name order (input file name first), read chunk by chunk, and written
    atomically, exactly as `score_files()` writes a local run. Every part must have the columns
    of the first (one model scored them all).
    """
    started = time.perf_counter()
    parts = sorted(
        path for path in parts_dir.rglob(f"*{PART_SUFFIX}") if not path.name.startswith(".")
    )
    rows = 0
    schemas = [pq.ParquetFile(part).schema_arrow for part in parts]
    columns = tuple(schemas[0].names) if schemas else (SOURCE_COLUMN,)
    expected = output_schema(columns)
    for part, schema in zip(parts, schemas, strict=True):
        if columns[0] != SOURCE_COLUMN or not schema.equals(expected):
            raise InputError(
                BAD_REQUEST,
                f"{part.name} is not a part written by scoring/batch_driver.py for this model "
                f"(columns {', '.join(schema.names)})",
            )
    with AtomicOutput(output_file, columns) as sink:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=CHUNK_ROWS):
                if not batch.num_rows:
                    continue
                values = np.column_stack(
                    [batch.column(name).to_numpy(zero_copy_only=False) for name in columns[1:]]
                )
                sink.write(batch.column(SOURCE_COLUMN)[0].as_py(), values)
                rows += batch.num_rows
    return Summary(files=len(parts), rows=rows, seconds=time.perf_counter() - started)
