"""Loading the training data: the definition's bundled data set, or a user's CSV/Parquet file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from training.spec import ModelSpec

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


class DataError(ValueError):
    """The data file can't be read or is not the expected table."""


def bundled_data(spec: ModelSpec) -> pd.DataFrame:
    """The definition's bundled data, reduced to its columns (features, then target)."""
    frame: pd.DataFrame = spec.load_bundled()
    missing = [name for name in spec.columns if name not in frame.columns]
    if missing:
        raise DataError(
            f"the bundled data of model definition {spec.name!r} has no column(s) "
            f"{', '.join(missing)}; fix its loader or its feature list"
        )
    return frame.loc[:, list(spec.columns)].reset_index(drop=True)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (validation against the definition is a separate step)."""
    if not path.exists():
        raise DataError(f"data file {path} does not exist; pass an existing CSV or Parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"data file {path} could not be read as {suffix[1:]}: {error}") from error
    raise DataError(
        f"data file {path} has an unsupported type {suffix or '(none)'}; "
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def load_data(path: Path | None, spec: ModelSpec) -> pd.DataFrame:
    """Load the user's file when a path is given, else the definition's bundled data."""
    return bundled_data(spec) if path is None else read_table(path)


def fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 of the table's content (column names, dtypes and values), stable across runs."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(",".join(str(dtype) for dtype in frame.dtypes).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
