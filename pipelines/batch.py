"""Local batch scoring for `mlops batch-score`: the batch driver, with errors the CLI can print."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scoring.batch_driver import Progress, Summary


def score_folder(
    bundle_dir: Path,
    input_dir: Path,
    output_file: Path,
    expected_digest: str | None = None,
    model_ref: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Summary:
    """Score every CSV/Parquet file under `input_dir` into `output_file`; return the summary.

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
        return score_files(bundle_dir, input_dir, output_file, expected_digest, progress)
    except InputError as error:
        raise MlopsError(f"{error.message}; fix the input and run batch-score again") from error
    except ModelLoadError as error:
        message = str(error)
        if model_ref:
            message = message.replace(str(bundle_dir), model_ref)
        raise MlopsError(f"{message}; download or register the model again") from error


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[Progress], None]]:
    """A progress bar on stderr (input bytes read, rows and files scored); silent in pipes."""
    from rich.progress import (
        BarColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    from pipelines.console import err_console

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows, file {task.fields[files]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=None, rows=0, files="")

        def update(state: Progress) -> None:
            shown = min(state.files_done + 1, state.files_total)
            bar.update(
                task,
                total=max(state.bytes_total, 1),
                completed=state.bytes_done,
                rows=state.rows,
                files=f"{shown}/{state.files_total}",
            )

        yield update


def summary_line(summary: Summary, model_ref: str, output: str) -> str:
    """`442 rows from 1 file scored with diabetes-ridge:3 in 0.1 s (4,420 rows/s) → out.csv`."""
    files = "file" if summary.files == 1 else "files"
    return (
        f"{summary.rows:,} rows from {summary.files} {files} scored with {model_ref} in "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s) → {output}"
    )
