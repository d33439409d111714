"""Batch scoring: the Azure ML batch-deployment driver and the local `mlops batch-score`.

Azure ML batch deployments call `init()` once and `run(mini_batch)` with a list of file paths;
with `output_action: append_row` the rows of the DataFrame `run()` returns are appended to the
deployment's output file (without the column names). Each returned row is an input row with
its source file first and the prediction appended:

    source_file, age, sex, bmi, bp, s1, s2, s3, s4, s5, s6, prediction

Files are CSV (with a header) or Parquet, and must hold exactly the feature columns (any
order). Values go through the same validation as the online API (`scoring.schema`); a file
with a bad value fails its mini-batch with a message naming file, row and column, and the
deployment's error threshold decides whether the job goes on.

`score_files()` is the same scoring for a local folder, writing one CSV (with a header) or
Parquet file.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Azure ML loads this file by path; make the `scoring` package beside it importable.
_CODE_ROOT = str(Path(__file__).resolve().parent.parent)
if _CODE_ROOT not in sys.path:
    sys.path.append(_CODE_ROOT)

import logging  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from scoring.model_bundle import expected_digest_from_env  # noqa: E402
from scoring.runtime import LoadedModel, ModelLoadError, load_model, model_dir_from_env  # noqa: E402
from scoring.schema import (  # noqa: E402
    BAD_REQUEST,
    FEATURES,
    PREDICTION_COLUMN,
    InputError,
    rows_to_matrix,
)

SOURCE_COLUMN = "source_file"
OUTPUT_COLUMNS: tuple[str, ...] = (SOURCE_COLUMN, *FEATURES, PREDICTION_COLUMN)
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

_LOG = logging.getLogger("scoring.batch")
_model: LoadedModel | None = None


def init() -> None:
    """Azure ML batch entry point: verify and load the model from AZUREML_MODEL_DIR."""
    global _model
    try:
        _model = load_model(model_dir_from_env(), expected_digest_from_env())
    except ModelLoadError as error:
        _LOG.critical("batch scoring init failed, refusing to score: %s", error)
        raise
    _LOG.info("model bundle %s verified (digest %s)", _model.bundle, _model.digest[:12])


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Azure ML batch entry point: score every file of the mini-batch; one row per input row."""
    if _model is None:
        raise RuntimeError("init() must run before run()")
    frames = []
    for name in mini_batch:
        path = Path(name)
        try:
            frames.append(score_frame(_model, read_table(path), path.name))
        except InputError as error:
            _LOG.error("rejected %s: %s", path.name, error.message)
            raise
    return _concat(frames)


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV (with a header) or Parquet file; InputError if it cannot be read."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            BAD_REQUEST,
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; use .csv or .parquet",
        )
    try:
        if kind == "csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InputError(BAD_REQUEST, f"{path.name}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        # ParserError names the line of a ragged CSV row; pyarrow errors are ValueErrors.
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(BAD_REQUEST, f"{path.name}: cannot be read: {detail}") from None


def frame_to_matrix(frame: pd.DataFrame, source: str) -> np.ndarray:
    """Validate a table of feature columns with the online API's rules; return the matrix."""
    columns = [str(column) for column in frame.columns]
    missing = [feature for feature in FEATURES if feature not in columns]
    unexpected = [column for column in columns if column not in FEATURES]
    if missing or unexpected or len(columns) != len(set(columns)):
        details = []
        if missing:
            details.append(f"missing {', '.join(missing)}")
        if unexpected:
            details.append(f"unexpected {', '.join(unexpected)}")
        raise InputError(
            BAD_REQUEST,
            f"{source}: the columns must be exactly the features {', '.join(FEATURES)} "
            f"({'; '.join(details) or 'duplicated columns'})",
        )
    features = frame.loc[:, list(FEATURES)]
    absent = features.isna().to_numpy()
    if absent.any():
        row, column = (int(index) for index in np.argwhere(absent)[0])
        raise InputError(
            BAD_REQUEST,
            f"{source} row {row + 1}, column {FEATURES[column]} is missing; every feature "
            "needs a value",
        )

    def locate(row: int, column: int) -> str:
        return f"{source} row {row + 1}, column {FEATURES[column]}"

    # The same checks as a JSON request: exact numbers only, no booleans or strings, finite.
    rows = features.to_numpy(dtype=object).tolist()
    return rows_to_matrix(rows, max_rows=None, locate=locate, what=source)


def score_frame(model: LoadedModel, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Score one table: the input rows with their source first and the prediction appended."""
    matrix = frame_to_matrix(frame, source)
    try:
        predictions = model.score(matrix)
    except InputError as error:
        raise InputError(error.status, f"{source}: {error.message}") from None
    scored = pd.DataFrame(matrix, columns=list(FEATURES))
    scored.insert(0, SOURCE_COLUMN, source)
    scored[PREDICTION_COLUMN] = predictions
    return scored


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def input_files(input_dir: Path) -> list[Path]:
    """Every non-hidden file under a folder, in a stable order."""
    return sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(input_dir).parts)
    )


def score_files(
    bundle_dir: Path, input_dir: Path, output_file: Path, expected_digest: str | None = None
) -> int:
    """Score every CSV/Parquet file under `input_dir` into `output_file`; return the row count.

    The bundle is verified first (against `expected_digest` when given). The output is CSV with
    a header, or Parquet when `output_file` ends in .parquet. Raises ModelLoadError or
    InputError (with file, row and column) and writes nothing if any file is invalid.
    """
    model = load_model(bundle_dir, expected_digest)
    files = input_files(input_dir)
    if not files:
        raise InputError(BAD_REQUEST, f"{input_dir} holds no files to score")
    frames = []
    for path in files:
        source = path.relative_to(input_dir).as_posix()
        frames.append(score_frame(model, read_table(path), source))
    result = _concat(frames)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    partial = output_file.with_name(f".{output_file.name}.{os.getpid()}.partial")
    try:
        if output_file.suffix.lower() in (".parquet", ".pq"):
            result.to_parquet(partial, index=False)
        else:
            result.to_csv(partial, index=False)
        partial.replace(output_file)  # readers never see half a file
    finally:
        partial.unlink(missing_ok=True)
    return len(result)
