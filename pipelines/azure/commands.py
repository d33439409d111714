"""The Azure side of the `mlops` commands: what `--target azure` dispatches to.

`tracking()` serves train/evaluate/register/models (the workspace's MLflow with the shared
registry); `target()` serves release/endpoints/teardown/serve (QA on ACI, production on the
online endpoint); `endpoints_list()` and `batch_score()` are the Azure bodies of those commands.
Every failure a user can hit is an MlopsError: missing stack outputs first (no network needed
to say so), then a missing credential (one token request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from infra.outputs import StackOutputs
from pipelines.console import console
from pipelines.errors import MlopsError

T = TypeVar("T")

if TYPE_CHECKING:
    from pipelines.azure.client import AzureClients
    from pipelines.azure.registry import AzureTracking
    from pipelines.settings import Settings
    from pipelines.targets.azure import AzureTarget


def azure_call(what: str, action: Callable[[], T]) -> T:
    """Run one Azure call, its errors as one sentence (see `pipelines.azure.client`)."""
    from pipelines.azure.client import azure_call as call

    return call(what, action)


def _progress(line: str) -> None:
    console.print(f"    [dim]·[/] {line}")


def workspace_tracking_uri(clients: AzureClients, outputs: StackOutputs) -> str:
    """The workspace's MLflow tracking URI, as Azure ML reports it."""
    from azure.core.exceptions import AzureError

    try:
        workspace = clients.workspace(outputs).workspaces.get(outputs.workspace_name)
    except AzureError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MlopsError(
            f"cannot read workspace {outputs.workspace_name} ({first}); check the stack outputs "
            "and that your identity has access to it"
        ) from error
    uri = getattr(workspace, "mlflow_tracking_uri", None)
    if not uri:
        raise MlopsError(f"workspace {outputs.workspace_name} reports no MLflow tracking URI")
    return str(uri)


def tracking(model_name: str | None, clients: AzureClients | None = None) -> AzureTracking:
    """The current stack's workspace MLflow, with the shared registry behind it."""
    from pipelines.azure.client import AzureClients
    from pipelines.azure.outputs import StackFiles
    from pipelines.azure.registry import AzureTracking
    from pipelines.settings import load_settings

    settings = load_settings(model_name)
    outputs = StackFiles.from_environment(settings).current()
    clients = clients or AzureClients()
    uri = workspace_tracking_uri(clients, outputs)
    return AzureTracking(
        replace(settings, tracking_uri=uri),
        clients.registry(outputs),
        outputs.registry_name,
        source=f"{outputs.environment}/{outputs.workspace_name}",
    )


def target(
    model_name: str | None, clients: AzureClients | None = None
) -> tuple[Settings, AzureTarget]:
    """Settings and the Azure deployment target (registry access checked up front)."""
    from pipelines.azure.client import AzureClients
    from pipelines.azure.outputs import StackFiles
    from pipelines.azure.registry import AzureModelRegistry
    from pipelines.settings import load_settings
    from pipelines.targets.azure import AzureTarget, RolloutSettings

    settings = load_settings(model_name)
    stacks = StackFiles.from_environment(settings)
    outputs = stacks.any()
    rollout = RolloutSettings.from_environment()
    clients = clients or AzureClients()
    registry = AzureModelRegistry(
        None, settings.model_name, clients.registry(outputs), outputs.registry_name
    )
    return settings, AzureTarget(
        settings, stacks, clients, registry, rollout=rollout, progress=_progress
    )


def endpoints_list(model_name: str | None, clients: AzureClients | None = None) -> None:
    """The qa and prod endpoints of the saved stacks: deployments, models, traffic."""
    from rich.table import Table

    _, azure = target(model_name, clients)
    views = azure.endpoints()
    if not views:
        console.print("No qa or prod stack outputs are saved; see docs/azure.md.")
        return
    table = Table(title="Azure endpoints")
    for column in ("endpoint", "deployment", "model", "traffic", "url"):
        table.add_column(column, no_wrap=True)
    for view in views:
        if not view.deployments:
            table.add_row(view.name, "-", "-", "-", "no deployment yet")
        for name, deployed in view.deployments.items():
            table.add_row(
                view.name, name, deployed.model, f"{view.traffic.get(name, 0)}%", deployed.url
            )
    console.print(table)


def batch_score(
    input_dir: Path,
    output: Path,
    model: str | None,
    model_name: str | None,
    clients: AzureClients | None = None,
) -> int:
    """A batch job over the folder on the current stack's batch endpoint; returns rows."""
    from pipelines.azure import batch
    from pipelines.azure.outputs import StackFiles

    settings, azure = target(model_name, clients)
    outputs = StackFiles.from_environment(settings).current()
    registry = azure.registry
    version = registry.get(model) if model else registry.get(f"{registry.model_name}@production")
    rows = batch.score(azure.clients, outputs, version, input_dir, output, _progress)
    console.print(f"[green]✓[/] {rows} rows scored with {version.ref} on Azure → {output}")
    return rows
