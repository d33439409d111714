"""`mlops models list`: the registered versions of the model."""

from __future__ import annotations

import typer

from pipelines import connect
from pipelines.commands.options import ModelName, Target, TargetName
from pipelines.console import console

models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)


@models_app.command("list")
def models_list(model_name: ModelName = None, target: Target = TargetName.local) -> None:
    """Registered versions: metrics, which path serves them, which one is in production."""
    from rich.table import Table

    from pipelines.registry import TAG_SERVING
    from training.spec import current_spec

    registry = connect.tracking_for(target, model_name).registry
    versions = registry.versions()
    if not versions:
        console.print(f"No versions of {registry.model_name} yet; run `mlops run` to train one.")
        return
    names = current_spec().metric_names
    table = Table(title=f"{registry.model_name}")
    for column in ("version", "aliases", *names, "serving", "gated vs", "commit", "run"):
        table.add_column(column, overflow="fold")  # never `producti…`, even in 80 columns
    for version in versions:
        metrics = version.metrics
        table.add_row(
            version.version,
            ", ".join(version.aliases) or "-",
            *(f"{metrics[key]:.4g}" if key in metrics else "-" for key in names),
            version.tags.get(TAG_SERVING, "-"),
            version.tags.get("gate.reference_kind", "-"),
            version.tags.get("git_commit", "-")[:8],
            version.run_id[:8],
        )
    console.print(table)
