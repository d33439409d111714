"""`mlops validate|profile|train|evaluate|register|run`: the lifecycle's training side, one
command each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipelines import configs, connect, lifecycle
from pipelines.commands.options import (
    Alpha,
    DataPath,
    FailOnReject,
    Metric,
    MinImprovement,
    ModelName,
    Params,
    RunId,
    Seed,
    SummaryFile,
    Target,
    TargetName,
    TestSize,
)
from pipelines.console import console, display_path, mlops_command, step
from pipelines.errors import REJECTED_EXIT_CODE, MlopsError
from pipelines.gate_summary import write_gate_summary

if TYPE_CHECKING:
    from pipelines.lifecycle import LifecycleResult
    from pipelines.steps import Tracking


def validate(data: DataPath = None) -> None:
    """Run the data tests: schema, missing values, ranges and distribution."""
    from pipelines.steps import load_and_validate

    with step("Data tests"):
        frame = load_and_validate(data)
    console.print(f"  {len(frame)} rows passed every rule")


def profile(data: DataPath = None) -> None:
    """Write the data tests' reference profile from data you trust (the definition's columns)."""
    from training.data import DataError, load_data
    from training.spec import SpecError, current_spec
    from training.validation import write_profile

    try:
        spec = current_spec()
        with step(f"Reference profile of model {spec.name!r}"):
            frame = load_data(data, spec)
            path = write_profile(frame, spec)
    except (DataError, SpecError) as error:
        raise MlopsError(str(error)) from error
    source = display_path(data) if data else spec.data_description
    console.print(
        f"  {len(frame)} rows of {source} profiled into training/profiles/{path.name}; the "
        "data tests now compare new data with it"
    )


def train(
    data: DataPath = None,
    params: Params = None,
    alpha: Alpha = None,
    seed: Seed = None,
    test_size: TestSize = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """Data tests, then train the model definition and log the run (params, metrics, lineage)."""
    config = configs.training_config(alpha, seed, test_size, params)
    tracking = connect.tracking_for(target, model_name)
    outcome = lifecycle.train_model(tracking, config, data)
    console.print(f"  run id {outcome.run_id}; next: mlops evaluate --run-id {outcome.run_id}")


def evaluate(
    run_id: RunId = None,
    metric: Metric = None,
    min_improvement: MinImprovement = None,
    fail_on_reject: FailOnReject = False,
    summary_file: SummaryFile = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """The gate: compare the run's model with production (or the baseline) on the same holdout."""
    config = configs.gate_config(metric, min_improvement)
    tracking = connect.tracking_for(target, model_name)
    decision = lifecycle.gate_run(tracking, run_id, config)
    if summary_file is not None:
        write_gate_summary(summary_file, decision, None)
    if not decision.passed and fail_on_reject:
        raise typer.Exit(REJECTED_EXIT_CODE)


def register(
    run_id: RunId = None, model_name: ModelName = None, target: Target = TargetName.local
) -> None:
    """Register the run's model with its lineage tags; refused unless the gate passed it."""
    tracking = connect.tracking_for(target, model_name)
    version = lifecycle.register_run(tracking, run_id)
    console.print(f"  registered {version.ref} (sha256 {version.digest[:12]}…)")


def run(
    data: DataPath = None,
    params: Params = None,
    alpha: Alpha = None,
    seed: Seed = None,
    test_size: TestSize = None,
    metric: Metric = None,
    min_improvement: MinImprovement = None,
    fail_on_reject: FailOnReject = False,
    release: Annotated[
        bool,
        typer.Option(
            "--release/--no-release",
            help="After registration, release: QA → smoke → production blue/green → smoke.",
        ),
    ] = True,
    summary_file: SummaryFile = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """The whole chain: data tests → train → gate → register → release, with a summary.

    On `--target azure` the chain is the Azure ML training pipeline on the workspace's cluster
    (`mlops pipeline run`); the release is the release pipeline's job (`mlops release`).
    """
    if target is TargetName.azure:
        from pipelines.commands.pipeline import pipeline_run

        if data is not None and not str(data).startswith("azureml:"):
            raise MlopsError(
                f"on Azure the training data must be a data asset (azureml:NAME:VERSION), not "
                f"{data}; upload it as one, or pass a cloud URI to `mlops pipeline run --data`"
            )
        pipeline_run(
            data=str(data) if data else None, params=params, alpha=alpha, seed=seed,
            test_size=test_size,
            metric=metric, min_improvement=min_improvement, fail_on_reject=fail_on_reject,
            summary_file=summary_file, wait=True, model_name=model_name,
        )  # fmt: skip
        if release:
            console.print("  release it with `mlops release --target azure --model NAME:VERSION`")
        return
    tracking = connect.tracking_for(target, model_name)
    result = lifecycle.lifecycle(
        tracking,
        configs.training_config(alpha, seed, test_size, params),
        configs.gate_config(metric, min_improvement),
        data,
        serving=(lambda: connect.serving_target(target, model_name)[1]) if release else None,
        summary_file=summary_file,
    )
    summary(tracking, result)
    if not result.decision.passed and fail_on_reject:
        raise typer.Exit(REJECTED_EXIT_CODE)


def summary(tracking: Tracking, result: LifecycleResult) -> None:
    """The closing table of `mlops run`: what happened and what to do next."""
    from rich.table import Table

    production = tracking.registry.production()
    decision, version, deployed = result.decision, result.version, result.deployed
    table = Table(title="Summary", show_header=False, title_justify="left")
    table.add_row("run", result.run_id)
    table.add_row("holdout metrics", lifecycle.metrics_text(result.metrics))
    table.add_row("gate", f"{decision.label}: {decision.reason}")
    table.add_row("registered", version.ref if version else "nothing (rejected)")
    table.add_row("production alias", production.ref if production else "none")
    for endpoint, description in (deployed or {}).items():
        table.add_row(f"endpoint {endpoint}", description)
    if deployed:
        table.add_row("call it", mlops_command(lifecycle.invoke_example()))
    table.add_row("MLflow UI", "make mlflow-ui  →  http://127.0.0.1:5000")
    console.print(table)
