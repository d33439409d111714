"""Loading the training data: scikit-learn's bundled diabetes set, or a user's CSV/Parquet file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_diabetes

FEATURES: tuple[str, ...] = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
TARGET = "target"
COLUMNS: tuple[str, ...] = (*FEATURES, TARGET)
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


class DataError(ValueError):
    """The data file can't be read or is not the expected table."""


def bundled_diabetes() -> pd.DataFrame:
    """Return scikit-learn's bundled diabetes data (442 rows, scaled features, raw target)."""
    bunch = load_diabetes(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    return frame.loc[:, list(COLUMNS)].reset_index(drop=True)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file with the diabetes schema (validation is a separate step)."""
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


def load_data(path: Path | None) -> pd.DataFrame:
    """Load the user's file when a path is given, else the bundled diabetes data."""
    return bundled_diabetes() if path is None else read_table(path)


def fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 of the table's content (column names, dtypes and values), stable across runs."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    digest.update(",".join(str(dtype) for dtype in frame.dtypes).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
