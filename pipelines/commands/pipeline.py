"""`mlops pipeline validate|publish|run`: the Azure ML training pipeline."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.commands.options import (
    Alpha,
    FailOnReject,
    Metric,
    MinImprovement,
    ModelName,
    Params,
    Seed,
    SummaryFile,
    TestSize,
)
from pipelines.console import console, err_console, mlops_command
from pipelines.errors import REJECTED_EXIT_CODE, MlopsError

if TYPE_CHECKING:
    from azure.ai.ml.entities import PipelineJob

    from infra.outputs import StackOutputs
    from pipelines.azure.client import AzureClients
    from pipelines.azure.pipeline_job import PipelineSettings
    from pipelines.gate import GateDecision

pipeline_app = typer.Typer(
    help="The Azure ML training pipeline (data tests → train → gate → register): validate it "
    "offline, publish its components, run it on the workspace's cluster.",
    no_args_is_help=True,
)

DataAsset = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Training data as an Azure ML data reference, e.g. azureml:diabetes:1 or an "
        "https/abfss URI of a CSV or Parquet file. [default: scikit-learn's bundled data]",
    ),
]
StackFile = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="A saved `pulumi stack output --json --show-secrets` file. [default: the current "
        "stack's (MLOPS_STACK_OUTPUTS), else placeholder names]",
        dir_okay=False,
        exists=True,
    ),
]


class OfflineCredential:
    """A stand-in TokenCredential: offline validation must never ask for a token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Refuse: a token request here means validation tried to reach Azure."""
        raise MlopsError("offline validation tried to reach Azure; this is a bug, please report it")


def _settings(
    model_name: str | None,
    data: str | None,
    params: list[str] | None,
    alpha: float | None,
    seed: int | None,
    test_size: float | None,
    metric: str | None,
    min_improvement: float | None,
) -> PipelineSettings:
    from pipelines.azure.pipeline_job import PipelineSettings
    from pipelines.configs import gate_config, training_config
    from pipelines.settings import load_settings
    from pipelines.steps import git_commit

    return PipelineSettings(
        model_name=load_settings(model_name).model_name,
        data=data,
        training=training_config(alpha, seed, test_size, params),
        gate=gate_config(metric, min_improvement),
        commit=git_commit(),
    )


def build_job(outputs: StackOutputs, settings: PipelineSettings, scratch: Path) -> PipelineJob:
    """The pipeline job exactly as `mlops pipeline run` submits it."""
    from pipelines.azure.entities import code_snapshot, training_environment
    from pipelines.azure.pipeline_job import (
        build_components,
        build_pipeline,
        component_version,
        environment_reference,
    )

    environment = training_environment()
    code = code_snapshot(scratch / "code")
    components = build_components(
        code, environment_reference(environment), component_version(code, environment)
    )
    return build_pipeline(components, outputs, settings)


def validation_errors(job: PipelineJob, outputs: StackOutputs) -> dict[str, str]:
    """`MLClient.jobs.validate` with a stand-in credential: no network, every wiring error."""
    from azure.ai.ml import MLClient

    client = MLClient(
        OfflineCredential(),
        subscription_id=outputs.subscription_id,
        resource_group_name=outputs.resource_group,
        workspace_name=outputs.workspace_name,
    )
    result = client.jobs.validate(job)
    return {} if result.passed else {str(k): str(v) for k, v in result.error_messages.items()}


def _offline_outputs(outputs_file: Path | None) -> tuple[StackOutputs, str]:
    from pipelines.azure.outputs import StackFiles, example_outputs, read_outputs
    from pipelines.settings import load_settings

    if outputs_file is not None:
        return read_outputs(outputs_file), str(outputs_file)
    try:
        return StackFiles.from_environment(load_settings()).current(), "the current stack"
    except MlopsError:
        return example_outputs(), "placeholder names (no stack outputs saved)"


@pipeline_app.command("validate")
def pipeline_validate(
    data: DataAsset = None,
    outputs_file: StackFile = None,
    model_name: ModelName = None,
) -> None:
    """Build the pipeline job and validate it offline with the SDK (no credentials needed)."""
    outputs, where = _offline_outputs(outputs_file)
    settings = _settings(model_name, data, None, None, None, None, None, None)
    with tempfile.TemporaryDirectory() as scratch, console.status("Validating the pipeline…"):
        job = build_job(outputs, settings, Path(scratch))
        errors = validation_errors(job, outputs)
    if errors:
        for path, message in errors.items():
            err_console.print(f"  [red]✗[/] {path}: {message}")
        raise MlopsError(
            f"the training pipeline is miswired ({len(errors)} error(s) above)", exit_code=1
        )
    from pipelines.azure.pipeline_job import pipeline_name

    steps = " → ".join(job.jobs)
    console.print(
        f"[green]✓[/] pipeline {pipeline_name(settings.training.spec)} is valid: {steps} on "
        f"{outputs.training_compute_name} ({where})"
    )


@pipeline_app.command("publish")
def pipeline_publish(model_name: ModelName = None) -> None:
    """Register the training environment and the four components in the current workspace."""
    from pipelines.azure import commands
    from pipelines.azure.client import AzureClients
    from pipelines.azure.entities import code_snapshot, training_environment
    from pipelines.azure.outputs import StackFiles
    from pipelines.azure.pipeline_job import (
        build_components,
        component_version,
        environment_reference,
    )
    from pipelines.settings import load_settings

    outputs = StackFiles.from_environment(load_settings(model_name)).current()
    clients = AzureClients()
    ml = clients.workspace(outputs)
    environment = training_environment()
    with tempfile.TemporaryDirectory() as scratch:
        code = code_snapshot(Path(scratch) / "code")
        version = component_version(code, environment)
        with console.status(f"Environment {environment.name}:{environment.version}…"):
            commands.azure_call(
                "registering the environment", lambda: ml.environments.create_or_update(environment)
            )
        console.print(f"[green]✓[/] environment {environment.name}:{environment.version}")
        for component in build_components(code, environment_reference(environment), version).all():
            with console.status(f"Component {component.name}:{version}…"):
                commands.azure_call(
                    f"registering component {component.name}",
                    lambda component=component: ml.components.create_or_update(component),  # type: ignore[misc]
                )
            console.print(f"[green]✓[/] component {component.name}:{version}")
    console.print(f"Published to workspace {outputs.workspace_name}.")


@pipeline_app.command("run")
def pipeline_run(
    data: DataAsset = None,
    params: Params = None,
    alpha: Alpha = None,
    seed: Seed = None,
    test_size: TestSize = None,
    metric: Metric = None,
    min_improvement: MinImprovement = None,
    fail_on_reject: FailOnReject = False,
    summary_file: SummaryFile = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Stream the job until it finishes.")
    ] = True,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Run the same pipeline job here as Azure ML would: each step from its code "
            "snapshot, in its own environment, tracked in the local MLflow store.",
        ),
    ] = False,
    model_name: ModelName = None,
) -> None:
    """Submit the training pipeline to the workspace's cluster; stream it; report the gate."""
    from pipelines.azure.client import AzureClients
    from pipelines.azure.outputs import StackFiles, describe
    from pipelines.settings import load_settings

    settings = _settings(model_name, data, params, alpha, seed, test_size, metric, min_improvement)
    if local:
        decision, registered = run_local(replace(settings, shared_registry=False), model_name)
        _report(decision, registered, summary_file, release="release")
        if not decision.passed and fail_on_reject:
            raise typer.Exit(REJECTED_EXIT_CODE)
        return
    outputs = StackFiles.from_environment(load_settings(model_name)).current()
    clients = AzureClients()
    console.print(f"[bold]Training pipeline[/] on {describe(outputs)}")
    name = submit(clients, outputs, settings)
    if not wait:
        console.print(f"  not waiting; follow it with `az ml job stream --name {name}`")
        return
    decision, registered = follow(clients, outputs, name)
    _report(decision, registered, summary_file)
    if not decision.passed and fail_on_reject:
        raise typer.Exit(REJECTED_EXIT_CODE)


def run_local(
    settings: PipelineSettings, model_name: str | None
) -> tuple[GateDecision, dict[str, Any]]:
    """`mlops pipeline run --local`: every step from its snapshot, in its own environment."""
    from pipelines.azure.local_run import known_environments, run_pipeline_locally
    from pipelines.settings import load_settings

    if settings.data is not None and not Path(settings.data).is_file():
        raise MlopsError(
            f"--data {settings.data} is not a local file; a local pipeline run reads local data"
        )
    outputs, _ = _offline_outputs(None)
    local_settings = load_settings(model_name)
    console.print("[bold]Training pipeline[/], run locally as Azure ML runs it")
    with tempfile.TemporaryDirectory() as scratch:
        job = build_job(outputs, settings, Path(scratch))
        results = run_pipeline_locally(
            job,
            known_environments(),
            local_settings,
            lambda line: console.print(f"  → {line}"),
        )
    decision = _read_output(results["decided"].outputs["decision"], "decision.json")
    registered = _read_output(results["registered"].outputs["registered"], "registered.json")
    return decision_from_tags(decision), registered


def _read_output(folder: Path, filename: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / filename).read_text())
    except (OSError, ValueError) as error:
        raise MlopsError(f"the pipeline step wrote no readable {filename} ({error})") from error
    return data


def submit(clients: AzureClients, outputs: StackOutputs, settings: PipelineSettings) -> str:
    """Register the environment, validate, submit; returns the job's name."""
    from pipelines.azure import commands
    from pipelines.azure.entities import training_environment

    ml = clients.workspace(outputs)
    environment = training_environment()
    with console.status(f"Environment {environment.name}:{environment.version}…"):
        commands.azure_call(
            "registering the training environment",
            lambda: ml.environments.create_or_update(environment),
        )
    with tempfile.TemporaryDirectory() as scratch:
        job = build_job(outputs, settings, Path(scratch))
        errors = validation_errors(job, outputs)
        if errors:
            first = next(iter(errors.items()))
            raise MlopsError(f"the training pipeline is miswired ({first[0]}: {first[1]})")
        with console.status("Uploading the code and submitting…"):
            submitted = commands.azure_call(
                "submitting the pipeline", lambda: ml.jobs.create_or_update(job)
            )
    console.print(f"[green]✓[/] submitted {submitted.name}: {submitted.studio_url}")
    return str(submitted.name)


def follow(
    clients: AzureClients, outputs: StackOutputs, name: str
) -> tuple[GateDecision, dict[str, Any]]:
    """Stream the job's status until it ends; read the gate decision and the registration."""
    from pipelines.azure import commands

    ml = clients.workspace(outputs)
    commands.azure_call(f"pipeline job {name}", lambda: ml.jobs.stream(name))
    status = commands.azure_call(f"reading job {name}", lambda: ml.jobs.get(name)).status
    if status != "Completed":
        raise MlopsError(
            f"pipeline job {name} ended {status}; open it in Azure ML studio for the step logs",
            exit_code=1,
        )
    decision = _named_output(clients, outputs, name, "decision", "decision.json")
    registered = _named_output(clients, outputs, name, "registered", "registered.json")
    return decision_from_tags(decision), registered


def _named_output(
    clients: AzureClients, outputs: StackOutputs, name: str, output: str, filename: str
) -> dict[str, Any]:
    from pipelines.azure import commands

    ml = clients.workspace(outputs)
    with tempfile.TemporaryDirectory() as scratch:
        commands.azure_call(
            f"downloading {output} of {name}",
            lambda: ml.jobs.download(name=name, download_path=scratch, output_name=output),
        )
        found = sorted(Path(scratch).rglob(filename))
        if not found:
            raise MlopsError(f"pipeline job {name} has no {filename} in its {output} output")
        data: dict[str, Any] = json.loads(found[0].read_text())
    return data


def decision_from_tags(tags: dict[str, Any]) -> GateDecision:
    """The gate decision from the tags the gate step wrote (GateDecision.as_tags)."""
    from pipelines.gate import GateDecision

    def value(key: str) -> str:
        if f"gate.{key}" not in tags:
            raise MlopsError(f"the gate's decision lacks gate.{key}; the gate step is outdated")
        return str(tags[f"gate.{key}"])

    reference_version = value("reference_version")
    kind = value("reference_kind")
    return GateDecision(
        passed=value("decision") == "passed",
        metric=value("metric"),
        candidate_score=float(value("candidate_score")),
        reference_score=float(value("reference_score")),
        reference_kind="production" if kind == "production" else "baseline",
        reference_version=None if reference_version == "None" else reference_version,
        improvement=float(value("improvement")),
        min_improvement=float(value("min_improvement")),
        reason=value("reason"),
    )


def _report(
    decision: GateDecision,
    registered: dict[str, Any],
    summary_file: Path | None,
    release: str = "release --target azure",
) -> None:
    from pipelines.gate_summary import write_gate_summary
    from pipelines.lifecycle import report_decision

    report_decision(decision)
    ref = f"{registered['name']}:{registered['version']}" if registered.get("registered") else None
    if ref:
        console.print(f"  registered {ref}; next: {mlops_command(f'{release} --model {ref}')}")
    if summary_file is not None:
        write_gate_summary(summary_file, decision, ref)
