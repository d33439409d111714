"""`mlops batch-score`: score a folder of files with the batch driver (on Azure: a batch job)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pipelines import connect, lifecycle
from pipelines.commands.options import BatchModelRef, ModelName, Target, TargetName
from pipelines.console import console, display_path


def batch_score_command(
    input_dir: Annotated[
        Path,
        typer.Option(
            "--input", help="Folder of CSV or Parquet files.", file_okay=False, exists=True
        ),
    ],
    output: Annotated[Path, typer.Option("--output", help="File the predictions are written to.")],
    model: BatchModelRef = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Score every CSV/Parquet file of a folder with the batch driver (on Azure: a batch job)."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        commands.batch_score(input_dir, output, model, model_name)
        return
    from pipelines.batch import progress_bar, score_folder, summary_line

    _, local = connect.serving_target(target, model_name)
    version = lifecycle.resolve(local.registry, model or f"{local.registry.model_name}@production")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = local.registry.download(version, Path(scratch) / "model")
        with progress_bar(f"Scoring {display_path(input_dir)}") as progress:
            summary = score_folder(
                bundle, input_dir, output, version.digest, model_ref=version.ref, progress=progress
            )
    console.print(f"[green]✓[/] {summary_line(summary, version.ref, display_path(output))}")
