"""Local batch scoring for `mlops batch-score`: the batch driver, with errors the CLI can print."""

from __future__ import annotations

from pathlib import Path


def score_folder(
    bundle_dir: Path,
    input_dir: Path,
    output_file: Path,
    expected_digest: str | None = None,
    model_ref: str | None = None,
) -> int:
    """Score every CSV/Parquet file under `input_dir` into `output_file`; return the row count.

    Same code and validation as the Azure ML batch deployment (`scoring/batch_driver.py`).
    Raises MlopsError naming the file, row and column of the first invalid value, or the
    integrity problem of the bundle; nothing is written then. With `model_ref` (NAME:VERSION)
    a bundle problem names the model version instead of `bundle_dir`, typically a temporary
    folder that is gone by the time the error is read.
    """
    from pipelines.errors import MlopsError
    from scoring.batch_driver import score_files
    from scoring.runtime import ModelLoadError
    from scoring.schema import InputError

    try:
        return score_files(bundle_dir, input_dir, output_file, expected_digest)
    except InputError as error:
        raise MlopsError(f"{error.message}; fix the input and run batch-score again") from error
    except ModelLoadError as error:
        message = str(error)
        if model_ref:
            message = message.replace(str(bundle_dir), model_ref)
        raise MlopsError(f"{message}; download or register the model again") from error
