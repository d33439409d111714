"""The Azure side of the `mlops` commands: what `--target azure` dispatches to.

`tracking()` serves train/evaluate/register/models (the workspace's MLflow with the shared
registry); `release_context()` what release/endpoints/teardown/serve/batch read (the saved
stacks, the clients, the shared registry), from which `pipelines.targets.azure` builds the Azure
target; `batch_score()` is the Azure body of `mlops batch score`.
Every failure a user can hit is an MlopsError: missing stack outputs first (no network needed
to say so), then a missing credential (one token request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from infra.outputs import StackOutputs
from pipelines.console import console
from pipelines.errors import MlopsError

T = TypeVar("T")

if TYPE_CHECKING:
    from pipelines.azure.client import AzureClients
    from pipelines.azure.outputs import StackFiles
    from pipelines.azure.registry import AzureModelRegistry, AzureTracking
    from pipelines.settings import Settings


def azure_call(what: str, action: Callable[[], T]) -> T:
    """Run one Azure call, its errors as one sentence (see `pipelines.azure.client`)."""
    from pipelines.azure.client import azure_call as call

    return call(what, action)


def progress_line(line: str) -> None:
    """One step of a long Azure operation, as the commands print it."""
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
        workspace=clients.workspace(outputs),
    )


@dataclass(frozen=True)
class ReleaseContext:
    """What a release-side command reads: settings, the saved stacks, clients, the registry."""

    settings: Settings
    stacks: StackFiles
    clients: AzureClients
    registry: AzureModelRegistry


def release_context(model_name: str | None, clients: AzureClients | None = None) -> ReleaseContext:
    """Settings, stack outputs and the shared registry (read-only), for qa and prod commands.

    The Azure target itself is built from this by `pipelines.targets.azure.from_environment`.
    """
    from pipelines.azure.client import AzureClients
    from pipelines.azure.outputs import StackFiles
    from pipelines.azure.registry import AzureModelRegistry
    from pipelines.settings import load_settings

    settings = load_settings(model_name)
    stacks = StackFiles.from_environment(settings)
    outputs = stacks.any()
    clients = clients or AzureClients()
    registry = AzureModelRegistry(
        None, settings.model_name, clients.registry(outputs), outputs.registry_name
    )
    return ReleaseContext(settings, stacks, clients, registry)


def batch_score(
    input_dir: Path,
    output: Path,
    model: str | None,
    model_name: str | None,
    clients: AzureClients | None = None,
) -> int:
    """A batch job over the folder on the current stack's batch endpoint; returns rows."""
    from pipelines.azure import batch

    context = release_context(model_name, clients)
    outputs = context.stacks.current()
    registry = context.registry
    version = registry.get(model) if model else registry.get(f"{registry.model_name}@production")
    rows = batch.score(context.clients, outputs, version, input_dir, output, progress_line)
    console.print(f"[green]✓[/] {rows} rows scored with {version.ref} on Azure → {output}")
    return rows
