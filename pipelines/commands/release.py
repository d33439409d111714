"""`mlops release` and `mlops teardown`: deploy a registered version on a target, or stop it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines import connect, lifecycle
from pipelines.commands.options import ModelName, ModelRef, Target, TargetName
from pipelines.console import console


def release_command(
    model: ModelRef = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Where release.json (outcome, steps, smoke-test reports) goes, also when the "
            "release fails [default: .mlops/reports].",
            file_okay=False,
        ),
    ] = None,
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="all: QA then production; qa or prod: one half (CI runs them with an approval "
            "between).",
        ),
    ] = "all",
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Deploy to QA, smoke test, then production blue/green with rollback; the alias moves last."""
    from pipelines.release.runner import check_stage

    check_stage(stage)  # before the target is even looked up
    settings, serving = connect.serving_target(target, model_name)
    lifecycle.run_release(
        settings, serving, lifecycle.resolve(serving.registry, model), report_dir, stage
    )


def teardown_command(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Stop every local deployment and the local blob storage (models and data stay)."""
    _, local = connect.serving_target(target, model_name)
    stopped = local.teardown()
    console.print(
        f"Stopped {len(stopped)} local server(s){': ' + ', '.join(stopped) if stopped else ''}."
    )
